/**
 * A target with fallbacks, over fake ports: the downstream phase (once per
 * request) and the upstream phase (once per attempt, src/pipeline/attempt.ts)
 * played in the order Envoy plays them, with one header map mutated across
 * attempts as Envoy's router does. What the same exchange does through real
 * Envoy is test/e2e/fallback.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { anthropicFamily } from '../../src/families/anthropic/family.ts';
import { TRANSLATORS } from '../../src/families/translate/port.ts';
import { ATTEMPT_HEADER, decodeMark, decodeTicket, encodeMark, encodeTicket, FALLBACK_HEADER } from '../../src/pipeline/fallback.ts';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import type { Deployment } from '../../src/pipeline/snapshot.ts';
import { MemoryAttemptLedger } from '../../src/stages/route/attempt-ledger.ts';
import { deployment, rig, route, snapshot, USER_KEY, type Rig } from './fakes.ts';

const claude = deployment('claude-pool', 'claude-x', { provider: 'anthropic', credential: 'anthropic-key' });
const gpt = deployment('gpt-pool', 'gpt-x', { credential: 'openai-key' });
const third = deployment('local-pool', 'llama');

function withChain(chain: Deployment[]): Deployment {
  const [primary] = chain as [Deployment];
  return { ...primary, fallback: { cluster: 'chat-failover', chain: [primary, ...chain.slice(1).map((d) => ({ ...d, weight: 0 }))] } };
}

function fallbackRig(
  chain: Deployment[] = [claude, gpt],
  credentials: Record<string, string> = { 'anthropic-key': 'sk-ant-secret', 'openai-key': 'sk-oai-secret' },
): Rig {
  return rig({
    families: [anthropicFamily, openAIFamily],
    translators: TRANSLATORS,
    credentials,
    snapshot: snapshot([route('ha', ['chat', 'messages'], [withChain(chain)])]),
  });
}

type Headers = Map<string, string>;

/** Applies a phase's header edits to the map Envoy keeps (the router reuses it for the next attempt). */
function apply(h: Headers, r: PhaseResult): void {
  if (r.kind !== 'continue') return;
  for (const name of r.headers?.remove ?? []) h.delete(name);
  for (const [k, v] of r.headers?.set ?? []) h.set(k, v);
}

function cont(r: PhaseResult): Extract<PhaseResult, { kind: 'continue' }> {
  if (r.kind !== 'continue') assert.fail(`expected continue, got ${r.status}: ${r.body.toString()}`);
  return r;
}

/** The downstream request phases of an OpenAI chat request; returns the state, the header map and the body Envoy holds. */
async function downstream(g: Rig, body: object = { model: 'ha', messages: [{ role: 'user', content: 'hello' }] }) {
  const headers: Headers = new Map(
    Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }),
  );
  const head = await g.processor.requestHeaders(headers, false, NO_CONNECTION_INFO);
  apply(headers, head.result);
  const result = await g.processor.requestBody(head.state, Buffer.from(JSON.stringify(body)));
  apply(headers, result);
  return { state: head.state, headers, result };
}

/** One attempt as Envoy's upstream filter plays it: headers (numbered), body, and the member's status (null: refused connection). */
function attempt(g: Rig, headers: Headers, body: Buffer, n: number, member: string, status: number | null) {
  headers.set('x-envoy-attempt-count', String(n));
  const begun = g.attempts.begin(headers, member);
  assert.ok(begun.state !== null, JSON.stringify(begun.result));
  apply(headers, begun.result);
  const rewritten = cont(g.attempts.body(begun.state, body));
  apply(headers, rewritten);
  const sent = { path: headers.get(':path'), headers: new Map(headers), body: JSON.parse((rewritten.body ?? body).toString()) as Record<string, unknown> };
  const response = status === null ? null : cont(g.attempts.responseHeaders(begun.state, new Map([[':status', String(status)]])));
  return { sent, mark: new Map(response?.headers?.set ?? []).get(ATTEMPT_HEADER) };
}

test('an OpenAI client whose Anthropic primary answers 429 is served by the OpenAI fallback: each attempt in its own API, model and credential', async () => {
  const g = fallbackRig();
  const { state, headers, result } = await downstream(g);
  const down = cont(result);
  const set = new Map(down.headers?.set ?? []);
  // To the aggregate, in the client's API, with the ticket and one retry per further member.
  assert.equal(set.get('x-gateway-target-cluster'), 'chat-failover');
  assert.equal(set.get('x-envoy-max-retries'), '1');
  assert.equal(set.has(':path'), false);
  assert.equal(set.has('authorization'), false, 'no credential before the attempt knows its member');
  assert.deepEqual(decodeTicket(set.get(FALLBACK_HEADER)), {
    family: 'openai',
    endpoint: 'chat',
    model: 'ha',
    tenant: 'research',
    target: 0,
    cap: null,
    allowed: null,
    rules: [],
  });
  const body = down.body ?? Buffer.alloc(0);
  assert.equal((JSON.parse(body.toString()) as { messages: unknown[] }).messages.length, 1);

  const a1 = attempt(g, headers, body, 1, 'claude-pool', 429);
  assert.equal(a1.sent.path, '/v1/messages');
  assert.equal(a1.sent.headers.get('x-api-key'), 'sk-ant-secret');
  assert.equal(a1.sent.headers.get('anthropic-version'), '2023-06-01');
  assert.equal(a1.sent.headers.has('authorization'), false);
  assert.equal(a1.sent.body.model, 'claude-x');
  assert.equal(typeof a1.sent.body.max_tokens, 'number', 'Anthropic requires max_tokens');

  const a2 = attempt(g, headers, body, 2, 'gpt-pool', 200);
  assert.equal(a2.sent.path, '/v1/chat/completions', "attempt 1's path is not kept");
  assert.equal(a2.sent.headers.get('authorization'), 'Bearer sk-oai-secret');
  assert.equal(a2.sent.headers.has('x-api-key'), false, 'the Anthropic key never reaches the OpenAI deployment');
  assert.equal(a2.sent.body.model, 'gpt-x');
  assert.deepEqual(a2.sent.body.messages, [{ role: 'user', content: 'hello' }]);
  assert.deepEqual(decodeMark(a2.mark), { n: 2, cluster: 'gpt-pool', error: null });

  // The answering attempt's response reaches the downstream phase: untranslated (gpt speaks OpenAI), mark removed.
  const rh = cont(
    await g.processor.responseHeaders(
      state,
      new Map([
        [':status', '200'],
        ['content-type', 'application/json'],
        [ATTEMPT_HEADER, a2.mark ?? ''],
      ]),
      false,
    ),
  );
  assert.ok(rh.headers?.remove.includes(ATTEMPT_HEADER));
  const answer = {
    id: 'x',
    object: 'chat.completion',
    model: 'gpt-x',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
  };
  const rb = cont(await g.processor.responseBody(state, Buffer.from(JSON.stringify(answer)), true));
  assert.equal((JSON.parse((rb.body ?? Buffer.alloc(0)).toString()) as { model: string }).model, 'ha', "the alias, not the fallback's name");

  const rec = g.audit.records[0];
  assert.equal(g.audit.records.length, 1);
  assert.deepEqual(rec?.deployment, { cluster: 'gpt-pool', id: 'gpt-pool/gpt-x', model: 'gpt-x', provider: 'openai', labels: {} });
  assert.deepEqual(
    rec?.attempts?.map((a) => [a.n, a.cluster, a.provider, a.status]),
    [
      [1, 'claude-pool', 'anthropic', 429],
      [2, 'gpt-pool', 'openai', 200],
    ],
  );
  assert.ok(rec?.attempts?.every((a) => typeof a.latencyMs === 'number' && a.latencyMs >= 0));
  assert.equal(rec?.status, 200);
  assert.equal(rec?.outcome, 'completed');
  assert.deepEqual(rec?.usage, { promptTokens: 3, completionTokens: 1, cachedPromptTokens: 0, source: 'counted' });
  const metrics = await g.metrics.registry.getSingleMetricAsString('inference_gateway_fallbacks_total');
  assert.match(metrics, /inference_gateway_fallbacks_total\{model="ha",provider="anthropic",reason="rate_limited"\} 1/);
});

test('the answer of a translated member is translated back by the downstream phase; a refused connection is recorded without a status', async () => {
  const g = fallbackRig([gpt, claude]);
  const { state, headers, result } = await downstream(g);
  const body = cont(result).body ?? Buffer.alloc(0);
  attempt(g, headers, body, 1, 'gpt-pool', null); // connection refused: no response headers
  const a2 = attempt(g, headers, body, 2, 'claude-pool', 200);
  assert.equal(a2.sent.headers.has('authorization'), false, 'the OpenAI key never reaches Anthropic');
  await g.processor.responseHeaders(
    state,
    new Map([
      [':status', '200'],
      ['content-type', 'application/json'],
      [ATTEMPT_HEADER, a2.mark ?? ''],
    ]),
    false,
  );
  const message = {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [{ type: 'text', text: 'hi' }],
    stop_reason: 'end_turn',
    usage: { input_tokens: 5, output_tokens: 2 },
  };
  const rb = cont(await g.processor.responseBody(state, Buffer.from(JSON.stringify(message)), true));
  const out = JSON.parse((rb.body ?? Buffer.alloc(0)).toString()) as { object: string; model: string; choices: Array<{ message: { content: string } }> };
  assert.equal(out.object, 'chat.completion');
  assert.equal(out.model, 'ha');
  assert.equal(out.choices[0]?.message.content, 'hi');
  const rec = g.audit.records[0];
  assert.deepEqual(
    rec?.attempts?.map((a) => [a.n, a.cluster, a.status, a.latencyMs === null]),
    [
      [1, 'gpt-pool', null, true],
      [2, 'claude-pool', 200, false],
    ],
  );
  assert.deepEqual(rec?.usage, { promptTokens: 5, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' });
  assert.match(await g.metrics.registry.getSingleMetricAsString('inference_gateway_fallbacks_total'), /provider="openai",reason="unreachable"\} 1/);
  // Per deployment, every attempt: the refused connection as status class none (and no latency), the answer as 2xx.
  const upstream = await g.metrics.registry.getSingleMetricAsString('inference_gateway_upstream_responses_total');
  assert.match(upstream, /\{model="ha",cluster="gpt-pool",provider="openai",status_class="none"\} 1$/m);
  assert.match(upstream, /\{model="ha",cluster="claude-pool",provider="anthropic",status_class="2xx"\} 1$/m);
  assert.equal(upstream.match(/status_class=/g)?.length, 2);
  const latency = await g.metrics.registry.getSingleMetricAsString('inference_gateway_upstream_latency_seconds');
  assert.match(latency, /inference_gateway_upstream_latency_seconds_count\{cluster="claude-pool"\} 1$/m);
  assert.doesNotMatch(latency, /cluster="gpt-pool"/);
});

test('three members: every attempt numbered, the last member answers; every failed member is counted', async () => {
  const g = fallbackRig([claude, third, gpt]);
  const { state, headers, result } = await downstream(g);
  const down = cont(result);
  assert.equal(new Map(down.headers?.set ?? []).get('x-envoy-max-retries'), '2');
  const body = down.body ?? Buffer.alloc(0);
  attempt(g, headers, body, 1, 'claude-pool', 503);
  const a2 = attempt(g, headers, body, 2, 'local-pool', 500);
  assert.equal(a2.sent.headers.has('authorization'), false, 'a member without a credential gets none (no earlier one left over)');
  assert.equal(a2.sent.headers.has('x-api-key'), false);
  const a3 = attempt(g, headers, body, 3, 'gpt-pool', 200);
  await g.processor.responseHeaders(
    state,
    new Map([
      [':status', '200'],
      [ATTEMPT_HEADER, a3.mark ?? ''],
    ]),
    true,
  );
  assert.deepEqual(
    g.audit.records[0]?.attempts?.map((a) => [a.n, a.cluster, a.status]),
    [
      [1, 'claude-pool', 503],
      [2, 'local-pool', 500],
      [3, 'gpt-pool', 200],
    ],
  );
});

test('every member answered 5xx: the client gets the last answer, in its own API, recorded as failed', async () => {
  const g = fallbackRig([gpt, claude]);
  const { state, headers, result } = await downstream(g);
  const body = cont(result).body ?? Buffer.alloc(0);
  attempt(g, headers, body, 1, 'gpt-pool', 503);
  const a2 = attempt(g, headers, body, 2, 'claude-pool', 529);
  await g.processor.responseHeaders(
    state,
    new Map([
      [':status', '529'],
      ['content-type', 'application/json'],
      [ATTEMPT_HEADER, a2.mark ?? ''],
    ]),
    false,
  );
  const err = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
  const rb = cont(await g.processor.responseBody(state, Buffer.from(JSON.stringify(err)), true));
  const out = JSON.parse((rb.body ?? Buffer.alloc(0)).toString()) as { error: { message: string } };
  assert.match(out.error.message, /Overloaded/, "Anthropic's error in OpenAI's envelope");
  assert.equal(g.audit.records[0]?.outcome, 'failed');
  assert.equal(g.audit.records[0]?.deployment?.cluster, 'claude-pool');
});

test('no attempt answered (Envoy replied itself): no deployment is recorded as having served, every attempt is listed', async () => {
  const g = fallbackRig([gpt, claude]);
  const { state, headers, result } = await downstream(g);
  const body = cont(result).body ?? Buffer.alloc(0);
  attempt(g, headers, body, 1, 'gpt-pool', null);
  attempt(g, headers, body, 2, 'claude-pool', null);
  await g.processor.responseHeaders(state, new Map([[':status', '503']]), true);
  const rec = g.audit.records[0];
  assert.equal(rec?.deployment, null);
  assert.deepEqual(
    rec?.attempts?.map((a) => [a.n, a.cluster, a.status]),
    [
      [1, 'gpt-pool', null],
      [2, 'claude-pool', null],
    ],
  );
  assert.equal(rec?.outcome, 'failed');
});

test('a request one member cannot take is refused before any model runs: a parameter its provider lacks, a missing credential', async () => {
  const g = fallbackRig();
  const { result } = await downstream(g, { model: 'ha', n: 2, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(result.kind, 'respond');
  assert.equal(result.kind === 'respond' ? result.status : 0, 400);
  assert.equal(g.ledger.take('req-0001').length, 0);

  const g2 = fallbackRig([gpt, claude], { 'openai-key': 'k' });
  const r2 = await downstream(g2);
  assert.equal(r2.result.kind === 'respond' ? r2.result.status : 0, 503);
  assert.match(r2.result.kind === 'respond' ? r2.result.body.toString() : '', /anthropic-key/);
});

test('an attempt on a member outside the chain, or with an unreadable ticket, is answered by the sidecar in the client API and marked with its code', async () => {
  const g = fallbackRig();
  const { headers } = await downstream(g);
  headers.set('x-envoy-attempt-count', '1');
  const stray = g.attempts.begin(headers, 'some-other-cluster');
  assert.equal(stray.state, null);
  assert.equal(stray.result.kind, 'respond');
  if (stray.result.kind !== 'respond') return;
  assert.equal(stray.result.status, 503);
  assert.deepEqual(decodeMark(new Map(stray.result.headers).get(ATTEMPT_HEADER)), { n: 1, cluster: 'some-other-cluster', error: 'upstream_unavailable' });
  assert.ok((JSON.parse(stray.result.body.toString()) as { error?: unknown }).error !== undefined);

  headers.set(FALLBACK_HEADER, 'v1;not-a-ticket');
  const unreadable = g.attempts.begin(headers, 'gpt-pool');
  assert.equal(unreadable.result.kind === 'respond' ? unreadable.result.status : 0, 500);

  // No ticket at all: an aggregate used without a chain (interchangeable members): passed on untouched, not noted.
  headers.delete(FALLBACK_HEADER);
  const bare = g.attempts.begin(headers, 'gpt-pool');
  assert.deepEqual(bare, { state: null, result: { kind: 'continue' } });
  assert.deepEqual(g.ledger.take(headers.get('x-request-id') ?? ''), []);
});

test('the sidecar refused an attempt: the client gets that reply as is, recorded with its code', async () => {
  const g = fallbackRig();
  const { state } = await downstream(g);
  const mark = encodeMark({ n: 1, cluster: 'claude-pool', error: 'upstream_credential_unavailable' });
  const reply = JSON.stringify({ error: { message: 'The credential for this deployment (anthropic-key) is not available.' } });
  await g.processor.responseHeaders(
    state,
    new Map([
      [':status', '503'],
      ['content-type', 'application/json'],
      [ATTEMPT_HEADER, mark],
    ]),
    false,
  );
  const rb = cont(await g.processor.responseBody(state, Buffer.from(reply), true));
  assert.equal(rb.body, undefined, 'not translated a second time');
  assert.equal(g.audit.records[0]?.decision.code, 'upstream_credential_unavailable');
});

test('a target without fallbacks records no attempts and sends no ticket', async () => {
  const g = rig();
  const { result } = await downstream(g, { model: 'gpt', messages: [{ role: 'user', content: 'x' }] });
  const set = new Map(cont(result).headers?.set ?? []);
  assert.equal(set.has(FALLBACK_HEADER), false);
  assert.equal(set.has('x-envoy-max-retries'), false);
});

test('ticket and mark codecs: round trip, and anything else is refused', () => {
  const t = { family: 'anthropic', endpoint: 'messages' as const, model: 'a;b/c@d', tenant: 'ten ant;x', target: 3, cap: 512, allowed: null, rules: [] };
  assert.deepEqual(decodeTicket(encodeTicket(t)), t);
  const constrained = { ...t, allowed: ['eu-1', 'eu-2'], rules: ['eu-residency', 'phi-hipaa'] };
  assert.deepEqual(decodeTicket(encodeTicket(constrained)), constrained);
  const none = { ...t, allowed: [], rules: ['phi-hipaa'] };
  assert.deepEqual(decodeTicket(encodeTicket(none)), none);
  for (const bad of [
    undefined,
    '',
    'v1;a;b;c;d;0;-',
    'v2;a;b;c;d;0;-;*',
    'v2;a;b;c;d;-1;-;*;',
    'v2;a;b;c;d;0;x;*;',
    'v2;a;b;c;d;0;-',
    'v2;%E0%A4%A;b;c;d;0;-;*;',
  ])
    assert.equal(decodeTicket(bad), null, String(bad));
  assert.deepEqual(decodeMark('2 gpt-pool'), { n: 2, cluster: 'gpt-pool', error: null });
  for (const bad of [undefined, '', '0 x', 'x y', '2 a b c', '2 a Bad-Code']) assert.equal(decodeMark(bad), null, String(bad));
});

test('the ledger numbers attempts itself when Envoy sent no count, keeps them in order and forgets them once taken or expired', () => {
  let now = 0;
  const ledger = new MemoryAttemptLedger({ now: () => now });
  assert.equal(ledger.started('r', null, gpt), 1);
  assert.equal(ledger.started('r', null, claude), 2);
  ledger.answered('r', 1, 503);
  assert.deepEqual(
    ledger.take('r').map((a) => [a.n, a.deployment.cluster, a.status]),
    [
      [1, 'gpt-pool', 503],
      [2, 'claude-pool', null],
    ],
  );
  assert.deepEqual(ledger.take('r'), []);
  ledger.started('s', 1, gpt);
  now += 11 * 60_000;
  assert.deepEqual(ledger.take('s'), [], 'an entry nobody took expires');
});

test('the client leaves while the fallback is being tried: the record lists the attempts made and no serving deployment', async () => {
  const g = fallbackRig();
  const { state, headers, result } = await downstream(g);
  const body = cont(result).body ?? Buffer.alloc(0);
  attempt(g, headers, body, 1, 'claude-pool', 529);
  attempt(g, headers, body, 2, 'gpt-pool', null);
  await g.processor.abort(state, 'cancelled');
  const rec = g.audit.records[0];
  assert.equal(rec?.outcome, 'aborted');
  assert.equal(rec?.deployment, null);
  assert.deepEqual(
    rec?.attempts?.map((a) => [a.n, a.cluster, a.status]),
    [
      [1, 'claude-pool', 529],
      [2, 'gpt-pool', null],
    ],
  );
});

test("a model's transforms reach every attempt of a fallback chain: applied once in the client's API, each member's body translated from it", async () => {
  const g = rig({
    families: [anthropicFamily, openAIFamily],
    translators: TRANSLATORS,
    credentials: { 'anthropic-key': 'sk-ant-secret', 'openai-key': 'sk-oai-secret' },
    snapshot: snapshot([
      route('ha', ['chat', 'messages'], [withChain([claude, gpt])], new Map(), { defaults: {}, forced: { max_tokens: 77 }, systemPrefix: 'Be brief.' }),
    ]),
  });
  const { headers, result } = await downstream(g, { model: 'ha', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5000 });
  const body = cont(result).body ?? Buffer.alloc(0);
  const a1 = attempt(g, headers, body, 1, 'claude-pool', 503);
  assert.equal(a1.sent.body['system'], 'Be brief.');
  assert.equal(a1.sent.body['max_tokens'], 77);
  const a2 = attempt(g, headers, body, 2, 'gpt-pool', 200);
  assert.deepEqual(a2.sent.body['messages'], [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'hello' },
  ]);
  assert.equal(a2.sent.body['max_tokens'], 77);
  assert.equal(g.quota.admitted[0]?.maxTokens, 77);
});
