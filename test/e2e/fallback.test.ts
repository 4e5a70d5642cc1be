/**
 * Fallback across providers through real Envoy (issue #12 item 3): a target
 * whose deployment answers 529/503 or refuses connections is retried by
 * Envoy on the next member of its aggregate cluster — a deployment of the
 * other provider — and each attempt carries the model name, API and
 * credential of its own member (the sidecar's upstream ext_proc). The
 * official openai and @anthropic-ai/sdk clients, unchanged; the demo server
 * records what each attempt looked like (a `demo-fail-<status>` model always
 * answers that status).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { unusedPort } from '../helpers/ports.ts';
import { scrapeMetrics, startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

let stack: TestStack;
const ANTHROPIC_KEY = 'sk-ant-fallback-member';
const OPENAI_KEY = 'sk-openai-fallback-member';

const anthropicMember = (model: string) => ({ cluster: 'member-anthropic', model, provider: 'anthropic' as const, credential: 'anthropic-key' });
const openaiMember = (model: string) => ({ cluster: 'member-openai', model, provider: 'openai' as const, credential: 'openai-key' });

before(async () => {
  const credentialsDir = join(process.env['TMPDIR'] ?? '/tmp', `igw-fallback-creds-${process.pid}`);
  mkdirSync(credentialsDir, { recursive: true });
  writeFileSync(join(credentialsDir, 'anthropic-key'), `${ANTHROPIC_KEY}\n`);
  writeFileSync(join(credentialsDir, 'openai-key'), `${OPENAI_KEY}\n`);
  const closed = await unusedPort();
  stack = await startTestStack({
    keys: [{ principal: 'alice' }],
    config: { routing: { credentialsDir } },
    // Two names for the demo server (it speaks both APIs) so each member is its own cluster, one that refuses connections, and the aggregates.
    extraClusters: (port) => [
      { name: 'member-anthropic', host: '127.0.0.1', port },
      { name: 'member-openai', host: '127.0.0.1', port },
      { name: 'member-down', host: '127.0.0.1', port: closed },
      { name: 'anthropic-then-openai', aggregate: ['member-anthropic', 'member-openai'] },
      { name: 'openai-then-anthropic', aggregate: ['member-openai', 'member-anthropic'] },
      { name: 'down-then-anthropic', aggregate: ['member-down', 'member-anthropic'] },
      // Its own members: outlier detection ejects a member after 3 consecutive 5xx, and the tests above fail member-openai often.
      { name: 'healthy-openai', host: '127.0.0.1', port },
      { name: 'healthy-anthropic', host: '127.0.0.1', port },
      { name: 'healthy-chain', aggregate: ['healthy-openai', 'healthy-anthropic'] },
      { name: 'failing-anthropic', host: '127.0.0.1', port },
      { name: 'failing-openai', host: '127.0.0.1', port },
      { name: 'failing-chain', aggregate: ['failing-anthropic', 'failing-openai'] },
      { name: 'three-a', host: '127.0.0.1', port },
      { name: 'three-b', host: '127.0.0.1', port },
      { name: 'three-c', host: '127.0.0.1', port },
      { name: 'three-chain', aggregate: ['three-a', 'three-b', 'three-c'] },
    ],
    models: [
      {
        id: 'ha-overloaded-claude',
        endpoints: ['chat', 'messages'],
        ...anthropicMember('demo-fail-529'),
        fallback: { cluster: 'anthropic-then-openai', to: [openaiMember('demo-model')] },
      },
      {
        id: 'ha-unavailable-gpt',
        endpoints: ['chat', 'messages'],
        ...openaiMember('demo-fail-503'),
        fallback: { cluster: 'openai-then-anthropic', to: [anthropicMember('demo-claude')] },
      },
      {
        id: 'ha-unreachable',
        endpoints: ['chat', 'messages'],
        cluster: 'member-down',
        model: 'demo-model',
        fallback: { cluster: 'down-then-anthropic', to: [anthropicMember('demo-claude')] },
      },
      {
        id: 'ha-all-failing',
        endpoints: ['chat', 'messages'],
        ...anthropicMember('demo-fail-429'),
        cluster: 'failing-anthropic',
        fallback: { cluster: 'failing-chain', to: [{ ...openaiMember('demo-fail-503'), cluster: 'failing-openai' }] },
      },
      {
        id: 'ha-three',
        endpoints: ['chat', 'messages'],
        ...anthropicMember('demo-fail-429'),
        cluster: 'three-a',
        fallback: {
          cluster: 'three-chain',
          to: [
            { ...openaiMember('demo-fail-500'), cluster: 'three-b' },
            { ...anthropicMember('demo-claude'), cluster: 'three-c' },
          ],
        },
      },
      {
        id: 'ha-healthy',
        endpoints: ['chat', 'messages'],
        ...openaiMember('demo-model'),
        cluster: 'healthy-openai',
        fallback: { cluster: 'healthy-chain', to: [{ ...anthropicMember('demo-claude'), cluster: 'healthy-anthropic' }] },
      },
    ],
  });
});

after(async () => {
  await stack?.stop();
});

function anthropic(headers: Record<string, string> = {}): Anthropic {
  return new Anthropic({ baseURL: stack.url, apiKey: stack.files.keys['alice'] ?? '', maxRetries: 0, timeout: 20_000, defaultHeaders: headers });
}

interface AttemptLine {
  n: number;
  cluster: string | null;
  model: string | null;
  provider: string | null;
  status: number | null;
  latencyMs: number | null;
}
interface RecordLine {
  requestId: string;
  model: string;
  status: number;
  outcome: string;
  deployment: { cluster: string; model: string; provider: string } | null;
  attempts: AttemptLine[] | null;
  usage: { promptTokens: number; completionTokens: number; source: string } | null;
}

function lastRecord(): RecordLine {
  return readAudit(stack.files.auditFile).at(-1) as unknown as RecordLine;
}

/** What each attempt sent the model server: path, model, credentials. */
function attemptsSeen(): Array<[string, string, string | undefined, string | undefined]> {
  return stack.upstream.requests.map((r: RecordedRequest) => [
    r.path,
    (r.body as { model: string }).model,
    r.headers['x-api-key'] as string | undefined,
    r.headers['authorization'] as string | undefined,
  ]);
}

test('OpenAI client: the Anthropic deployment answers 529, Envoy retries the OpenAI-compatible one; each attempt in its own API with its own key', async () => {
  stack.upstream.clearRequests();
  const { data: res, response } = await stack
    .client()
    .chat.completions.create({ model: 'ha-overloaded-claude', messages: [{ role: 'user', content: 'Hello there' }] })
    .withResponse();
  assert.equal(res.model, 'ha-overloaded-claude', 'the alias, not a deployment name');
  assert.ok((res.choices[0]?.message.content ?? '').length > 0);
  assert.deepEqual(attemptsSeen(), [
    ['/v1/messages', 'demo-fail-529', ANTHROPIC_KEY, undefined],
    ['/v1/chat/completions', 'demo-model', undefined, `Bearer ${OPENAI_KEY}`],
  ]);
  for (const h of ['x-gateway-attempt', 'x-gateway-fallback']) assert.equal(response.headers.get(h), null, `${h} never reaches the client`);
  const rec = lastRecord();
  assert.equal(rec.requestId, response.headers.get('x-request-id'));
  assert.equal(rec.outcome, 'completed');
  assert.deepEqual(rec.deployment, { cluster: 'member-openai', id: 'member-openai/demo-model', model: 'demo-model', provider: 'openai', labels: {} });
  assert.deepEqual(
    rec.attempts?.map((a) => [a.n, a.cluster, a.provider, a.status]),
    [
      [1, 'member-anthropic', 'anthropic', 529],
      [2, 'member-openai', 'openai', 200],
    ],
  );
  assert.ok(rec.attempts?.every((a) => (a.latencyMs ?? -1) >= 0));
  assert.deepEqual(rec.usage, {
    promptTokens: res.usage?.prompt_tokens,
    completionTokens: res.usage?.completion_tokens,
    cachedPromptTokens: 0,
    source: 'counted',
  });
  const metrics = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
  assert.ok((metrics.get('inference_gateway_fallbacks_total{model="ha-overloaded-claude",provider="anthropic",reason="server_error"}') ?? 0) >= 1);
});

test('Anthropic client, streaming: the first member fails, the stream comes from the fallback, translated, in Anthropic events', async () => {
  stack.upstream.clearRequests();
  const stream = anthropic().messages.stream({ model: 'ha-overloaded-claude', max_tokens: 64, messages: [{ role: 'user', content: 'Tell me something' }] });
  const types = new Set<string>();
  for await (const event of stream) types.add(event.type);
  const message = await stream.finalMessage();
  assert.equal(message.model, 'ha-overloaded-claude');
  assert.ok(message.content.some((b) => b.type === 'text' && b.text.length > 0));
  assert.ok(message.usage.output_tokens > 0);
  for (const t of ['message_start', 'content_block_delta', 'message_delta', 'message_stop']) assert.ok(types.has(t), t);
  // Attempt 1 in Anthropic's own API (pass-through), attempt 2 translated into OpenAI's.
  assert.deepEqual(
    attemptsSeen().map(([path, model]) => [path, model]),
    [
      ['/v1/messages', 'demo-fail-529'],
      ['/v1/chat/completions', 'demo-model'],
    ],
  );
  const rec = lastRecord();
  assert.equal(rec.outcome, 'completed');
  assert.equal(rec.deployment?.cluster, 'member-openai');
  assert.equal(rec.usage?.source, 'counted');
  assert.equal(rec.usage?.completionTokens, message.usage.output_tokens);
});

test('Anthropic client: the OpenAI-compatible deployment answers 503, the Anthropic one serves it as is; OpenAI streaming through the same chain', async () => {
  stack.upstream.clearRequests();
  const msg = await anthropic().messages.create({ model: 'ha-unavailable-gpt', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(msg.model, 'ha-unavailable-gpt');
  assert.deepEqual(attemptsSeen(), [
    ['/v1/chat/completions', 'demo-fail-503', undefined, `Bearer ${OPENAI_KEY}`],
    ['/v1/messages', 'demo-claude', ANTHROPIC_KEY, undefined],
  ]);
  // The Anthropic client's own API version reaches the Anthropic member (attempt 1, translated, did not remove it).
  assert.equal(stack.upstream.requests[1]?.headers['anthropic-version'], stack.upstream.requests[0]?.headers['anthropic-version']);
  assert.match(String(stack.upstream.requests[1]?.headers['anthropic-version']), /^\d{4}-\d{2}-\d{2}$/);

  stack.upstream.clearRequests();
  const stream = await stack
    .client()
    .chat.completions.create({ model: 'ha-unavailable-gpt', stream: true, messages: [{ role: 'user', content: 'Stream please' }] });
  let text = '';
  for await (const chunk of stream) {
    assert.equal(chunk.model, 'ha-unavailable-gpt');
    assert.equal(chunk.usage ?? null, null, 'no usage chunk the client did not ask for');
    text += chunk.choices[0]?.delta.content ?? '';
  }
  assert.ok(text.length > 0);
  assert.equal(stack.upstream.requests.length, 2);
  const rec = lastRecord();
  assert.deepEqual(
    rec.attempts?.map((a) => [a.cluster, a.status]),
    [
      ['member-openai', 503],
      ['member-anthropic', 200],
    ],
  );
});

test('a deployment that refuses connections is skipped: the attempt is recorded without a status', async () => {
  stack.upstream.clearRequests();
  const res = await stack.client().chat.completions.create({ model: 'ha-unreachable', messages: [{ role: 'user', content: 'anyone there?' }] });
  assert.equal(res.model, 'ha-unreachable');
  assert.deepEqual(
    attemptsSeen().map(([path, model, key]) => [path, model, key]),
    [['/v1/messages', 'demo-claude', ANTHROPIC_KEY]],
  );
  const rec = lastRecord();
  assert.deepEqual(
    rec.attempts?.map((a) => [a.n, a.cluster, a.status]),
    [
      [1, 'member-down', null],
      [2, 'member-anthropic', 200],
    ],
  );
  const metrics = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
  assert.ok((metrics.get('inference_gateway_fallbacks_total{model="ha-unreachable",provider="openai",reason="unreachable"}') ?? 0) >= 1);
});

test('every member fails: one attempt each (no second round), the last answer in the client’s envelope and SDK error class, recorded as failed', async () => {
  stack.upstream.clearRequests();
  await assert.rejects(
    stack.client().chat.completions.create({ model: 'ha-all-failing', messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 503,
  );
  assert.deepEqual(
    attemptsSeen().map(([, model]) => model),
    ['demo-fail-429', 'demo-fail-503'],
  );
  stack.upstream.clearRequests();
  await assert.rejects(
    anthropic().messages.create({ model: 'ha-all-failing', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => err instanceof Anthropic.InternalServerError && err.status === 503,
  );
  assert.equal(stack.upstream.requests.length, 2);
  const rec = lastRecord();
  assert.equal(rec.outcome, 'failed');
  assert.equal(rec.status, 503);
  assert.deepEqual(
    rec.attempts?.map((a) => [a.cluster, a.status]),
    [
      ['failing-anthropic', 429],
      ['failing-openai', 503],
    ],
  );
});

test('three members (429, then 500, then an answer): Envoy makes as many attempts as the chain has members (the sidecar sets the retry count per request)', async () => {
  stack.upstream.clearRequests();
  const res = await stack.client().chat.completions.create({ model: 'ha-three', messages: [{ role: 'user', content: 'third time lucky' }] });
  assert.equal(res.model, 'ha-three');
  assert.deepEqual(attemptsSeen(), [
    ['/v1/messages', 'demo-fail-429', ANTHROPIC_KEY, undefined],
    ['/v1/chat/completions', 'demo-fail-500', undefined, `Bearer ${OPENAI_KEY}`],
    ['/v1/messages', 'demo-claude', ANTHROPIC_KEY, undefined],
  ]);
  assert.deepEqual(
    lastRecord().attempts?.map((a) => [a.n, a.cluster, a.status]),
    [
      [1, 'three-a', 429],
      [2, 'three-b', 500],
      [3, 'three-c', 200],
    ],
  );
});

test('a stream that breaks after its first bytes is never retried: the model does not run twice', async () => {
  stack.upstream.clearRequests();
  const stream = await stack
    // The break comes 200 ms into the stream, well after the response head reached the client even on a loaded machine
    // (an earlier break can land before it, and then Envoy answers the reset itself).
    .client('alice', { 'x-demo-drop-after': '5', 'x-demo-words': '50', 'x-demo-chunk-delay-ms': '40' })
    .chat.completions.create({ model: 'ha-healthy', stream: true, messages: [{ role: 'user', content: 'long answer' }] });
  await assert.rejects(async () => {
    for await (const chunk of stream) void chunk;
  });
  assert.equal(stack.upstream.requests.length, 1, 'one attempt only');
  await waitFor(() => lastRecord().outcome === 'aborted', { what: 'the broken stream audited as aborted' });
  assert.deepEqual(
    lastRecord().attempts?.map((a) => [a.cluster, a.status]),
    [['healthy-openai', 200]],
  );
});

test('a healthy first member: one attempt, no fallback counted', async () => {
  stack.upstream.clearRequests();
  const before = (await scrapeMetrics(stack.sidecar?.adminUrl ?? '')).get(
    'inference_gateway_fallbacks_total{model="ha-healthy",provider="openai",reason="server_error"}',
  );
  const res = await stack.client().chat.completions.create({ model: 'ha-healthy', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.model, 'ha-healthy');
  assert.equal(stack.upstream.requests.length, 1);
  assert.deepEqual(
    lastRecord().attempts?.map((a) => [a.n, a.cluster, a.status]),
    [[1, 'healthy-openai', 200]],
  );
  const after = (await scrapeMetrics(stack.sidecar?.adminUrl ?? '')).get(
    'inference_gateway_fallbacks_total{model="ha-healthy",provider="openai",reason="server_error"}',
  );
  assert.equal(after, before);
});
