/**
 * Request spans through the real OpenTelemetry SDK and OTLP/HTTP exporter,
 * into a receiver of ours that decodes what arrives (test/helpers/otlp-receiver.ts):
 * the processor runs over fakes (test/pipeline/fakes.ts), the export is real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema, type TracingConfig } from '../../src/config/schema.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { startTracing, type Tracing } from '../../src/tracing/otel.ts';
import { pino } from 'pino';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.ts';
import { waitFor } from '../helpers/wait.ts';
import { drive, rig, USER_KEY, type Rig, type Step } from '../pipeline/fakes.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const PROMPT_MARKER = 'PROMPT-MARKER-7f3a9c';
const COMPLETION_MARKER = 'COMPLETION-MARKER-b41e2d';

function tracingConfig(over: Partial<TracingConfig>): TracingConfig {
  return ConfigSchema.parse({ tracing: { enabled: true, endpoint: 'http://127.0.0.1:9/v1/traces', scheduledDelayMs: 20, exportTimeoutMs: 2000, ...over } })
    .tracing;
}

function setup(t: { after(fn: () => Promise<void>): void }, over: Partial<TracingConfig>): { g: Rig; tracing: Tracing; metrics: Metrics } {
  const metrics = new Metrics({ processMetrics: false });
  const tracing = startTracing(tracingConfig(over), { metrics, log: pino({ enabled: false }) });
  t.after(() => tracing.shutdown());
  return { g: rig({ tracer: tracing.tracer, metrics }), tracing, metrics };
}

function chat(headers: Record<string, string> = {}): Step[] {
  return [
    {
      phase: 'request_headers',
      headers: { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}`, ...headers },
    },
    { phase: 'request_body', body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: `say ${PROMPT_MARKER}` }] }) },
    { phase: 'response_headers', headers: { ':status': '200', 'content-type': 'application/json' } },
    {
      phase: 'response_body',
      chunk: JSON.stringify({
        id: 'c1',
        object: 'chat.completion',
        model: 'up-gpt',
        choices: [{ index: 0, message: { role: 'assistant', content: COMPLETION_MARKER }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
      }),
      endOfStream: true,
    },
  ];
}

/** The traceparent the sidecar sends upstream (set on the request headers phase). */
function injected(results: readonly PhaseResult[]): string {
  const head = results[0];
  assert.equal(head?.kind, 'continue');
  const value = new Map(head.kind === 'continue' ? (head.headers?.set ?? []) : []).get('traceparent');
  assert.ok(value !== undefined, 'a traceparent goes upstream');
  return value;
}

async function dropped(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.traceSpansDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

async function receiver(t: { after(fn: () => Promise<void>): void }): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  t.after(() => r.close());
  return r;
}

test("a request's span continues the client's trace, is the parent of what goes upstream, and carries the GenAI and gateway attributes", async (t) => {
  const r = await receiver(t);
  const { g } = setup(t, { endpoint: r.url, serviceName: 'igw-test', headers: { 'x-collector-token': 'collector-secret' } });
  const before = Date.now();
  const run = await drive(g.processor, chat({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }));
  assert.equal(run.results.at(-1)?.kind, 'continue');
  const up = injected(run.results).split('-');
  assert.equal(up[1], CLIENT_TRACE);
  assert.notEqual(up[2], CLIENT_SPAN);
  assert.equal(up[3], '01');

  await waitFor(() => r.spans.length >= 1, { what: 'the span to be exported' });
  assert.equal(r.spans.length, 1);
  const span = r.spans[0];
  assert.ok(span !== undefined);
  assert.equal(span.traceId, CLIENT_TRACE);
  assert.equal(span.parentSpanId, CLIENT_SPAN, "the client's span is the parent");
  assert.equal(span.spanId, up[2], 'the traceparent sent upstream names this span');
  assert.equal(span.name, 'chat gpt');
  assert.equal(span.kind, 2, 'SPAN_KIND_SERVER');
  assert.equal(span.status.code, 0, 'unset: the request did not fail');
  assert.ok(span.startNs >= BigInt(before - 1) * 1_000_000n && span.endNs >= span.startNs && span.endNs <= BigInt(Date.now() + 1) * 1_000_000n);
  assert.equal(span.resource['service.name'], 'igw-test');
  assert.deepEqual(
    {
      op: span.attributes['gen_ai.operation.name'],
      req: span.attributes['gen_ai.request.model'],
      res: span.attributes['gen_ai.response.model'],
      provider: span.attributes['gen_ai.provider.name'],
      inTok: span.attributes['gen_ai.usage.input_tokens'],
      outTok: span.attributes['gen_ai.usage.output_tokens'],
    },
    { op: 'chat', req: 'gpt', res: 'up-gpt', provider: 'openai', inTok: 11, outTok: 5 },
  );
  const record = g.audit.records[0];
  assert.ok(record !== undefined);
  assert.equal(record.traceId, CLIENT_TRACE);
  assert.deepEqual(Object.fromEntries(Object.entries(span.attributes).filter(([k]) => k.startsWith('gateway.'))), {
    'gateway.request_id': record.requestId,
    'gateway.endpoint': 'chat',
    'gateway.outcome': 'completed',
    'gateway.snapshot_version': 'v1',
    'gateway.stream': false,
    'gateway.decision.action': 'permit',
    'gateway.deployment.cluster': 'c1',
    'gateway.deployment.provider': 'openai',
    'gateway.usage.source': 'counted',
    'gateway.status': 200,
    'gateway.quota.plan': record.quota?.plan,
    'gateway.quota.mode': record.quota?.mode,
    'gateway.org': record.authorization?.org,
    'gateway.tenant': record.authorization?.tenant,
  });
  const exp = r.exports[0];
  assert.ok(exp !== undefined);
  assert.equal(exp.contentType, 'application/x-protobuf');
  assert.equal(exp.headers['x-collector-token'], 'collector-secret', 'the configured export headers are sent');
  // Nothing the client or the model wrote, and no credential, is in what was exported.
  for (const e of r.exports) {
    for (const secret of [PROMPT_MARKER, COMPLETION_MARKER, USER_KEY, 'say ']) assert.equal(e.body.includes(secret), false, `${secret} in an export`);
  }
});

test('a denied request has its span too (error code, decision, status) and no usage', async (t) => {
  const r = await receiver(t);
  const { g } = setup(t, { endpoint: r.url });
  const steps = chat();
  const head = steps[0];
  assert.ok(head?.phase === 'request_headers');
  const run = await drive(g.processor, [{ ...head, headers: { ...head.headers, authorization: 'Bearer not-a-key' } }]);
  assert.equal(run.results[0]?.kind, 'respond');
  await waitFor(() => r.spans.length >= 1, { what: 'the span of the denial' });
  const span = r.spans[0];
  assert.ok(span !== undefined);
  assert.equal(span.parentSpanId, '', 'no traceparent: a new trace, our span its root');
  assert.equal(span.attributes['gateway.outcome'], 'denied');
  assert.equal(span.attributes['gateway.decision.action'], 'deny');
  assert.equal(span.attributes['gateway.status'], 401);
  assert.equal(typeof span.attributes['gateway.error.code'], 'string');
  assert.equal(span.attributes['error.type'], span.attributes['gateway.error.code']);
  assert.equal(span.attributes['gen_ai.usage.input_tokens'], undefined);
  assert.equal(span.status.code, 0, 'a denial is the gateway working, not a failed span');
});

test("sampling: ratio 0 records no new trace, a client's sampled flag wins either way", async (t) => {
  const r = await receiver(t);
  const zero = setup(t, { endpoint: r.url, sampleRatio: 0 });
  const unsampled = await drive(zero.g.processor, chat());
  assert.match(injected(unsampled.results), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'not sampled: the flag says so upstream');
  const clientSays = await drive(zero.g.processor, chat({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }));
  assert.match(injected(clientSays.results), /-01$/);
  await zero.tracing.shutdown(); // flushes everything queued
  assert.equal(r.spans.length, 1, 'only the request the client sampled');
  assert.equal(r.spans[0]?.traceId, CLIENT_TRACE);

  const one = setup(t, { endpoint: r.url, sampleRatio: 1 });
  const declined = await drive(one.g.processor, chat({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-00` }));
  assert.match(injected(declined.results), new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-00$`));
  await one.tracing.shutdown();
  assert.equal(r.spans.length, 1, 'a client that did not sample gets no span of ours');
});

test('collector down: requests are not slowed, and every span that could not be sent is counted', async (t) => {
  // A port nothing listens on (the receiver, closed).
  const gone = await startOtlpReceiver();
  await gone.close();
  const { g, metrics } = setup(t, { endpoint: gone.url, exportTimeoutMs: 3000 });
  const n = 40;
  let slowest = 0;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const run = await drive(g.processor, chat());
    slowest = Math.max(slowest, Number(process.hrtime.bigint() - t0) / 1e6);
    assert.equal(run.results.at(-1)?.kind, 'continue');
  }
  // A request that waited on an export would take a connection attempt at least; the bound is far below the export timeout.
  assert.ok(slowest < 250, `slowest request ${slowest.toFixed(1)} ms`);
  assert.equal(g.audit.records.length, n);
  await waitFor(async () => (await dropped(metrics, 'export_failed')) === n, { what: `${n} spans counted as export_failed`, timeoutMs: 15_000 });
  assert.equal(await dropped(metrics, 'queue_full'), 0);
});

test('a full queue drops spans and counts them; every span is either delivered or counted', async (t) => {
  const r = await receiver(t);
  r.mode = 'hold'; // a collector that does not answer: the batch in flight stays in flight
  const { g, metrics, tracing } = setup(t, { endpoint: r.url, maxQueueSize: 4, exportTimeoutMs: 5000 });
  const n = 20;
  for (let i = 0; i < n; i++) await drive(g.processor, chat());
  await waitFor(async () => (await dropped(metrics, 'queue_full')) > 0, { what: 'drops once the queue is full' });
  r.mode = 'ok';
  await tracing.shutdown();
  const full = await dropped(metrics, 'queue_full');
  t.diagnostic(`${r.spans.length} delivered, ${full} dropped (queue full)`);
  assert.ok(full >= n - 2 * 4, 'at most one batch in flight and one full queue were kept');
  assert.equal(r.spans.length + full, n);
  assert.equal(await dropped(metrics, 'export_failed'), 0);
});

test('a failing collector (HTTP 503) is counted as export_failed', async (t) => {
  const r = await receiver(t);
  r.mode = 'fail';
  const { g, metrics } = setup(t, { endpoint: r.url, exportTimeoutMs: 1000 });
  await drive(g.processor, chat());
  await drive(g.processor, chat());
  await waitFor(async () => (await dropped(metrics, 'export_failed')) === 2, { what: 'the refused spans counted', timeoutMs: 10_000 });
  assert.ok(r.exports.length >= 1, 'the collector was asked');
});
