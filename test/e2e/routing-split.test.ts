/**
 * Canary splits and fallback through real Envoy. The sidecar picks a
 * deployment by weight (each may expect its own model name in the body);
 * when a deployment is down, Envoy — not the sidecar — moves the request to
 * the cluster's next priority (retry policy) and keeps later requests off the
 * failed one (outlier detection).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;
let canary: DemoUpstream;
let primary: DemoUpstream;
let standby: DemoUpstream;
let providerA: DemoUpstream;
let providerB: DemoUpstream;

before(async () => {
  canary = await startDemoUpstream({ port: 0 });
  primary = await startDemoUpstream({ port: 0 });
  standby = await startDemoUpstream({ port: 0 });
  providerA = await startDemoUpstream({ port: 0 });
  providerB = await startDemoUpstream({ port: 0 });
  stack = await startTestStack({
    models: [
      {
        id: 'chat-split',
        endpoints: ['chat'],
        cluster: 'unused',
        model: 'unused',
        targets: [
          { cluster: 'demo-upstream', model: 'stable-v1', weight: 3, labels: { track: 'stable', region: 'eu-west' } },
          { cluster: 'canary-pool', model: 'canary-v2', weight: 1, labels: { track: 'canary' } },
          // Weight 0: kept in the snapshot, drained of traffic.
          { cluster: 'demo-upstream', model: 'drained-v0', weight: 0 },
        ],
      },
      { id: 'chat-resilient', endpoints: ['chat'], cluster: 'chat-pool', model: 'pool-model' },
      { id: 'chat-two-providers', endpoints: ['chat'], cluster: 'chat-failover', model: 'shared-model' },
    ],
    extraClusters: [
      { name: 'canary-pool', host: '127.0.0.1', port: canary.port },
      { name: 'chat-pool', host: '127.0.0.1', port: primary.port, fallbacks: [{ host: '127.0.0.1', port: standby.port }] },
      // Fallback to another cluster: Envoy's aggregate cluster, primary first.
      { name: 'provider-a', host: '127.0.0.1', port: providerA.port },
      { name: 'provider-b', host: '127.0.0.1', port: providerB.port },
      { name: 'chat-failover', aggregate: ['provider-a', 'provider-b'] },
    ],
  });
});

after(async () => {
  await stack.stop();
  await Promise.all([canary.close(), primary.close(), standby.close(), providerA.close(), providerB.close()]);
});

const ask = (model: string) => stack.client().chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

async function envoyStat(name: string): Promise<number> {
  const text = await (await fetch(`${stack.envoy.adminUrl}/stats?filter=${encodeURIComponent(`^${name.replaceAll('.', '\\.')}$`)}`)).text();
  const m = new RegExp(`^${name.replaceAll('.', '\\.')}: (\\d+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

test('a weighted split sends each deployment its share, with its own model name', async () => {
  stack.upstream.clearRequests();
  canary.clearRequests();
  const total = 800;
  let next = 0;
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < total) {
        next++;
        const r = await ask('chat-split').withResponse();
        ids.push(r.response.headers.get('x-request-id') ?? '');
      }
    }),
  );
  const stableModels = stack.upstream.requests.map((r) => (r.body as { model: string }).model);
  const canaryModels = canary.requests.map((r) => (r.body as { model: string }).model);
  assert.equal(stableModels.length + canaryModels.length, total, 'every request reached exactly one deployment');
  assert.ok(
    stableModels.every((m) => m === 'stable-v1'),
    'the stable cluster only sees its own model name (never the drained one)',
  );
  assert.ok(canaryModels.every((m) => m === 'canary-v2'));
  // Expected 200 (weight 1 of 4); binomial sd ≈ 12.2, so ±5 sd is 139..261.
  // A failure here means the split is off, not bad luck (p < 1e-6).
  assert.ok(canaryModels.length >= 139 && canaryModels.length <= 261, `canary got ${canaryModels.length} of ${total} (expected ≈200)`);

  const records = readAudit(stack.files.auditFile).filter((r) => ids.includes(r.requestId));
  assert.equal(records.length, total);
  for (const r of records) {
    assert.ok(r.deployment !== null);
    const { cluster, model, labels } = r.deployment;
    if (cluster === 'canary-pool') assert.deepEqual({ model, labels }, { model: 'canary-v2', labels: { track: 'canary' } });
    else assert.deepEqual({ cluster, model, labels }, { cluster: 'demo-upstream', model: 'stable-v1', labels: { track: 'stable', region: 'eu-west' } });
  }
  assert.equal(records.filter((r) => r.deployment?.cluster === 'canary-pool').length, canaryModels.length, 'the audit names the deployment that served');
});

test("Envoy falls back to the cluster's next priority when the first deployment is down", async () => {
  primary.clearRequests();
  standby.clearRequests();
  for (let i = 0; i < 10; i++) await ask('chat-resilient');
  assert.equal(primary.requests.length, 10, 'while the primary is up it serves everything');
  assert.equal(standby.requests.length, 0);

  await primary.close();
  const retriesBefore = await envoyStat('cluster.chat-pool.upstream_rq_retry');
  // Sequential and a stream among them: every one must succeed.
  for (let i = 0; i < 30; i++) {
    const r = await ask('chat-resilient');
    assert.ok(r.choices[0]?.message.content, `request ${i} answered`);
  }
  const stream = await stack.client().chat.completions.create({ model: 'chat-resilient', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.ok(text.length > 0);

  assert.equal(standby.requests.length, 31, 'the fallback deployment served every request');
  assert.ok(standby.requests.every((r) => (r.body as { model: string }).model === 'pool-model'));
  assert.ok((await envoyStat('cluster.chat-pool.upstream_rq_retry')) > retriesBefore, 'Envoy retried the failed tries on the next priority');
  // Three connect failures in a row eject the primary: later requests go straight to the fallback.
  assert.ok((await envoyStat('cluster.chat-pool.outlier_detection.ejections_enforced_total')) >= 1, 'outlier detection ejected the primary');
  assert.ok((await envoyStat('cluster.chat-pool.upstream_rq_retry')) - retriesBefore < 31, 'not every request needed a retry once the primary was ejected');
});

test('fallback to another cluster: an aggregate cluster moves requests to the next cluster when the first is down', async () => {
  for (let i = 0; i < 5; i++) await ask('chat-two-providers');
  assert.equal(providerA.requests.length, 5, 'the first cluster serves while it is up');
  assert.equal(providerB.requests.length, 0);
  await providerA.close();
  for (let i = 0; i < 20; i++) {
    const r = await ask('chat-two-providers');
    assert.ok(r.choices[0]?.message.content, `request ${i} answered`);
  }
  assert.equal(providerB.requests.length, 20, 'the second cluster served every request');
  assert.ok(providerB.requests.every((r) => (r.body as { model: string }).model === 'shared-model'));
  assert.ok((await envoyStat('cluster.provider-a.outlier_detection.ejections_enforced_total')) >= 1, 'the first cluster was ejected');
});
