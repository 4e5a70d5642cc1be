/**
 * Routing through real Envoy: a tenant's own deployment of a model, and a
 * deployment's upstream credential injected by the sidecar — the client's key
 * never reaches the model server, the provider's never reaches the client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;
const secrets = mkdtempSync(join(tmpdir(), 'igw-creds-'));

before(async () => {
  writeFileSync(join(secrets, 'provider-key'), 'sk-upstream-secret-123\n');
  stack = await startTestStack({
    keys: [
      { principal: 'alice', tenant: 'research' },
      { principal: 'anna', tenant: 'team-a' },
    ],
    models: [
      {
        id: 'chat-large',
        endpoints: ['chat'],
        cluster: 'demo-upstream',
        model: 'shared-large',
        overrides: [{ tenants: ['team-a'], target: { cluster: 'demo-upstream', model: 'team-a-dedicated' } }],
      },
      { id: 'hosted', endpoints: ['chat'], cluster: 'demo-upstream', model: 'provider-model', credential: 'provider-key' },
      { id: 'hosted-missing', endpoints: ['chat'], cluster: 'demo-upstream', model: 'x', credential: 'no-such-secret' },
    ],
    config: { routing: { credentialsDir: secrets } },
  });
});

after(async () => {
  await stack.stop();
});

const ask = (principal: string, model: string) => stack.client(principal).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
const lastBody = () => stack.upstream.requests.at(-1)?.body as { model: string };

test("a tenant's own deployment of a logical model", async () => {
  await ask('alice', 'chat-large');
  assert.equal(lastBody().model, 'shared-large');
  await ask('anna', 'chat-large');
  assert.equal(lastBody().model, 'team-a-dedicated');
  assert.equal(stack.upstream.requests.at(-1)?.headers['x-gateway-deployment-model'], 'team-a-dedicated');
});

test("the deployment's credential is injected; the client's key never goes upstream", async () => {
  stack.upstream.clearRequests();
  const r = await ask('alice', 'hosted');
  assert.ok(r.choices[0]?.message.content);
  const up = stack.upstream.requests.at(-1);
  assert.equal(up?.headers['authorization'], 'Bearer sk-upstream-secret-123');
  assert.ok(!JSON.stringify(up?.headers).includes(stack.files.keys['alice'] ?? 'missing'));
  await ask('alice', 'chat-large');
  assert.equal(stack.upstream.requests.at(-1)?.headers['authorization'], undefined, 'no credential for deployments without one');
});

test('a missing credential fails closed with 503 and nothing upstream', async () => {
  stack.upstream.clearRequests();
  try {
    await ask('alice', 'hosted-missing');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'upstream_credential_unavailable');
  }
  assert.equal(stack.upstream.requests.length, 0);
});

test('snapshot swaps under load change routing with no failed request', async (t) => {
  const { renameSync } = await import('node:fs');
  const { stringify } = await import('yaml');
  const write = (model: string, version: string) => {
    const tmp = `${stack.files.snapshotFile}.tmp`;
    writeFileSync(
      tmp,
      stringify({
        version,
        models: [
          { id: 'chat-large', endpoints: ['chat'], target: { cluster: 'demo-upstream', model } },
          { id: 'hosted', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'provider-model', credential: 'provider-key' } },
        ],
      }),
    );
    renameSync(tmp, stack.files.snapshotFile);
  };
  stack.upstream.clearRequests();
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const workers = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        await ask('alice', 'chat-large');
        ok++;
      } catch (err) {
        failures.push(err instanceof OpenAI.APIError ? `${err.status} ${err.code}` : String(err));
      }
    }
  });
  // Each swap stays until requests under it have gone through (so every swap is exercised under load).
  const servedUnder = (version: string): number => stack.upstream.requests.filter((r) => r.headers['x-gateway-snapshot-version'] === version).length;
  for (let i = 0; i < 6; i++) {
    write(i % 2 === 0 ? 'blue' : 'green', `swap-${i}`);
    await waitFor(() => servedUnder(`swap-${i}`) >= 10, { what: `10 requests routed under snapshot swap-${i}`, timeoutMs: 10_000, intervalMs: 50 });
  }
  running = false;
  await Promise.all(workers);
  const seen = new Set(stack.upstream.requests.map((r) => (r.body as { model: string }).model));
  t.diagnostic(`${ok} requests during 6 swaps, ${failures.length} failed; models seen: ${[...seen].join(', ')}`);
  assert.deepEqual(failures, [], 'no request failed during the swaps');
  assert.ok(ok > 50, `${ok} requests`);
  assert.ok(seen.has('blue') && seen.has('green'), `routing followed the swaps: ${[...seen].join(',')}`);

  // One snapshot per request, start to end: the version a request carried upstream and the one in its
  // audit record belong to the deployment its body was rewritten for (blue ↔ even swaps, green ↔ odd).
  const fits = (model: string, version: string): boolean =>
    model === 'blue' ? /^swap-[024]$/.test(version) : model === 'green' ? /^swap-[135]$/.test(version) : !version.startsWith('swap-');
  for (const r of stack.upstream.requests) {
    const model = (r.body as { model: string }).model;
    const version = String(r.headers['x-gateway-snapshot-version']);
    assert.ok(fits(model, version), `upstream saw model ${model} with snapshot ${version}`);
  }
  const records = readAudit(stack.files.auditFile).filter((r) => r.deployment !== null && ['blue', 'green'].includes(r.deployment.model));
  assert.ok(records.length > 50);
  for (const r of records)
    assert.ok(fits(r.deployment?.model ?? '', String(r['snapshotVersion'])), `audit: ${r.deployment?.model} with ${String(r['snapshotVersion'])}`);
});
