/**
 * Quotas through real Envoy with the embedded in-memory store: 429 with
 * retry-after and OpenAI's x-ratelimit-* headers, daily caps, concurrency
 * leases released at stream end and on abort, and token reservations
 * settled against real usage (which is what lets the next requests in).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({
    keys: [
      { principal: 'rpm', tier: 'rpm' },
      { principal: 'daily', tier: 'daily' },
      { principal: 'conc', tier: 'conc' },
      { principal: 'tokens', tier: 'tokens' },
      { principal: 'free', tier: 'unlimited' },
      { principal: 'soft', tier: 'soft' },
      { principal: 'abort', tier: 'abort' },
      { principal: 'capped', tier: 'capped' },
      { principal: 'uncapped', tier: 'uncapped' },
      { principal: 'count', tier: 'count' },
    ],
    models: [
      { id: 'gpt-demo', endpoints: ['chat', 'completions'], cluster: 'demo-upstream', model: 'demo-model' },
      { id: 'gpt-small', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-small' },
    ],
    config: {
      quotas: {
        timeZone: 'Asia/Kolkata',
        plans: [
          { name: 'rpm', limits: [{ scope: 'key', rpm: 3 }] },
          { name: 'daily', defaultMaxTokens: 100, limits: [{ scope: 'tenant', tpd: 250 }] },
          { name: 'conc', limits: [{ scope: 'key', concurrency: 1 }] },
          // Each request reserves ~500 tokens but uses ~15: only settlement lets five through a 1200 tpm limit.
          { name: 'tokens', defaultMaxTokens: 500, limits: [{ scope: 'key', tpm: 1200 }] },
          { name: 'abort', defaultMaxTokens: 5000, limits: [{ scope: 'key', tpm: 100000 }] },
          { name: 'capped', defaultMaxTokens: 20, limits: [{ scope: 'key', tpd: 1_000_000 }] },
          { name: 'uncapped', defaultMaxTokens: 20, capUnsetMaxTokens: false, limits: [{ scope: 'key', tpm: 1_000_000 }] },
          { name: 'count', limits: [{ scope: 'key', rpm: 1000 }] },
          { name: 'soft', soft: { threshold: 0.5, fallbackModel: 'gpt-small', maxTokens: 5 }, limits: [{ scope: 'key', rpm: 4 }] },
        ],
      },
    },
  });
});

after(async () => {
  await stack.stop();
});

const chat = (principal: string, headers: Record<string, string> = {}) =>
  stack
    .client(principal, headers)
    .chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hello' }] })
    .withResponse();

async function refused(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    return err;
  }
  assert.fail('admitted');
}

test('requests per minute: admitted requests carry x-ratelimit-*; the 4th is a 429 with retry-after', async () => {
  const first = await chat('rpm');
  assert.equal(first.response.headers.get('x-ratelimit-limit-requests'), '3');
  assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '2');
  assert.match(first.response.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+(ms|s)$|^\d+m\d+s$/);
  await chat('rpm');
  await chat('rpm');
  stack.upstream.clearRequests();
  const err = await refused(chat('rpm'));
  assert.equal(err.status, 429);
  assert.equal(err.code, 'rate_limit_exceeded');
  assert.equal((err.error as { type?: string }).type, 'rate_limit_error');
  const retry = Number(err.headers?.get('retry-after'));
  // Sliding window: the refused request fits once the weighted estimate has fallen, up to ~1.33 windows here.
  assert.ok(retry >= 1 && retry <= 120, `retry-after ${retry}`);
  assert.equal(err.headers?.get('x-ratelimit-remaining-requests'), '0');
  assert.equal(stack.upstream.requests.length, 0);
  const ok = await chat('free');
  assert.equal(ok.response.headers.get('x-ratelimit-limit-requests'), null, 'a tier without a plan has no quota');
});

test('daily token cap: exhausted → 429 insufficient_quota until midnight in the configured zone', async () => {
  await chat('daily'); // reserves ~101, settles to ~15
  for (let i = 0; i < 12; i++) {
    try {
      await chat('daily');
    } catch (err) {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal(err.code, 'insufficient_quota');
      assert.equal(err.status, 429);
      const retry = Number((err.headers as Headers | undefined)?.get('retry-after'));
      assert.ok(retry > 0 && retry <= 86_400, `retry-after ${retry} is the time to local midnight`);
      return;
    }
  }
  assert.fail('the daily cap never refused');
});

test('concurrency: a second request while a stream is open is refused; the lease is released at stream end', async () => {
  const slow = await stack
    .client('conc', { 'x-demo-chunk-delay-ms': '40' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'slow' }] })
    .withResponse();
  const err = await refused(chat('conc'));
  assert.equal(err.code, 'rate_limit_exceeded');
  for await (const _ of slow.data) {
    // drain
  }
  await chat('conc');
});

test('concurrency: a client that aborts mid-stream gets its lease back', async () => {
  const controller = new AbortController();
  const stream = await stack
    .client('conc', { 'x-demo-chunk-delay-ms': '100' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'abort me' }] }, { signal: controller.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) {
      if (++chunks === 2) controller.abort();
    }
  } catch {
    // the abort surfaces as an error
  }
  // Refused (429) while the lease is still held; admitted once the aborted stream has released it.
  await waitFor(
    () =>
      chat('conc').then(
        () => true,
        () => false,
      ),
    { what: 'the aborted stream to release its lease', timeoutMs: 2000, intervalMs: 50 },
  );
  const aborted = readAudit(stack.files.auditFile).filter((r) => r.outcome === 'aborted' && r.identity?.principal === 'conc');
  assert.ok(aborted.length >= 1, 'the aborted request is audited');
});

test('token reservations are settled against real usage, buffered and streamed', async () => {
  for (let i = 0; i < 3; i++) await chat('tokens');
  for (let i = 0; i < 2; i++) {
    const s = await stack.client('tokens').chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'stream' }] });
    for await (const _ of s) {
      // drain
    }
  }
  const recs = readAudit(stack.files.auditFile).filter((r) => r.identity?.principal === 'tokens');
  assert.equal(recs.length, 5);
  for (const r of recs) assert.deepEqual((r as unknown as { quota: { plan: string; mode: string } }).quota.plan, 'tokens');
});

test('a request without max_tokens is capped at what its plan reserved, so token limits hold for long generations', async () => {
  const ask = (principal: string, extra: { max_tokens?: number; stream?: boolean } = {}) =>
    stack
      .client(principal, { 'x-demo-words': '200' })
      .chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'write a lot' }], ...extra, stream: false });
  const sent = () => (stack.upstream.requests.at(-1)?.body as { max_tokens?: number }).max_tokens;

  const capped = await ask('capped');
  assert.equal(sent(), 20, 'defaultMaxTokens goes upstream as max_tokens');
  assert.ok((capped.usage?.completion_tokens ?? Infinity) <= 20, `the model stopped at the reservation (${capped.usage?.completion_tokens})`);
  await ask('capped', { max_tokens: 7 });
  assert.equal(sent(), 7, "the client's own max_tokens is kept");
  // Streams too: the cap is in the body the model sees.
  const stream = await stack
    .client('capped', { 'x-demo-words': '200' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'write a lot' }] });
  let chunks = 0;
  for await (const c of stream) if (c.choices[0]?.delta.content) chunks++;
  assert.equal(sent(), 20);
  assert.ok(chunks <= 20, `${chunks} content chunks`);

  const free = await ask('uncapped');
  assert.equal(sent(), undefined, 'capUnsetMaxTokens: false leaves the request as the client sent it');
  assert.ok((free.usage?.completion_tokens ?? 0) > 20);
  await ask('count');
  assert.equal(sent(), undefined, 'a plan without token limits does not cap');
});

test('past the soft threshold requests go to the fallback deployment with max_tokens capped, before the hard limit', async () => {
  stack.upstream.clearRequests();
  await chat('soft');
  await chat('soft');
  const seen = () => stack.upstream.requests.at(-1)?.body as { model: string; max_tokens?: number };
  assert.equal(seen().model, 'demo-model', 'half used: not past the threshold');
  const third = await chat('soft');
  assert.equal(seen().model, 'demo-small');
  assert.equal(seen().max_tokens, 5);
  assert.equal(stack.upstream.requests.at(-1)?.headers['x-gateway-degraded'], 'fallback');
  assert.ok(third.data.choices[0]?.message.content);
  await chat('soft');
  assert.equal((await refused(chat('soft'))).code, 'rate_limit_exceeded', 'the hard limit still refuses');
});

test('an aborted stream is charged what it produced, not its reservation', async () => {
  const controller = new AbortController();
  const stream = await stack
    .client('abort', { 'x-demo-chunk-delay-ms': '50', 'x-demo-words': '200' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'abort me' }] }, { signal: controller.signal });
  let chunks = 0;
  try {
    for await (const _ of stream) if (++chunks === 3) controller.abort();
  } catch {
    // aborted
  }
  // The next request reserves 5000 + its prompt; the remaining tokens show what the aborted one kept.
  // The sidecar settles a request as it writes its record (processor.ts): wait for the record.
  await waitFor(() => readAudit(stack.files.auditFile).some((r) => r.identity?.principal === 'abort'), {
    what: 'the aborted request to be audited (and settled)',
    timeoutMs: 2000,
  });
  const next = await chat('abort');
  const remaining = Number(next.response.headers.get('x-ratelimit-remaining-tokens'));
  const reservedByNext = 5000 + 2;
  const keptByAborted = 100000 - reservedByNext - remaining;
  assert.ok(keptByAborted >= 1 && keptByAborted < 100, `the aborted stream kept ${keptByAborted} tokens (it reserved ~5000)`);
});
