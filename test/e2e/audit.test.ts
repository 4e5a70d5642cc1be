/**
 * Audit evidence through real Envoy: a sidecar SIGKILLed again and again under
 * load loses no record of a request that received a response, and every
 * chain still verifies (for each file durability); a full disk fails requests
 * closed; with durability replicated, a request is answered only once its
 * record is on a replica, and fails closed while no replica acknowledges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { startTestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';
import { adminClient, startReplicatedRedis, type TestRedis } from '../helpers/redis.ts';

for (const durability of ['fsync', 'write'] as const)
  test(`durability ${durability}: SIGKILL under load, three times: every answered request has a record, and the chains verify`, async (t) => {
    const stack = await startTestStack({ config: { audit: { durability, checkpointEvery: 5, checkpointSeconds: 1 } } });
    t.after(() => stack.stop());
    const answered: string[] = [];
    let failed = 0;
    let running = true;
    const workers = Array.from({ length: 4 }, async () => {
      const client = stack.client();
      while (running) {
        try {
          const r = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'count me' }] }).withResponse();
          answered.push(r.response.headers.get('x-request-id') ?? 'missing');
        } catch (err) {
          assert.ok(err instanceof OpenAI.APIError, String(err));
          failed++; // fail closed while the sidecar is down: fine, but never an answer without a record
        }
      }
    });
    // Each sidecar serves some requests before it is killed; each kill is seen by clients (requests fail
    // closed) before the next sidecar starts.
    const serveSome = async (): Promise<void> => {
      const before = answered.length;
      await waitFor(() => answered.length >= before + 6, { what: 'requests answered by the running sidecar', timeoutMs: 15_000 });
    };
    for (let i = 0; i < 3; i++) {
      await serveSome();
      const failedBefore = failed;
      await stack.sidecar?.kill();
      await waitFor(() => failed > failedBefore, { what: 'a request to fail closed while the sidecar is down', timeoutMs: 10_000 });
      await stack.startSidecar();
    }
    await serveSome();
    running = false;
    await Promise.all(workers);
    await stack.sidecar?.stop();

    const recorded = new Set(readAudit(stack.files.auditFile).map((r) => r.requestId));
    const missing = answered.filter((id) => !recorded.has(id));
    t.diagnostic(`${answered.length} answered, ${failed} failed closed, ${recorded.size} records`);
    assert.ok(answered.length > 20);
    assert.deepEqual(missing, [], 'an answered request without an audit record');

    const verify = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'src/cli/main.ts'), 'audit', 'verify', '--keys', join(stack.files.dir, 'audit-signing-key.pem.pub'), stack.files.auditFile],
      { encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, `audit verify failed:\n${verify.stdout}\n${verify.stderr}`);
  });

test('disk full: requests fail closed with 503 audit_unavailable, denials included', async (t) => {
  const stack = await startTestStack({ config: { audit: { file: '/dev/full' } } });
  t.after(() => stack.stop());
  for (const [name, client] of [
    ['an allowed request', stack.client()],
    ['a denial (no credentials)', new OpenAI({ baseURL: stack.baseURL, apiKey: 'x', maxRetries: 0, defaultHeaders: { authorization: null } })],
  ] as const) {
    await t.test(name, async () => {
      try {
        await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
        assert.fail('answered without a record');
      } catch (err) {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 503);
        assert.equal(err.code, 'audit_unavailable');
      }
    });
  }
});

test('durability replicated: an answered request has its record on the replica; with the replica gone requests fail closed', async (t) => {
  const set = await startReplicatedRedis(1);
  t.after(() => set.stop());
  const replica = set.replicas[0] as TestRedis;
  const stream = 'igw:audit';
  const stack = await startTestStack({
    config: { redis: { url: set.primary.url }, audit: { sink: 'redis_stream', stream, durability: 'replicated', replicas: 1, replicaWaitMs: 200 } },
  });
  t.after(() => stack.stop());
  const client = stack.client();
  const r = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const id = r.response.headers.get('x-request-id');
  const onReplica = await adminClient(replica.url);
  t.after(() => onReplica.disconnect());
  // Read right after the answer, without waiting: acknowledged means the replica already has it.
  const lines = (await onReplica.xrange(stream, '-', '+')).map(([, f]) => JSON.parse(f[1] ?? '{}') as { requestId?: string });
  assert.ok(
    lines.some((l) => l.requestId === id),
    `record ${id} not on the replica`,
  );

  await replica.kill();
  try {
    await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
    assert.fail('answered without a replicated record');
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 503);
    assert.equal(err.code, 'audit_unavailable');
  }
});
