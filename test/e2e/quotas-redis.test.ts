/**
 * Quotas with Redis through real Envoy: each store-down policy while Redis is
 * killed and after it comes back (no restart of anything else), and a
 * concurrency lease: renewed by its live sidecar past its TTL, reclaimed by
 * the TTL once that sidecar is SIGKILLed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let stack: TestStack;

before(async () => {
  redis = await startRedis();
  stack = await startTestStack({
    keys: [
      { principal: 'closed', tier: 'closed' },
      { principal: 'open', tier: 'open' },
      { principal: 'local', tier: 'local' },
      { principal: 'lease', tier: 'lease' },
    ],
    config: {
      redis: { url: redis.url, commandTimeoutMs: 200 },
      quotas: {
        leaseSeconds: 60,
        leaseTtlSeconds: 8,
        leaseRenewSeconds: 2,
        breaker: { minimumCalls: 2, openMs: 1000 },
        plans: [
          { name: 'closed', whenStoreDown: 'fail_closed', limits: [{ scope: 'key', rpm: 1000 }] },
          { name: 'open', whenStoreDown: 'fail_open', limits: [{ scope: 'key', rpm: 1000 }] },
          { name: 'local', whenStoreDown: 'local', localShare: 0.5, limits: [{ scope: 'key', rpm: 4 }] },
          { name: 'lease', limits: [{ scope: 'key', concurrency: 1 }] },
        ],
      },
    },
  });
});

after(async () => {
  await stack.stop();
  await redis.stop();
});

const chat = (principal: string, headers: Record<string, string> = {}) =>
  stack
    .client(principal, headers)
    .chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    return String(err.code);
  }
}

test('Redis killed: fail_closed refuses, fail_open admits, local enforces its share — each flagged; recovery without restart', async () => {
  // Background load on a fail_open plan through the whole outage: every request answered, none slow.
  let loading = true;
  const outcomes: string[] = [];
  let slowest = 0;
  const load = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (loading) {
        const t0 = Date.now();
        outcomes.push(await code(chat('open')));
        slowest = Math.max(slowest, Date.now() - t0);
      }
    }),
  );
  assert.equal(await code(chat('closed')), 'ok');
  await redis.kill();
  const started = Date.now();
  assert.equal(await code(chat('closed')), 'quota_unavailable');
  assert.ok(Date.now() - started < 2000, 'a dead Redis fails fast');
  assert.equal(await code(chat('open')), 'ok');
  // local: rpm 4 × share 0.5 = 2 per replica
  assert.deepEqual([await code(chat('local')), await code(chat('local')), await code(chat('local'))], ['ok', 'ok', 'rate_limit_exceeded']);
  const modes = readAudit(stack.files.auditFile).map((r) => (r as unknown as { quota: { mode: string } | null }).quota?.mode);
  assert.ok(modes.includes('fail_open') && modes.includes('local'), `audit flags degraded decisions: ${modes.join(',')}`);

  await redis.start();
  await waitFor(async () => (await code(chat('closed'))) === 'ok', { what: 'the store to be used again once Redis is back', timeoutMs: 6000, intervalMs: 100 });
  const metrics = await (await fetch(`${stack.sidecar?.adminUrl ?? ''}/metrics`)).text();
  assert.match(metrics, /inference_gateway_quota_degraded_decisions_total\{plan="open",policy="fail_open"\} [1-9]/);
  assert.match(metrics, /inference_gateway_quota_store_errors_total\{operation="admit"\} [1-9]/);
  loading = false;
  await load;
  assert.ok(outcomes.length > 20, `${outcomes.length} requests under load`);
  assert.deepEqual([...new Set(outcomes)], ['ok'], 'fail_open kept every request flowing through the outage');
  assert.ok(slowest < 1500, `slowest request during the outage: ${slowest} ms`);
});

test('a lease is renewed by its live sidecar past its TTL, and reclaimed within the TTL once that sidecar is SIGKILLed', async (t) => {
  const acquiredAt = Date.now();
  // ~12 s of stream (60 words, 200 ms apart): longer than the 8 s TTL.
  const slow = await stack
    .client('lease', { 'x-demo-chunk-delay-ms': '200', 'x-demo-words': '60' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'hold the lease' }] })
    .withResponse();
  let chunks = 0;
  const reading = (async () => {
    try {
      for await (const _ of slow.data) chunks++;
    } catch {
      // expected: the stream is cut when the sidecar dies
    }
  })();
  // Past the TTL of the lease taken at admission: only the heartbeat keeps it.
  await waitFor(() => Date.now() - acquiredAt > 9000, { what: 'the stream to outlive the lease TTL', timeoutMs: 12_000, intervalMs: 50 });
  assert.equal(await code(chat('lease')), 'rate_limit_exceeded', 'the live sidecar still holds the slot after the TTL');
  assert.ok(chunks > 0 && chunks < 60, `the stream is still running (${chunks} chunks)`);
  await stack.sidecar?.kill();
  const killedAt = Date.now();
  await reading;
  await stack.startSidecar();
  // Renewed at most 2 s before the kill: the lease outlives the kill by 6–8 s, so the new sidecar still sees it…
  assert.ok(Date.now() - killedAt < 5500, 'the restart took too long for this test to mean anything');
  assert.equal(await code(chat('lease')), 'rate_limit_exceeded', "the dead sidecar's lease still counts");
  // …until its TTL reclaims it (not leaseSeconds, 60 s). The lease lives in Redis on Redis' clock: the test can only ask until it is gone.
  const reclaimedAfter = await waitFor(async () => ((await code(chat('lease'))) === 'ok' ? Date.now() - killedAt : undefined), {
    what: "the dead sidecar's lease to be reclaimed",
    timeoutMs: 12_000,
    intervalMs: 100,
  });
  t.diagnostic(`lease TTL 8 s, renewed every 2 s: held by the live sidecar ${killedAt - acquiredAt} ms; reclaimed ${reclaimedAfter} ms after the kill`);
  assert.ok(reclaimedAfter >= 5500 && reclaimedAfter <= 8800, `reclaimed ${reclaimedAfter} ms after the kill (TTL 8 s, renewed every 2 s)`);
});
