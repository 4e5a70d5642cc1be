/**
 * Request spans through real Envoy: the official openai client sends a chat
 * request inside a trace of its own (a traceparent header); the sidecar,
 * configured with tracing on, exports one span to our OTLP/HTTP receiver
 * (test/helpers/otlp-receiver.ts decodes it) whose trace is the client's and
 * whose parent is the client's span (Envoy does not trace in this config, so
 * the traceparent reaches the sidecar as the client sent it); the demo model
 * server receives a traceparent naming that span as its parent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { scrapeMetrics, startTestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

test('the openai client in a trace: one span under its span, GenAI attributes and usage, and the model server a child of ours', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const stack = await startTestStack({ config: { tracing: { enabled: true, endpoint: receiver.url, scheduledDelayMs: 50, serviceName: 'igw-e2e' } } });
  t.after(() => stack.stop());

  const traceId = randomBytes(16).toString('hex');
  const clientSpan = randomBytes(8).toString('hex');
  const marker = `MARKER-${randomBytes(6).toString('hex')}`;
  const client = stack.client('alice', { traceparent: `00-${traceId}-${clientSpan}-01` });
  const reply = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: `please repeat ${marker}` }] }).withResponse();
  const usage = reply.data.usage;
  assert.ok(usage !== undefined && usage.prompt_tokens > 0 && usage.completion_tokens > 0);

  await waitFor(() => receiver.spans.length >= 1, { what: 'the span at the receiver', timeoutMs: 10_000 });
  assert.equal(receiver.spans.length, 1);
  const span = receiver.spans[0];
  assert.ok(span !== undefined);
  assert.equal(span.traceId, traceId, "the client's trace");
  assert.equal(span.parentSpanId, clientSpan, "the client's span is the parent");
  assert.equal(span.resource['service.name'], 'igw-e2e');
  assert.equal(span.attributes['gen_ai.operation.name'], 'chat');
  assert.equal(span.attributes['gen_ai.request.model'], 'gpt-demo');
  assert.equal(typeof span.attributes['gen_ai.response.model'], 'string');
  assert.equal(span.attributes['gen_ai.provider.name'], 'openai');
  assert.equal(span.attributes['gen_ai.usage.input_tokens'], usage.prompt_tokens);
  assert.equal(span.attributes['gen_ai.usage.output_tokens'], usage.completion_tokens);
  assert.equal(span.attributes['gateway.request_id'], reply.response.headers.get('x-request-id'));
  assert.equal(span.attributes['gateway.status'], 200);
  assert.equal(span.attributes['gateway.outcome'], 'completed');

  // What the model server received: the same trace, our span as its parent.
  const upstream = stack.upstream.requests.find((r) => r.path === '/v1/chat/completions');
  assert.ok(upstream !== undefined, 'the model server saw the request');
  const parts = String(upstream.headers.traceparent).split('-');
  assert.deepEqual(parts, ['00', traceId, span.spanId, '01']);

  // The marker (in the prompt, and echoed in the demo server's completion) is in no export.
  for (const e of receiver.exports) assert.equal(e.body.includes(marker), false, 'prompt or completion text in an export');

  const sidecar = stack.sidecar;
  assert.ok(sidecar !== null);
  const metrics = await scrapeMetrics(sidecar.adminUrl);
  assert.equal(metrics.get('inference_gateway_trace_spans_dropped_total{reason="queue_full"}'), 0);
  assert.equal(metrics.get('inference_gateway_trace_spans_dropped_total{reason="export_failed"}'), 0);
});

test('collector down: requests through Envoy still succeed, and the failed exports are counted', async (t) => {
  const gone = await startOtlpReceiver();
  await gone.close(); // nothing listens on its port now
  const stack = await startTestStack({ config: { tracing: { enabled: true, endpoint: gone.url, scheduledDelayMs: 50, exportTimeoutMs: 1000 } } });
  t.after(() => stack.stop());
  const client = stack.client();
  for (let i = 0; i < 5; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.choices.length > 0);
  }
  const sidecar = stack.sidecar;
  assert.ok(sidecar !== null);
  await waitFor(async () => (await scrapeMetrics(sidecar.adminUrl)).get('inference_gateway_trace_spans_dropped_total{reason="export_failed"}') === 5, {
    what: 'five spans counted as export_failed',
    timeoutMs: 15_000,
  });
});

test('a collector that never answers adds no latency: every request through Envoy is as fast as with tracing off', async (t) => {
  const hung = await startOtlpReceiver();
  hung.mode = 'hold'; // accepts each export and never answers it
  t.after(() => hung.close());
  const traced = await startTestStack({ config: { tracing: { enabled: true, endpoint: hung.url, scheduledDelayMs: 20, exportTimeoutMs: 5000 } } });
  t.after(() => traced.stop());
  const plain = await startTestStack();
  t.after(() => plain.stop());
  // Interleaved, so both stacks see the same machine; the medians must be within 5 ms of each other (noise on a loaded
  // 2-core machine; a request that waited on the collector would take up to the 5 s an export can hang), and no
  // request may come near those 5 s.
  const time = async (client: ReturnType<typeof plain.client>): Promise<number> => {
    const t0 = performance.now();
    await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
    return performance.now() - t0;
  };
  const a = traced.client();
  const b = plain.client();
  for (let i = 0; i < 5; i++) await Promise.all([time(a), time(b)]); // warm-up
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < 40; i++) {
    on.push(await time(a));
    off.push(await time(b));
  }
  await waitFor(() => hung.spans.length > 0, { what: 'the hung collector received exports' });
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  t.diagnostic(
    `median ${median(on).toFixed(2)} ms traced to a hung collector, ${median(off).toFixed(2)} ms without tracing; slowest ${Math.max(...on).toFixed(1)} ms`,
  );
  assert.ok(median(on) - median(off) < 5, `median ${median(on).toFixed(2)} ms vs ${median(off).toFixed(2)} ms`);
  assert.ok(Math.max(...on) < 1000, `slowest traced request ${Math.max(...on).toFixed(1)} ms`);
});
