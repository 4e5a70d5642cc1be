/**
 * The request processor over plain fake ports: whole phase sequences
 * (request headers → body → response headers → chunks → end), denials,
 * aborts, sink failures and stream redaction, each a case of its own. No
 * sockets, no Envoy: the whole file runs in milliseconds. What the same
 * sequences look like through real Envoy is test/e2e.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { anthropicFamily } from '../../src/families/anthropic/family.ts';
import { TRANSLATORS } from '../../src/families/translate/port.ts';
import { deployment, drive, identity, rig, route, snapshot, streamedText, USER_KEY, type Rig, type Run, type Step } from './fakes.ts';
import { tinyFamily } from './tiny-family.ts';
import { canonicalJson } from '../../src/crypto/canonical.ts';
import { chainedRecord } from '../../src/stores/audit/chain.ts';

const AUTH = { authorization: `Bearer ${USER_KEY}` };
const chatHead = (extra: Record<string, string> = {}): Step => ({
  phase: 'request_headers',
  headers: { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', ...AUTH, ...extra },
});
const chatBody = (over: Record<string, unknown> = {}): Step => ({
  phase: 'request_body',
  body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hello there' }], ...over }),
});
const okHead = (type = 'application/json'): Step => ({ phase: 'response_headers', headers: { ':status': '200', 'content-type': type } });
const completion = (text: string, usage: object | null = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }): string =>
  JSON.stringify({
    id: 'c1',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    ...(usage === null ? {} : { usage }),
  });
const sse = (...events: object[]): string => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
const delta = (content: string): object => ({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] });
const usageChunk = (p: number, c: number): object => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [],
  usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
});

function respond(r: PhaseResult | undefined): Extract<PhaseResult, { kind: 'respond' }> {
  assert.equal(r?.kind, 'respond', `expected a local reply, got ${JSON.stringify(r)}`);
  return r;
}
function cont(r: PhaseResult | undefined): Extract<PhaseResult, { kind: 'continue' }> {
  assert.equal(r?.kind, 'continue', `expected continue, got ${r?.kind === 'respond' ? r.body.toString() : String(r?.kind)}`);
  return r;
}
function errorOf(r: PhaseResult | undefined): { status: number; code: string; type: string; param: string | null } {
  const reply = respond(r);
  const body = JSON.parse(reply.body.toString('utf8')) as { error: { code: string; type: string; param: string | null } };
  return { status: reply.status, code: body.error.code, type: body.error.type, param: body.error.param };
}
function setHeaders(r: PhaseResult | undefined): Map<string, string> {
  return new Map(cont(r).headers?.set ?? []);
}
function onlyRecord(g: Rig): NonNullable<Rig['audit']['records'][number]> {
  assert.equal(g.audit.records.length, 1, 'exactly one audit record per request');
  return g.audit.records[0] as Rig['audit']['records'][number];
}

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
  readonly setup?: (g: Rig) => void;
  readonly rig?: () => Rig;
  readonly check: (run: Run, g: Rig, steps: readonly Step[]) => void;
}

const cases: Case[] = [
  {
    name: 'a permitted chat request: routed, enriched, rewritten, metered from the buffered body, audited completed',
    steps: [
      chatHead({ 'x-gateway-tenant': 'forged', 'x-request-id': 'client-request-0001' }),
      chatBody(),
      okHead(),
      { phase: 'response_body', chunk: completion('Hi!'), endOfStream: true },
    ],
    check: ({ results }, g) => {
      const head = cont(results[0]);
      assert.ok(head.headers?.remove.includes('authorization'));
      assert.ok(head.headers?.remove.includes('x-gateway-tenant'), 'a client-sent x-gateway-* is removed');
      const set = new Map(head.headers?.set);
      assert.equal(set.get('x-gateway-tenant'), 'research');
      assert.equal(set.get('x-request-id'), 'client-request-0001');
      const body = cont(results[1]);
      assert.equal(body.clearRouteCache, true);
      assert.equal(setHeaders(results[1]).get('x-gateway-target-cluster'), 'c1');
      assert.equal((JSON.parse(body.body?.toString() ?? '{}') as { model: string }).model, 'up-gpt');
      assert.equal(setHeaders(results[1]).get('content-length'), String(body.body?.length));
      assert.equal(setHeaders(results[2]).get('x-ratelimit-limit-requests'), '10');
      assert.equal(cont(results[3]).body, undefined, 'nothing to change in the response');
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'completed');
      assert.equal(rec.status, 200);
      assert.deepEqual(rec.usage, { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0, source: 'counted' });
      assert.deepEqual(rec.deployment, { cluster: 'c1', id: 'c1/up-gpt', model: 'up-gpt', provider: 'openai', labels: {} });
      // Built in canonical key order with its chain slot, linked in place by the chain: serialized by the native
      // JSON.stringify (and a record without the slot is copied around it, in order too).
      assert.equal(rec.chain, null);
      const linked = { ...rec, chain: { id: 'chain-1', prev: '0'.repeat(64), seq: 1 } };
      assert.equal(JSON.stringify(linked), canonicalJson(linked));
      const { chain: _chain, type: _type, ...bare } = linked;
      const framed = chainedRecord(bare, linked.chain);
      assert.equal(JSON.stringify(framed), JSON.stringify(linked));
      assert.deepEqual(g.quota.settled, [{ requestId: 'client-request-0001', usedTokens: 10 }]);
      assert.equal(g.quota.admitted[0]?.generates, true);
    },
  },
  {
    name: 'no credential: 401 before the body is read, audited as denied',
    steps: [{ phase: 'request_headers', headers: { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' } }, chatBody()],
    check: ({ results }, g) => {
      assert.equal(results.length, 1, 'no body phase after a local reply');
      assert.deepEqual(errorOf(results[0]), { status: 401, code: 'missing_api_key', type: 'authentication_error', param: null });
      assert.equal(respond(results[0]).headers.find(([k]) => k === 'x-request-id')?.[1], 'req-0001');
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'denied');
      assert.equal(rec.decision.action, 'deny');
      assert.equal(g.quota.admitted.length, 0);
    },
  },
  {
    name: 'an anonymous caller learns nothing about paths: an unknown path is 401, not 404',
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/admin/secrets' } }],
    check: ({ results }) => assert.equal(errorOf(results[0]).code, 'missing_api_key'),
  },
  {
    name: 'a query string goes no further than the sidecar: :path is set without it, the record holds the path only',
    steps: [
      chatHead({ ':path': '/v1/chat/completions?foo=bar&debug=1' }),
      chatBody(),
      okHead(),
      { phase: 'response_body', chunk: completion('Hi!'), endOfStream: true },
    ],
    check: ({ results }, g) => {
      assert.equal(setHeaders(results[0]).get(':path'), '/v1/chat/completions');
      assert.equal(setHeaders(results[1]).has(':path'), false, 'an untranslated body phase leaves the path as the head set it');
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'completed');
      assert.equal(rec.path, '/v1/chat/completions');
    },
  },
  {
    name: 'a request without a query still gets its :path set (every inference request upstream has one the sidecar chose)',
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.equal(setHeaders(results[0]).get(':path'), '/v1/chat/completions'),
  },
  {
    name: 'a credential in the query: 400 credential_in_query before authentication is attempted, audited with the bare path',
    steps: [chatHead({ ':path': `/v1/chat/completions?model=x&api_key=${USER_KEY}` }), chatBody()],
    check: ({ results }, g) => {
      assert.equal(results.length, 1, 'refused at the head');
      assert.deepEqual(errorOf(results[0]), { status: 400, code: 'credential_in_query', type: 'invalid_request_error', param: null });
      const message = (JSON.parse(respond(results[0]).body.toString()) as { error: { message: string } }).error.message;
      assert.match(message, /parameter 'api_key'/);
      assert.match(message, /Authorization: Bearer/, 'the error says to use the header');
      assert.equal(message.includes(USER_KEY), false, 'the value is never echoed');
      assert.equal(g.auth.seen.length, 0, 'no credential was checked');
      const rec = onlyRecord(g);
      assert.equal(rec.path, '/v1/chat/completions');
      assert.equal(rec.decision.code, 'credential_in_query');
      assert.equal(rec.identity, null);
      assert.equal(JSON.stringify(rec).includes(USER_KEY), false, 'the key is nowhere in the record');
    },
  },
  {
    name: 'a gateway key in any query parameter, from an anonymous caller on any path: credential_in_query, not missing_api_key',
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/nowhere?q=igw_AbCd1234xxxxxxxx' } }],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[0]).code, 'credential_in_query');
      assert.equal(onlyRecord(g).path, '/nowhere');
    },
  },
  {
    name: "client forwarding headers, proxy credentials and cookies are removed before the upstream; Envoy's x-forwarded-proto stays",
    steps: [
      chatHead({
        'x-forwarded-for': '203.0.113.7, 10.0.0.1',
        'x-real-ip': '203.0.113.7',
        forwarded: 'for=203.0.113.7;proto=https',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-prefix': '/admin',
        'x-forwarded-proto': 'http',
        'proxy-authorization': 'Basic dXNlcjpwYXNz',
        cookie: 'session=abc',
      }),
      chatBody(),
    ],
    check: ({ results }) => {
      const remove = cont(results[0]).headers?.remove ?? [];
      for (const h of ['x-forwarded-for', 'x-real-ip', 'forwarded', 'x-forwarded-host', 'x-forwarded-prefix', 'proxy-authorization', 'cookie']) {
        assert.ok(remove.includes(h), `${h} is removed`);
      }
      assert.equal(remove.includes('x-forwarded-port'), false, 'a header that is not there is not named (no needless mutation)');
      assert.equal(remove.includes('x-forwarded-proto'), false, "Envoy's own scheme header is kept (its route lookup needs it)");
      assert.equal(new Set(remove).size, remove.length, 'each name once');
    },
  },
  {
    name: "an unknown path, authenticated: 404 unknown_url in the first family's shape",
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v2/whatever?x=1', ...AUTH } }],
    check: ({ results }, g) => {
      assert.deepEqual(errorOf(results[0]), { status: 404, code: 'unknown_url', type: 'invalid_request_error', param: null });
      assert.equal(onlyRecord(g).endpoint, null);
    },
  },
  {
    name: 'a known path with the wrong method: 405',
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/chat/completions', ...AUTH } }],
    check: ({ results }) => assert.equal(errorOf(results[0]).code, 'method_not_allowed'),
  },
  {
    name: "an endpoint outside the caller's allowlist: 403 endpoint_not_allowed",
    rig: () => rig({ ids: { [USER_KEY]: identity({ endpoints: new Set(['embeddings']) }) } }),
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.deepEqual(errorOf(results[0]), { status: 403, code: 'endpoint_not_allowed', type: 'permission_error', param: null }),
  },
  {
    name: 'GET /v1/models is answered by the gateway, listing only the models the caller may use',
    rig: () => rig({ ids: { [USER_KEY]: identity({ models: new Set(['emb']) }) } }),
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/models', ...AUTH } }],
    check: ({ results }, g) => {
      const reply = respond(results[0]);
      assert.equal(reply.status, 200);
      assert.deepEqual(
        (JSON.parse(reply.body.toString()) as { data: Array<{ id: string }> }).data.map((m) => m.id),
        ['emb'],
      );
      assert.equal(onlyRecord(g).outcome, 'completed');
    },
  },
  {
    name: 'GET /v1/models/{id} for a model the caller may not use: 404, as if it did not exist',
    rig: () => rig({ ids: { [USER_KEY]: identity({ models: new Set(['emb']) }) } }),
    steps: [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/models/gpt', ...AUTH } }],
    check: ({ results }) => assert.deepEqual(errorOf(results[0]), { status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' }),
  },
  {
    name: 'a chat request without a body: 400 at the head',
    steps: [{ ...chatHead(), endOfStream: true } as Step],
    check: ({ results }) => assert.equal(errorOf(results[0]).code, 'invalid_request_body'),
  },
  {
    name: 'a body that is not application/json: 415',
    steps: [chatHead({ 'content-type': 'text/plain' })],
    check: ({ results }) => assert.equal(errorOf(results[0]).status, 415),
  },
  {
    name: 'invalid JSON: 400 invalid_request_body, no quota taken',
    steps: [chatHead(), { phase: 'request_body', body: '{"model": "gpt", "messages": [' }],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[1]).code, 'invalid_request_body');
      assert.equal(g.quota.admitted.length, 0);
      assert.equal(onlyRecord(g).status, 400);
    },
  },
  {
    name: "a body over the sidecar's limit: 413",
    steps: [chatHead(), chatBody({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] })],
    check: ({ results }) => assert.equal(errorOf(results[1]).code, 'request_too_large'),
  },
  {
    name: 'an unknown model: 404 model_not_found naming the param',
    steps: [chatHead(), chatBody({ model: 'nope' })],
    check: ({ results }) => assert.deepEqual(errorOf(results[1]), { status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' }),
  },
  {
    name: "a model outside the caller's allowlist: 403 model_not_allowed",
    rig: () => rig({ ids: { [USER_KEY]: identity({ models: new Set(['emb']) }) } }),
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.equal(errorOf(results[1]).code, 'model_not_allowed'),
  },
  {
    name: 'a model that does not serve this endpoint: 404',
    steps: [chatHead(), chatBody({ model: 'emb' })],
    check: ({ results }) => assert.equal(errorOf(results[1]).code, 'model_not_found'),
  },
  {
    name: 'a refused data class: 403 data_policy_denied after the quota decision (its reservation settled at 0 tokens), nothing upstream',
    steps: [chatHead(), chatBody({ messages: [{ role: 'user', content: 'my key is SECRET-abc' }] })],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[1]).code, 'data_policy_denied');
      // The quota comes first (issue #13 item 6: a flood of large bodies is refused before it costs classification).
      assert.equal(g.quota.admitted.length, 1);
      assert.deepEqual(g.quota.settled, [{ requestId: g.quota.admitted[0]?.requestId, usedTokens: 0 }]);
      assert.equal(onlyRecord(g).decision.action, 'deny');
    },
  },
  {
    name: 'a redacted data class: the model sees the placeholder; classes and decision go upstream and into the record',
    steps: [
      chatHead(),
      chatBody({ messages: [{ role: 'user', content: 'card CARD-4111 please' }] }),
      okHead(),
      { phase: 'response_body', chunk: completion('ok'), endOfStream: true },
    ],
    check: ({ results }, g) => {
      const sent = JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { messages: Array<{ content: string }> };
      assert.equal(sent.messages[0]?.content, 'card [REDACTED:CARD] please');
      assert.equal(setHeaders(results[1]).get('x-gateway-data-classes'), 'card=1');
      assert.equal(setHeaders(results[1]).get('x-gateway-policy-decision'), 'redact');
      const rec = onlyRecord(g);
      assert.deepEqual(rec.classification.request, { card: 1 });
      assert.equal(rec.decision.action, 'redact');
      assert.equal(rec.decision.policyVersion, 'p-test');
    },
  },
  {
    name: 'the quota refuses: 429 with its retry-after, audited as denied',
    setup: (g) => {
      g.quota.refuse = new GatewayError('rate_limit_exceeded', 'Rate limit reached.', { headers: { 'retry-after': '7' } });
    },
    steps: [chatHead(), chatBody()],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[1]).status, 429);
      assert.equal(respond(results[1]).headers.find(([k]) => k === 'retry-after')?.[1], '7');
      assert.equal(onlyRecord(g).outcome, 'denied');
      assert.deepEqual(g.quota.settled, [], 'nothing was reserved, nothing to settle');
    },
  },
  {
    name: 'no quota plan applies: the request proceeds without x-ratelimit headers and nothing is settled',
    setup: (g) => {
      g.quota.noPlan = true;
    },
    steps: [chatHead(), chatBody(), okHead(), { phase: 'response_body', chunk: completion('ok'), endOfStream: true }],
    check: ({ results }, g) => {
      assert.equal(setHeaders(results[2]).has('x-ratelimit-limit-requests'), false);
      assert.deepEqual(g.quota.settled, []);
      assert.equal(onlyRecord(g).quota, null);
    },
  },
  {
    name: "past the soft threshold: the fallback model's deployment, max_tokens capped, flagged degraded",
    setup: (g) => {
      g.quota.ticket = { soft: { fallbackModel: 'gpt-small', maxTokens: 16 } };
      g.routes.snapshot = snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt')]), route('gpt-small', ['chat'], [deployment('c3', 'up-small')])]);
    },
    steps: [chatHead(), chatBody({ max_tokens: 500 })],
    check: ({ results }) => {
      const set = setHeaders(results[1]);
      assert.equal(set.get('x-gateway-target-cluster'), 'c3');
      assert.equal(set.get('x-gateway-model'), 'gpt-small');
      assert.equal(set.get('x-gateway-degraded'), 'fallback');
      assert.equal((JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { max_tokens: number }).max_tokens, 16);
    },
  },
  {
    name: "a reservation's completion cap is sent upstream for a request that set no max_tokens",
    setup: (g) => {
      g.quota.ticket = { completionCap: 50 };
    },
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.equal((JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { max_tokens: number }).max_tokens, 50),
  },
  {
    name: 'embeddings reserve no completion and are never capped',
    setup: (g) => {
      g.quota.ticket = { completionCap: 50 };
    },
    steps: [
      { phase: 'request_headers', headers: { ':method': 'POST', ':path': '/v1/embeddings', 'content-type': 'application/json', ...AUTH } },
      { phase: 'request_body', body: JSON.stringify({ model: 'emb', input: 'abc' }) },
    ],
    check: ({ results }, g) => {
      assert.equal(g.quota.admitted[0]?.generates, false);
      assert.equal('max_tokens' in (JSON.parse(cont(results[1]).body?.toString() ?? '{}') as object), false);
    },
  },
  {
    name: "a tenant's own deployment of the model",
    setup: (g) => {
      g.routes.snapshot = snapshot([
        route('gpt', ['chat'], [deployment('c1', 'up-gpt')], new Map([['research', route('gpt', ['chat'], [deployment('c9', 'research-gpt')])]])),
      ]);
    },
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.equal(setHeaders(results[1]).get('x-gateway-target-cluster'), 'c9'),
  },
  {
    name: "a deployment's own credential is injected as authorization",
    rig: () =>
      rig({
        credentials: { 'hosted-key': 'sk-upstream' },
        snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt', { credential: 'hosted-key' })])]),
      }),
    steps: [chatHead(), chatBody()],
    check: ({ results }) => assert.equal(setHeaders(results[1]).get('authorization'), 'Bearer sk-upstream'),
  },
  {
    name: 'a deployment whose credential is missing: 503, fail closed',
    rig: () => rig({ snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt', { credential: 'gone' })])]) }),
    steps: [chatHead(), chatBody()],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[1]).code, 'upstream_credential_unavailable');
      assert.equal(onlyRecord(g).outcome, 'failed');
    },
  },
  {
    name: 'a stream: include_usage added upstream, the usage chunk stripped for the client, split anywhere, counted',
    setup: (g) => {
      g.content.responses = false; // no redaction: the meter alone re-frames the stream
    },
    steps: [
      chatHead(),
      chatBody({ stream: true }),
      okHead('text/event-stream'),
      ...splitEvery(sse(delta('Hel'), delta('lo'), usageChunk(9, 2)), 17).map((chunk, i, all): Step => ({
        phase: 'response_body',
        chunk,
        endOfStream: i === all.length - 1,
      })),
    ],
    check: ({ results }, g, steps) => {
      const sent = JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { stream_options?: { include_usage?: boolean } };
      assert.equal(sent.stream_options?.include_usage, true);
      assert.equal(cont(results[2]).streamResponseBody, true);
      assert.deepEqual(cont(results[2]).headers?.remove, ['content-length']);
      const client = streamedText(steps, results);
      assert.equal(client, sse(delta('Hel'), delta('lo')), 'the client sees its events and [DONE], not the usage chunk');
      const rec = onlyRecord(g);
      assert.deepEqual(rec.usage, { promptTokens: 9, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' });
      assert.notEqual(rec.latencyMs.firstToken, null);
      assert.deepEqual(
        g.quota.settled.map((s) => s.usedTokens),
        [11],
      );
    },
  },
  {
    name: 'stream redaction: a value split over chunks is replaced; the record counts it and says redact',
    steps: [
      chatHead(),
      chatBody({ stream: true, stream_options: { include_usage: true } }),
      okHead('text/event-stream'),
      ...splitEvery(sse(delta('your card CA'), delta('RD-41'), delta('11 is fine'), usageChunk(5, 5)), 9).map((chunk, i, all): Step => ({
        phase: 'response_body',
        chunk,
        endOfStream: i === all.length - 1,
      })),
    ],
    check: ({ results }, g, steps) => {
      const client = streamedText(steps, results);
      assert.ok(!client.includes('4111'), client);
      const text = [...client.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
      assert.equal(text, 'your card [REDACTED:CARD] is fine');
      const rec = onlyRecord(g);
      assert.deepEqual(rec.classification.response, { card: 1 });
      assert.equal(rec.decision.action, 'redact');
    },
  },
  {
    name: 'responses not inspected for this caller: a stream passes untouched (no hold-back)',
    setup: (g) => {
      g.content.responses = false;
    },
    steps: [
      chatHead(),
      chatBody({ stream: true, stream_options: { include_usage: true } }),
      okHead('text/event-stream'),
      { phase: 'response_body', chunk: sse(delta('CARD-4111')), endOfStream: true },
    ],
    check: ({ results }) => assert.equal(cont(results[3]).body, undefined),
  },
  {
    name: 'a buffered response with a redacted class: the body is replaced with a new content-length',
    steps: [chatHead(), chatBody(), okHead(), { phase: 'response_body', chunk: completion('it is CARD-4242'), endOfStream: true }],
    check: ({ results }, g) => {
      const out = cont(results[3]);
      const body = out.body?.toString() ?? '';
      assert.ok(body.includes('[REDACTED:CARD]') && !body.includes('4242'));
      assert.equal(new Map(out.headers?.set).get('content-length'), String(out.body?.length));
      assert.deepEqual(onlyRecord(g).classification.response, { card: 1 });
    },
  },
  {
    name: 'a refused class in a buffered response: the response is withheld with 403',
    steps: [chatHead(), chatBody(), okHead(), { phase: 'response_body', chunk: completion('here: SECRET-xyz'), endOfStream: true }],
    check: ({ results }, g) => {
      assert.equal(errorOf(results[3]).code, 'data_policy_denied');
      assert.equal(onlyRecord(g).outcome, 'denied');
    },
  },
  {
    name: 'a stream cut by the client: audited aborted, charged what was produced, settled once',
    steps: [
      chatHead(),
      chatBody({ stream: true }),
      okHead('text/event-stream'),
      { phase: 'response_body', chunk: sse(delta('12345678')).replace('data: [DONE]\n\n', ''), endOfStream: false },
      { phase: 'abort', reason: 'cancelled' },
      { phase: 'abort', reason: 'cancelled' },
    ],
    check: (_run, g) => {
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'aborted');
      assert.deepEqual(rec.usage, { promptTokens: 3, completionTokens: 2, cachedPromptTokens: 0, source: 'estimated' });
      assert.equal(g.quota.settled.length, 1);
    },
  },
  {
    name: "the model server fails (500) with an error in the client's shape: audited as failed, the error body passes as the server sent it",
    steps: [
      chatHead(),
      chatBody(),
      { phase: 'response_headers', headers: { ':status': '500', 'content-type': 'application/json' } },
      { phase: 'response_body', chunk: '{"error":{"message":"boom","type":"server_error"}}', endOfStream: true },
    ],
    check: ({ results }, g) => {
      assert.equal(cont(results[3]).body, undefined);
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'failed');
      assert.equal(rec.status, 500);
      assert.equal(rec.usage, null, 'a failed response is not charged an estimate');
    },
  },
  {
    name: 'the model server fails (500) with an HTML page: the client gets our 502 upstream_error quoting its start (issue #14)',
    steps: [
      chatHead(),
      chatBody(),
      { phase: 'response_headers', headers: { ':status': '500', 'content-type': 'text/html' } },
      { phase: 'response_body', chunk: '<html>\n<body>Internal   Server Error</body></html>', endOfStream: true },
    ],
    check: ({ results }, g) => {
      const reply = respond(results[3]);
      assert.equal(reply.status, 502);
      const body = JSON.parse(reply.body.toString()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'upstream_error');
      assert.match(body.error.message, /500: "<html> <body>Internal Server Error<\/body><\/html>"/);
      assert.equal(onlyRecord(g).outcome, 'failed');
      assert.equal(onlyRecord(g).decision.code, 'upstream_error');
    },
  },
  {
    name: "the model server's own 429 and 503 without an API error body keep their status (and retry-after); an empty 502 is a 502",
    steps: [
      chatHead(),
      chatBody(),
      { phase: 'response_headers', headers: { ':status': '429', 'retry-after': '7' } },
      { phase: 'response_body', chunk: 'slow down', endOfStream: true },
    ],
    check: ({ results }) => {
      const reply = respond(results[3]);
      assert.equal(reply.status, 429);
      assert.deepEqual(
        reply.headers.find(([k]) => k === 'retry-after'),
        ['retry-after', '7'],
      );
      assert.equal((JSON.parse(reply.body.toString()) as { error: { code: string } }).error.code, 'upstream_rate_limited');
    },
  },
  {
    name: 'a 503 with plain text stays a 503, in our envelope',
    steps: [
      chatHead(),
      chatBody(),
      { phase: 'response_headers', headers: { ':status': '503' } },
      { phase: 'response_body', chunk: 'no healthy upstream', endOfStream: true },
    ],
    check: ({ results }) => {
      const reply = respond(results[3]);
      assert.equal(reply.status, 503);
      assert.equal((JSON.parse(reply.body.toString()) as { error: { code: string } }).error.code, 'upstream_error');
    },
  },
  {
    name: 'a 200 whose body is not the endpoint JSON is no answer: 502 upstream_response_invalid, audited failed (issue #14)',
    steps: [chatHead(), chatBody(), okHead('text/html'), { phase: 'response_body', chunk: '<html>maintenance</html>', endOfStream: true }],
    check: ({ results }, g) => {
      const reply = respond(results[3]);
      assert.equal(reply.status, 502);
      assert.equal((JSON.parse(reply.body.toString()) as { error: { code: string } }).error.code, 'upstream_response_invalid');
      assert.equal(onlyRecord(g).outcome, 'failed');
      assert.equal(onlyRecord(g).status, 502);
    },
  },
  {
    name: 'a stream that ends cleanly but without its [DONE] was cut by the model server: audited failed (upstream_response_invalid), not completed (issue #14)',
    steps: [
      chatHead(),
      chatBody({ stream: true }),
      okHead('text/event-stream'),
      { phase: 'response_body', chunk: `data: ${JSON.stringify(delta('Hel'))}\n\n`, endOfStream: false },
      { phase: 'response_body', chunk: `data: ${JSON.stringify(delta('lo'))}\n\n`, endOfStream: true },
    ],
    check: (_run, g) => {
      const rec = onlyRecord(g);
      assert.equal(rec.outcome, 'failed');
      assert.equal(rec.status, 200, 'the client had its 200 already');
      assert.equal(rec.decision.code, 'upstream_response_invalid');
      assert.equal(rec.usage?.source, 'estimated', 'what it got is still charged');
    },
  },
  {
    name: 'a success without a body (end of stream at the head) is no answer: 502 upstream_response_invalid, finished there',
    steps: [chatHead(), chatBody(), { phase: 'response_headers', headers: { ':status': '204' }, endOfStream: true }],
    check: ({ results }, g) => {
      const reply = respond(results[2]);
      assert.equal(reply.status, 502);
      assert.deepEqual(
        reply.headers.find(([k]) => k === 'x-request-id'),
        ['x-request-id', 'req-0001'],
      );
      assert.equal(onlyRecord(g).status, 502);
      assert.equal(onlyRecord(g).outcome, 'failed');
    },
  },
  {
    name: 'the audit sink fails on a denial: 503 audit_unavailable instead of the denial',
    setup: (g) => {
      g.audit.failing = true;
    },
    steps: [{ phase: 'request_headers', headers: { ':method': 'POST', ':path': '/v1/chat/completions' } }],
    check: ({ results }) => assert.equal(errorOf(results[0]).code, 'audit_unavailable'),
  },
  {
    name: 'the audit sink fails at the end of a buffered response: the response is withheld (503)',
    steps: [chatHead(), chatBody(), okHead(), { phase: 'response_body', chunk: completion('ok'), endOfStream: true }],
    setup: (g) => {
      const append = g.audit.append.bind(g.audit);
      g.audit.append = async (r) => {
        if (r.status === 200) throw new Error('disk full');
        return append(r);
      };
    },
    check: ({ results }) => assert.equal(errorOf(results[3]).code, 'audit_unavailable'),
  },
  {
    name: 'a bug inside a port (not a GatewayError): 500 internal_error for this request only',
    setup: (g) => {
      g.content.inspectRequest = () => {
        throw new TypeError('undefined is not a function');
      };
    },
    steps: [chatHead(), chatBody()],
    check: ({ results }, g) => {
      assert.deepEqual(errorOf(results[1]), { status: 500, code: 'internal_error', type: 'server_error', param: null });
      assert.equal(onlyRecord(g).outcome, 'failed');
    },
  },
  {
    name: "a malformed x-request-id is replaced by the gateway's own",
    steps: [chatHead({ 'x-request-id': 'bad id with spaces' }), chatBody()],
    check: ({ results }) => assert.equal(new Map(cont(results[0]).headers?.set).get('x-request-id'), 'req-0001'),
  },
];

function splitEvery(s: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

for (const c of cases) {
  test(c.name, async () => {
    const g = c.rig?.() ?? rig();
    c.setup?.(g);
    const run = await drive(g.processor, c.steps);
    c.check(run, g, c.steps);
  });
}

test('ext_authz: the same head and body decisions, request counts only, committed when authorized', async () => {
  const g = rig();
  const head = await g.processor.requestHeaders(
    new Map(Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', ...AUTH })),
    false,
    { mtls: false, uriSans: [], subject: null, sha256Digest: null, sourceAddress: null },
    'ext_authz',
  );
  cont(head.result);
  cont(await g.processor.requestBody(head.state, Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }))));
  await g.processor.authorized(head.state);
  assert.equal(g.quota.admitted[0]?.kinds, 'requests_only');
  assert.equal(onlyRecord(g).outcome, 'completed');
});

// ── The client's body as sent, when the deployment's body would say the same ──

/** A deployment whose model name is the alias itself: nothing in a plain request needs rewriting. */
const sameNameRig = (): Rig => rig({ snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'gpt')])]) });

async function bodyAnswer(g: Rig, body: string): Promise<Extract<PhaseResult, { kind: 'continue' }>> {
  const run = await drive(g.processor, [chatHead(), { phase: 'request_body', body }]);
  return cont(run.results[1]);
}

test("a body the deployment takes as sent goes upstream as the client's bytes: no body mutation, no content-length", async () => {
  const g = sameNameRig();
  const answer = await bodyAnswer(g, '{ "model": "gpt",  "messages": [ {"role": "user", "content": "hello there"} ], "max_tokens": 20 }');
  assert.equal(answer.body, undefined, 'nothing for Envoy to replace');
  const set = new Map(answer.headers?.set ?? []);
  assert.equal(set.has('content-length'), false, "the client's content-length stays right");
  assert.equal(set.get('x-gateway-target-cluster'), 'c1', 'still routed');
  assert.equal(answer.clearRouteCache, true);
});

test('any change to the body still replaces it: another model name, a stream without usage, a cap, a redaction, a transform', async () => {
  const sent = (g: Rig, over: Record<string, unknown>): Promise<Extract<PhaseResult, { kind: 'continue' }>> =>
    bodyAnswer(g, JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hello there' }], ...over }));
  const parsed = (a: Extract<PhaseResult, { kind: 'continue' }>): Record<string, unknown> => {
    assert.ok(a.body !== undefined, 'the body is replaced');
    assert.equal(new Map(a.headers?.set ?? []).get('content-length'), String(a.body.length));
    return JSON.parse(a.body.toString()) as Record<string, unknown>;
  };
  // The deployment's own model name.
  assert.equal(
    parsed(
      await bodyAnswer(
        rig({ snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt')])]) }),
        JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }),
      ),
    ).model,
    'up-gpt',
  );
  // A stream: usage is asked for on the client's behalf (and one that asked itself is sent as it is).
  assert.deepEqual(parsed(await sent(sameNameRig(), { stream: true })).stream_options, { include_usage: true });
  assert.equal((await sent(sameNameRig(), { stream: true, stream_options: { include_usage: true } })).body, undefined);
  // The reservation's completion cap, below what the client asked (and not when the client asked for less).
  const capped = sameNameRig();
  capped.quota.ticket = { completionCap: 50 };
  assert.equal(parsed(await sent(capped, {})).max_tokens, 50);
  const under = sameNameRig();
  under.quota.ticket = { completionCap: 50 };
  assert.equal((await sent(under, { max_tokens: 20 })).body, undefined);
  // A redaction edits the body in place: the placeholder must be what goes upstream.
  const redacted = parsed(await sent(sameNameRig(), { messages: [{ role: 'user', content: 'card CARD-4111 please' }] })) as {
    messages: Array<{ content: string }>;
  };
  assert.equal(redacted.messages[0]?.content, 'card [REDACTED:CARD] please');
  // A model's transforms change the body.
  const transformed = rig({
    snapshot: snapshot([
      { ...route('gpt', ['chat'], [deployment('c1', 'gpt')]), transforms: { defaults: { temperature: 0.2 }, forced: {}, systemPrefix: null } },
    ]),
  });
  assert.equal(parsed(await sent(transformed, {})).temperature, 0.2);
});

// ── A second API family through the same processor ──────────────────────────

const TINY_AUTH = { authorization: `Bearer ${USER_KEY}` };
const tinyRig = (): Rig =>
  rig({
    families: [openAIFamily, tinyFamily],
    snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt')]), route('tiny-model', ['tiny_generate'], [deployment('tiny-cluster', 'tiny-v2')])]),
  });

test('a test-only family registered beside OpenAI serves its own path, body, usage and redaction', async () => {
  const g = tinyRig();
  const steps: Step[] = [
    { phase: 'request_headers', headers: { ':method': 'POST', ':path': '/tiny/v0/generate', 'content-type': 'application/json', ...TINY_AUTH } },
    { phase: 'request_body', body: JSON.stringify({ model: 'tiny-model', say: 'pay with CARD-1234' }) },
    { phase: 'response_headers', headers: { ':status': '200', 'content-type': 'application/json' } },
    { phase: 'response_body', chunk: JSON.stringify({ said: 'done CARD-9876', used: [4, 2] }), endOfStream: true },
  ];
  const { results } = await drive(g.processor, steps);
  assert.equal(new Map(cont(results[0]).headers?.set).get('x-gateway-endpoint'), 'tiny_generate');
  const sent = JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { model: string; say: string };
  assert.deepEqual(sent, { model: 'tiny-v2', say: 'pay with [REDACTED:CARD]' });
  assert.equal(setHeaders(results[1]).get('x-gateway-target-cluster'), 'tiny-cluster');
  assert.ok(cont(results[3]).body?.toString().includes('[REDACTED:CARD]'));
  const rec = onlyRecord(g);
  assert.equal(rec.endpoint, 'tiny_generate');
  assert.deepEqual(rec.usage, { promptTokens: 4, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' });
  assert.equal(g.content.subjects[0]?.endpoint, 'tiny_generate');
});

test('a test-only family: its stream is metered by its own meter, and its errors have its own shape', async () => {
  const g = tinyRig();
  const { results } = await drive(g.processor, [
    { phase: 'request_headers', headers: { ':method': 'POST', ':path': '/tiny/v0/generate', 'content-type': 'application/json', ...TINY_AUTH } },
    { phase: 'request_body', body: JSON.stringify({ model: 'tiny-model', say: 'go', stream: true }) },
    { phase: 'response_headers', headers: { ':status': '200', 'content-type': 'application/x-tiny-stream' } },
    { phase: 'response_body', chunk: 't hel', endOfStream: false },
    { phase: 'response_body', chunk: 'lo\nu 3 ', endOfStream: false },
    { phase: 'response_body', chunk: '8\n', endOfStream: true },
  ]);
  assert.equal(cont(results[2]).streamResponseBody, true);
  assert.deepEqual(onlyRecord(g).usage, { promptTokens: 3, completionTokens: 8, cachedPromptTokens: 0, source: 'counted' });

  const denied = await drive(g.processor, [
    { phase: 'request_headers', headers: { ':method': 'POST', ':path': '/tiny/v0/generate', 'content-type': 'application/json', ...TINY_AUTH } },
    { phase: 'request_body', body: JSON.stringify({ model: 'tiny-model' }) },
  ]);
  assert.deepEqual(JSON.parse(respond(denied.results[1]).body.toString()), { problem: { code: 'invalid_request_body', status: 400 } });
  const wrongMethod = await drive(g.processor, [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/tiny/v0/generate', ...TINY_AUTH } }]);
  assert.deepEqual(JSON.parse(respond(wrongMethod.results[0]).body.toString()), { problem: { code: 'method_not_allowed', status: 405 } });
  const list = await drive(g.processor, [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/tiny/v0/models', ...TINY_AUTH } }]);
  assert.deepEqual(JSON.parse(respond(list.results[0]).body.toString()), { models: ['gpt', 'tiny-model'] });
});

test('with a second family registered, OpenAI requests are unchanged', async () => {
  const g = tinyRig();
  const { results } = await drive(g.processor, [chatHead(), chatBody()]);
  assert.equal(setHeaders(results[1]).get('x-gateway-target-cluster'), 'c1');
});

// ── The Anthropic family through the same processor ──────────────────────────

const anthropicRig = (): Rig =>
  rig({
    families: [anthropicFamily, openAIFamily],
    credentials: { 'anthropic-key': 'sk-ant-upstream' },
    snapshot: snapshot([
      route('claude', ['messages', 'count_tokens'], [deployment('c-anth', 'claude-deploy', { provider: 'anthropic', credential: 'anthropic-key' })]),
    ]),
  });
const messagesHead: Step = {
  phase: 'request_headers',
  headers: { ':method': 'POST', ':path': '/v1/messages', 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...AUTH },
};

test('Anthropic: a Messages request is routed and rewritten, usage counts cache tokens, the record names the endpoint', async () => {
  const g = anthropicRig();
  const { results } = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'card CARD-4242' }] }) },
    okHead(),
    {
      phase: 'response_body',
      chunk: JSON.stringify({
        type: 'message',
        content: [{ type: 'text', text: 'ok' }],
        usage: { input_tokens: 5, output_tokens: 2, cache_read_input_tokens: 40 },
      }),
      endOfStream: true,
    },
  ]);
  const sent = JSON.parse(cont(results[1]).body?.toString() ?? '{}') as { model: string; messages: Array<{ content: string }> };
  assert.equal(sent.model, 'claude-deploy');
  assert.equal(sent.messages[0]?.content, 'card [REDACTED:CARD]');
  assert.equal(setHeaders(results[1]).get('x-gateway-target-cluster'), 'c-anth');
  assert.equal(setHeaders(results[1]).get('x-api-key'), 'sk-ant-upstream', 'an Anthropic deployment gets its key in x-api-key');
  assert.equal(setHeaders(results[1]).has('authorization'), false);
  const rec = onlyRecord(g);
  assert.equal(rec.endpoint, 'messages');
  assert.deepEqual(rec.usage, { promptTokens: 45, completionTokens: 2, cachedPromptTokens: 40, source: 'counted' });
  assert.deepEqual(
    g.quota.settled.map((s) => s.usedTokens),
    [47],
  );
});

test("Anthropic: refusals come in Anthropic's envelope", async () => {
  const g = anthropicRig();
  const { results } = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'claude', messages: [{ role: 'user', content: 'x' }] }) },
  ]);
  const reply = respond(results[1]);
  assert.equal(reply.status, 400);
  const errBody = JSON.parse(reply.body.toString()) as { type: string; error: { type: string; message: string } };
  assert.equal(errBody.type, 'error');
  assert.equal(errBody.error.type, 'invalid_request_error');
  assert.match(errBody.error.message, /max_tokens/);
  const unknown = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'gpt-x', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }) },
  ]);
  assert.deepEqual(JSON.parse(respond(unknown.results[1]).body.toString()), {
    type: 'error',
    error: { type: 'not_found_error', message: "The model 'gpt-x' does not exist or you do not have access to it." },
  });
});

test("Anthropic: a streamed message is metered from message_start and message_delta; GET /v1/models has Anthropic's shape", async () => {
  const g = anthropicRig();
  const sseEv = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const events =
    sseEv('message_start', { message: { usage: { input_tokens: 7, output_tokens: 1 } } }) +
    sseEv('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hi there' } }) +
    sseEv('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 3 } }) +
    sseEv('message_stop', {});
  g.content.responses = false;
  await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'claude', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] }) },
    okHead('text/event-stream'),
    { phase: 'response_body', chunk: events.slice(0, 50), endOfStream: false },
    { phase: 'response_body', chunk: events.slice(50), endOfStream: true },
  ]);
  assert.deepEqual(onlyRecord(g).usage, { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0, source: 'counted' });
  const list = await drive(g.processor, [
    { phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/models', 'anthropic-version': '2023-06-01', ...AUTH } },
  ]);
  assert.deepEqual(
    (JSON.parse(respond(list.results[0]).body.toString()) as { data: Array<{ type: string; id: string }> }).data.map((m) => [m.type, m.id]),
    [['model', 'claude']],
  );
});

test("Anthropic: a credential in the query is refused in Anthropic's envelope", async () => {
  const g = anthropicRig();
  const { results } = await drive(g.processor, [
    {
      phase: 'request_headers',
      headers: { ':method': 'POST', ':path': '/v1/messages?x-api-key=sk-anything', 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    },
  ]);
  const reply = respond(results[0]);
  assert.equal(reply.status, 400);
  const body = JSON.parse(reply.body.toString()) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'invalid_request_error');
  assert.match(body.error.message, /parameter 'x-api-key'/);
  assert.equal(onlyRecord(g).decision.code, 'credential_in_query');
});

test("a path no family serves: the error takes the shape of the client's family when its SDK is recognisable, else OpenAI's", async () => {
  const g = anthropicRig();
  const fromAnthropicSdk = await drive(g.processor, [
    { phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/nothing', 'anthropic-version': '2023-06-01', ...AUTH } },
  ]);
  assert.deepEqual(JSON.parse(respond(fromAnthropicSdk.results[0]).body.toString()), {
    type: 'error',
    error: { type: 'not_found_error', message: 'Invalid URL (GET /v1/nothing).' },
  });
  const fromOthers = await drive(g.processor, [{ phase: 'request_headers', headers: { ':method': 'GET', ':path': '/v1/nothing', ...AUTH } }]);
  assert.equal(errorOf(fromOthers.results[0]).code, 'unknown_url');
});

// ── The model name in responses ─────────────────────────────────────────────

test("responses name the model the client asked for, buffered and in every stream chunk (the deployment's name stays internal)", async () => {
  const g = rig();
  const { results } = await drive(g.processor, [
    chatHead(),
    chatBody(),
    okHead(),
    { phase: 'response_body', chunk: JSON.stringify({ id: 'c1', object: 'chat.completion', model: 'up-gpt', choices: [] }), endOfStream: true },
  ]);
  const out = cont(results[3]);
  assert.equal((JSON.parse(out.body?.toString() ?? '{}') as { model: string }).model, 'gpt');
  assert.equal(new Map(out.headers?.set).get('content-length'), String(out.body?.length));

  const s = rig();
  s.content.responses = false;
  const chunk = (content: string): object => ({ id: 'c1', object: 'chat.completion.chunk', model: 'up-gpt', choices: [{ index: 0, delta: { content } }] });
  const steps: Step[] = [
    chatHead(),
    chatBody({ stream: true, stream_options: { include_usage: true } }),
    okHead('text/event-stream'),
    ...splitEvery(sse(chunk('a'), chunk('b')), 23).map((c, i, all): Step => ({ phase: 'response_body', chunk: c, endOfStream: i === all.length - 1 })),
  ];
  const streamed = await drive(s.processor, steps);
  const client = streamedText(steps, streamed.results);
  assert.equal(client, sse({ ...chunk('a'), model: 'gpt' }, { ...chunk('b'), model: 'gpt' }));
});

test("a model whose route keeps the upstream name (responseModel: upstream) answers with the deployment's name", async () => {
  const g = rig({ snapshot: snapshot([{ ...route('gpt', ['chat'], [deployment('c1', 'up-gpt')]), responseModel: 'upstream' }]) });
  const { results } = await drive(g.processor, [
    chatHead(),
    chatBody(),
    okHead(),
    { phase: 'response_body', chunk: JSON.stringify({ id: 'c1', object: 'chat.completion', model: 'up-gpt', choices: [] }), endOfStream: true },
  ]);
  assert.equal(cont(results[3]).body, undefined);
});

test('Anthropic: the message names the model the client asked for, buffered and in message_start', async () => {
  const g = anthropicRig();
  g.content.responses = false;
  const body = JSON.stringify({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  const buffered = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body },
    okHead(),
    {
      phase: 'response_body',
      chunk: JSON.stringify({ type: 'message', model: 'claude-deploy', content: [], usage: { input_tokens: 1, output_tokens: 1 } }),
      endOfStream: true,
    },
  ]);
  assert.equal((JSON.parse(cont(buffered.results[3]).body?.toString() ?? '{}') as { model: string }).model, 'claude');
  const start = `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { model: 'claude-deploy', usage: { input_tokens: 1, output_tokens: 0 } } })}\n\n`;
  const streamed = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'claude', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] }) },
    okHead('text/event-stream'),
    { phase: 'response_body', chunk: start, endOfStream: false },
    { phase: 'response_body', chunk: 'event: ping\ndata: {"type":"ping"}\n\n', endOfStream: true },
  ]);
  assert.match(cont(streamed.results[3]).body?.toString() ?? '', /"model":"claude"/);
  assert.equal(cont(streamed.results[4]).body, undefined, 'events without a model pass untouched');
});

// ── Translation between families (the real translators, fake everything else) ─

const translatingRig = (): Rig =>
  rig({
    families: [anthropicFamily, openAIFamily],
    translators: TRANSLATORS,
    credentials: { 'anthropic-key': 'sk-ant-upstream' },
    snapshot: snapshot([
      route('claude', ['chat'], [deployment('c-anth', 'claude-deploy', { provider: 'anthropic', credential: 'anthropic-key' })]),
      route('gpt', ['messages'], [deployment('c-oai', 'gpt-deploy')]),
    ]),
  });

test('translated: an OpenAI chat request for an Anthropic deployment goes to /v1/messages with x-api-key and anthropic-version; the answer comes back as a chat completion', async () => {
  const g = translatingRig();
  g.content.responses = false;
  const { results } = await drive(g.processor, [
    chatHead(),
    chatBody({
      model: 'claude',
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'hi CARD-1111' },
      ],
    }),
    okHead(),
    {
      phase: 'response_body',
      chunk: JSON.stringify({
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-deploy',
        content: [{ type: 'text', text: 'hello' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 4, output_tokens: 2 },
      }),
      endOfStream: true,
    },
  ]);
  const set = setHeaders(results[1]);
  assert.equal(set.get(':path'), '/v1/messages');
  assert.equal(set.get('x-api-key'), 'sk-ant-upstream');
  assert.equal(set.get('anthropic-version'), '2023-06-01');
  const sent = JSON.parse(cont(results[1]).body?.toString() ?? '{}') as {
    model: string;
    system: unknown;
    max_tokens: number;
    messages: Array<{ content: unknown }>;
  };
  assert.equal(sent.model, 'claude-deploy');
  assert.equal(sent.max_tokens, 1024, 'no max_tokens from the client or a plan: the processor default');
  assert.ok(JSON.stringify(sent.messages).includes('[REDACTED:CARD]'), 'redaction happens before translation');
  const out = cont(results[3]);
  const completion = JSON.parse(out.body?.toString() ?? '{}') as { object: string; model: string; choices: Array<{ message: { content: string } }> };
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, 'claude');
  assert.equal(completion.choices[0]?.message.content, 'hello');
  assert.equal(new Map(out.headers?.set).get('content-length'), String(out.body?.length));
  assert.deepEqual(onlyRecord(g).usage, { promptTokens: 4, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' });
  assert.equal(onlyRecord(g).deployment?.provider, 'anthropic', 'the record says which API the upstream spoke');
});

test('translated: an upstream error body reaches the client in its own envelope, the status kept', async () => {
  const g = translatingRig();
  const { results } = await drive(g.processor, [
    messagesHead,
    { phase: 'request_body', body: JSON.stringify({ model: 'gpt', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }) },
    { phase: 'response_headers', headers: { ':status': '429', 'content-type': 'application/json' } },
    {
      phase: 'response_body',
      chunk: JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null } }),
      endOfStream: true,
    },
  ]);
  assert.equal(setHeaders(results[1]).get(':path'), '/v1/chat/completions');
  const body = JSON.parse(cont(results[3]).body?.toString() ?? '{}') as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(onlyRecord(g).status, 429);
});

test("translated: a parameter the provider cannot express is the client's 400 naming it; nothing is reserved", async () => {
  const g = translatingRig();
  const { results } = await drive(g.processor, [chatHead(), chatBody({ model: 'claude', n: 3 })]);
  assert.deepEqual(errorOf(results[1]), { status: 400, code: 'invalid_request_body', type: 'invalid_request_error', param: 'n' });
});

test('translated: an Anthropic stream for an OpenAI client is re-framed and metered by the translator, split anywhere', async () => {
  const g = translatingRig();
  g.content.responses = false;
  const ev = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const upstream =
    ev('message_start', {
      message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-deploy', content: [], usage: { input_tokens: 6, output_tokens: 1 } },
    }) +
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hel' } }) +
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'lo' } }) +
    ev('content_block_stop', { index: 0 }) +
    ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } }) +
    ev('message_stop', {});
  const steps: Step[] = [
    chatHead(),
    chatBody({ model: 'claude', stream: true }),
    okHead('text/event-stream'),
    ...splitEvery(upstream, 31).map((chunk, i, all): Step => ({ phase: 'response_body', chunk, endOfStream: i === all.length - 1 })),
  ];
  const { results } = await drive(g.processor, steps);
  const client = streamedText(steps, results);
  const chunks = client
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)) as { object: string; model: string; choices: Array<{ delta: { content?: string } }> });
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'claude'));
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello');
  assert.ok(client.trimEnd().endsWith('data: [DONE]'));
  assert.deepEqual(onlyRecord(g).usage, { promptTokens: 6, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' });
});
