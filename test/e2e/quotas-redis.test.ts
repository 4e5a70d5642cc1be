/**
 * Quotas with Redis through real Envoy: each store-down policy while Redis is
 * killed and after it comes back (no restart of anything else), and a
 * concurrency lease of a SIGKILLed sidecar reclaimed by its TTL.
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
        leaseSeconds: 5,
        breaker: { failureThreshold: 2, openSeconds: 1 },
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

test('a lease held by a SIGKILLed sidecar is reclaimed by its TTL', async () => {
  const acquiredAt = Date.now();
  const slow = await stack
    .client('lease', { 'x-demo-chunk-delay-ms': '200' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'hold the lease' }] })
    .withResponse();
  const reading = (async () => {
    try {
      for await (const _ of slow.data) {
        // the sidecar dies under this stream
      }
    } catch {
      // expected: the stream is cut
    }
  })();
  await stack.sidecar?.kill();
  await reading;
  await stack.startSidecar();
  // The lease (5 s) outlives the sidecar's restart, so the new sidecar still sees it…
  assert.ok(Date.now() - acquiredAt < 4500, 'the restart took too long for this test to mean anything');
  assert.equal(await code(chat('lease')), 'rate_limit_exceeded', "the dead sidecar's lease still counts");
  // …until its TTL reclaims it.
  // The lease lives in Redis on Redis' clock: the test can only ask until it is gone.
  const admittedAfter = await waitFor(async () => ((await code(chat('lease'))) === 'ok' ? Date.now() - acquiredAt : undefined), {
    what: "the dead sidecar's lease to be reclaimed",
    timeoutMs: 9000,
    intervalMs: 100,
  });
  assert.ok(admittedAfter >= 4500 && admittedAfter <= 7500, `reclaimed ${admittedAfter} ms after it was taken (lease 5 s)`);
});
