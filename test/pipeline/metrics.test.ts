/**
 * The per-request metrics the processor records, read back from the
 * registry: inter-token latency, output tokens per second, upstream responses
 * and latency per deployment, time to first token. The processor's clock is
 * driven by the test, so every timing is asserted exactly. Attempts of a
 * fallback chain are covered in fallback.test.ts; the snapshot age gauge here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Registry } from 'prom-client';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import type { RequestState } from '../../src/pipeline/processor.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { deployment, rig, route, snapshot, USER_KEY, type Rig } from './fakes.ts';

const MS = 1_000_000n;

/** A rig whose clock only moves when the test says so (`at(ms)`). */
function clocked(): { g: Rig; at: (ms: number) => void } {
  let now = 0n;
  const g = rig({
    hrClock: () => now,
    snapshot: snapshot([route('gpt', ['chat', 'completions'], [deployment('c1', 'up-gpt', { provider: 'openai' })])]),
  });
  g.content.responses = false;
  return { g, at: (ms) => (now = BigInt(ms) * MS) };
}

type Labels = Record<string, string>;

/** The value of one exposed sample (0 when the series does not exist). */
async function sample(registry: Registry, metricName: string, labels: Labels = {}): Promise<number> {
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>) {
      const name = v.metricName ?? metric.name;
      if (name !== metricName) continue;
      if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) return v.value;
    }
  }
  return 0;
}

async function series(registry: Registry, metricName: string): Promise<Labels[]> {
  const out: Labels[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>) {
      if ((v.metricName ?? metric.name) === metricName) out.push(Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])));
    }
  }
  return out;
}

const head = new Map(
  Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }),
);
const sseEvent = (e: object): string => `data: ${JSON.stringify(e)}\n\n`;
const delta = (content: string): string => sseEvent({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] });
const roleOnly = sseEvent({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant' } }] });
const usage = (p: number, c: number): string =>
  sseEvent({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } });
const DONE = 'data: [DONE]\n\n';

async function begin(g: Rig, at: (ms: number) => void, body: object = { model: 'gpt', stream: true, messages: [{ role: 'user', content: 'hi' }] }) {
  at(0);
  const { state } = await g.processor.requestHeaders(head, false, NO_CONNECTION_INFO);
  at(1);
  const r = await g.processor.requestBody(state, Buffer.from(JSON.stringify(body)));
  return { state, result: r };
}

async function streamHead(g: Rig, state: RequestState): Promise<void> {
  const r = await g.processor.responseHeaders(
    state,
    new Map([
      [':status', '200'],
      ['content-type', 'text/event-stream'],
    ]),
    false,
  );
  assert.equal(r.kind === 'continue' && r.streamResponseBody, true);
}

test('a stream with three content chunks: ITL is the mean gap, tokens/s counts from the first token to the end, TTFT and upstream latency exact', async () => {
  const { g, at } = clocked();
  const { state } = await begin(g, at);
  at(251);
  await streamHead(g, state);
  // A chunk without generated text (the role) is neither the first token nor a gap.
  at(300);
  await g.processor.responseBody(state, Buffer.from(roleOnly), false);
  at(500);
  await g.processor.responseBody(state, Buffer.from(delta('Hel')), false);
  at(600);
  await g.processor.responseBody(state, Buffer.from(delta('lo ')), false);
  at(900);
  await g.processor.responseBody(state, Buffer.from(delta('world')), false);
  at(1000);
  await g.processor.responseBody(state, Buffer.from(usage(5, 8) + DONE), true);
  assert.equal(g.audit.records[0]?.outcome, 'completed');

  const r = g.metrics.registry;
  const m = { model: 'gpt' };
  // Gaps 100 ms and 300 ms: one observation, their mean.
  assert.equal(await sample(r, 'inference_gateway_inter_token_latency_seconds_count', m), 1);
  assert.ok(Math.abs((await sample(r, 'inference_gateway_inter_token_latency_seconds_sum', m)) - 0.2) < 1e-9);
  assert.equal(await sample(r, 'inference_gateway_inter_token_latency_seconds_bucket', { ...m, le: '0.15' }), 0);
  assert.equal(await sample(r, 'inference_gateway_inter_token_latency_seconds_bucket', { ...m, le: '0.25' }), 1);
  // 8 counted completion tokens over 500 ms (first token at 500, end at 1000).
  assert.equal(await sample(r, 'inference_gateway_output_tokens_per_second_count', m), 1);
  assert.ok(Math.abs((await sample(r, 'inference_gateway_output_tokens_per_second_sum', m)) - 16) < 1e-9);
  assert.ok(Math.abs((await sample(r, 'inference_gateway_time_to_first_token_seconds_sum', m)) - 0.5) < 1e-9);
  // Sent at 1 ms, response headers at 251 ms.
  assert.equal(await sample(r, 'inference_gateway_upstream_latency_seconds_count', { cluster: 'c1' }), 1);
  assert.ok(Math.abs((await sample(r, 'inference_gateway_upstream_latency_seconds_sum', { cluster: 'c1' })) - 0.25) < 1e-9);
  assert.deepEqual(await series(r, 'inference_gateway_upstream_responses_total'), [{ model: 'gpt', cluster: 'c1', provider: 'openai', status_class: '2xx' }]);
  assert.equal(await sample(r, 'inference_gateway_upstream_responses_total', { cluster: 'c1', status_class: '2xx' }), 1);
});

test('one content chunk: no gap, so no ITL and no tokens/s; the first token is still timed', async () => {
  const { g, at } = clocked();
  const { state } = await begin(g, at);
  at(100);
  await streamHead(g, state);
  at(200);
  await g.processor.responseBody(state, Buffer.from(delta('Hello') + usage(5, 1) + DONE), true);
  const r = g.metrics.registry;
  assert.equal(await sample(r, 'inference_gateway_time_to_first_token_seconds_count', { model: 'gpt' }), 1);
  assert.deepEqual(await series(r, 'inference_gateway_inter_token_latency_seconds_count'), []);
  assert.deepEqual(await series(r, 'inference_gateway_output_tokens_per_second_count'), []);
});

test('a stream without usage from the server: ITL observed, tokens/s not (its completion tokens are only an estimate)', async () => {
  const { g, at } = clocked();
  const { state } = await begin(g, at);
  at(100);
  await streamHead(g, state);
  at(200);
  await g.processor.responseBody(state, Buffer.from(delta('Hello')), false);
  at(250);
  await g.processor.responseBody(state, Buffer.from(delta(' there') + DONE), true);
  assert.equal(g.audit.records[0]?.usage?.source, 'estimated');
  const r = g.metrics.registry;
  assert.ok(Math.abs((await sample(r, 'inference_gateway_inter_token_latency_seconds_sum', { model: 'gpt' })) - 0.05) < 1e-9);
  assert.deepEqual(await series(r, 'inference_gateway_output_tokens_per_second_count'), []);
});

test('upstream status classes: a 500 is 5xx, a request cut before response headers is none, a refused request never went upstream', async () => {
  const { g, at } = clocked();
  const buffered = { model: 'gpt', messages: [{ role: 'user', content: 'hi' }] };
  // 500 from the model server.
  const a = await begin(g, at, buffered);
  at(40);
  await g.processor.responseHeaders(
    a.state,
    new Map([
      [':status', '500'],
      ['content-type', 'application/json'],
    ]),
    false,
  );
  await g.processor.responseBody(a.state, Buffer.from('{"error":{"message":"boom","type":"server_error"}}'), true);
  // Aborted while waiting for the upstream.
  const b = await begin(g, at, buffered);
  await g.processor.abort(b.state, 'cancelled');
  // Refused by the quota: never sent.
  g.quota.refuse = new GatewayError('rate_limit_exceeded', 'slow down');
  const c = await begin(g, at, buffered);
  assert.equal(c.result.kind, 'respond');
  // Unknown model: never sent.
  g.quota.refuse = null;
  const d = await begin(g, at, { ...buffered, model: 'nope' });
  assert.equal(d.result.kind, 'respond');

  const r = g.metrics.registry;
  const upstream = await series(r, 'inference_gateway_upstream_responses_total');
  assert.deepEqual(upstream.map((l) => l['status_class']).sort(), ['5xx', 'none'], 'one series per attempted request, none for the refused ones');
  assert.equal(await sample(r, 'inference_gateway_upstream_responses_total', { status_class: '5xx' }), 1);
  assert.equal(await sample(r, 'inference_gateway_upstream_responses_total', { status_class: 'none' }), 1);
  // Latency only where response headers came: the 500, 39 ms after the request left.
  assert.equal(await sample(r, 'inference_gateway_upstream_latency_seconds_count', { cluster: 'c1' }), 1);
  assert.ok(Math.abs((await sample(r, 'inference_gateway_upstream_latency_seconds_sum', { cluster: 'c1' })) - 0.039) < 1e-9);
  assert.equal(g.audit.records.length, 4);
});

test('ext_authz sees no response: no upstream series for an authorized request', async () => {
  const { g } = clocked();
  const { state } = await g.processor.requestHeaders(head, false, NO_CONNECTION_INFO, 'ext_authz');
  await g.processor.requestBody(state, Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })));
  await g.processor.authorized(state);
  assert.deepEqual(await series(g.metrics.registry, 'inference_gateway_upstream_responses_total'), []);
});

test('routing snapshot age: from its issue time when it has one, else from its load time, computed at scrape time', async () => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const m = new Metrics({ processMetrics: false, now: () => now });
  const age = (): Promise<number> => sample(m.registry, 'inference_gateway_routing_snapshot_age_seconds');
  m.setSnapshot('v1', now - 5_000, now - 65_000);
  assert.equal(await age(), 65);
  now += 10_000;
  assert.equal(await age(), 75, 'the gauge moves with the clock, not with the last update');
  m.setSnapshot('v2', now, null);
  assert.equal(await age(), 0);
  now += 2_500;
  assert.equal(await age(), 2.5);
  assert.equal(await sample(m.registry, 'inference_gateway_routing_snapshot_info', { version: 'v2' }), 1);
});
