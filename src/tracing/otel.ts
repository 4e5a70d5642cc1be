/**
 * Request spans with the OpenTelemetry SDK, exported as OTLP/HTTP protobuf.
 * Loaded by the composition root (src/app.ts) only when `tracing.enabled`:
 * with tracing off no OpenTelemetry package is imported at all.
 *
 * The export never holds up a request: a span is queued when the request's
 * audit record is written and a BatchSpanProcessor sends batches in the
 * background. The queue is bounded; what does not fit is dropped and counted,
 * as is every span of a batch the collector refused, failed or timed out on
 * (`inference_gateway_trace_spans_dropped_total{reason}`).
 */
import { readFileSync } from 'node:fs';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Span } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { TracingConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { elapsedMs } from '../pipeline/context.ts';
import type { RequestSpan, RequestTracer } from '../pipeline/ports.ts';
import { continueTrace, parseTraceparent, traceContextOf } from '../pipeline/trace.ts';
import { errorMessage } from '../shared/values.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { spanAttributes, spanFailed, spanName } from './attributes.ts';

/** A batch is sent once this many spans wait (or after scheduledDelayMs); never more than the queue holds. */
const MAX_BATCH = 512;
/** An export failure is logged at most this often (each failed span is counted regardless). */
const FAILURE_LOG_INTERVAL_MS = 30_000;

export interface Tracing {
  readonly tracer: RequestTracer;
  /** Sends what is queued (bounded by exportTimeoutMs) and stops the exporter. */
  shutdown(): Promise<void>;
}

type ExportCallback = Parameters<SpanExporter['export']>[1];

/**
 * Keeps the count of spans waiting in the batch processor's queue and refuses (counts) one that would overflow it:
 * the SDK's BatchSpanProcessor drops silently when full. A span leaves the queue when the processor hands its batch
 * to the exporter (CountingExporter reports it), so the count is exact and the inner queue never overflows.
 */
class BoundedProcessor implements SpanProcessor {
  #queued = 0;
  readonly #inner: SpanProcessor;
  readonly #max: number;
  readonly #metrics: Metrics;

  constructor(inner: SpanProcessor, max: number, metrics: Metrics) {
    this.#inner = inner;
    this.#max = max;
    this.#metrics = metrics;
  }

  left(n: number): void {
    this.#queued = Math.max(0, this.#queued - n);
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#queued >= this.#max) {
      this.#metrics.traceSpansDropped.inc({ reason: 'queue_full' });
      return;
    }
    this.#queued++;
    this.#inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}

/** Counts the spans of every failed export, and tells the processor which spans left its queue. */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #left: (n: number) => void;
  #lastLog = 0;

  constructor(inner: SpanExporter, metrics: Metrics, log: Logger, left: (n: number) => void) {
    this.#inner = inner;
    this.#metrics = metrics;
    this.#log = log;
    this.#left = left;
  }

  export(spans: ReadableSpan[], done: ExportCallback): void {
    this.#left(spans.length);
    this.#inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        this.#metrics.traceSpansDropped.inc({ reason: 'export_failed' }, spans.length);
        const now = Date.now();
        if (now - this.#lastLog >= FAILURE_LOG_INTERVAL_MS) {
          this.#lastLog = now;
          this.#log.warn(
            { spans: spans.length, err: result.error === undefined ? 'unknown' : errorMessage(result.error) },
            'trace export failed (spans dropped)',
          );
        }
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

class OtelRequestSpan implements RequestSpan {
  readonly #span: Span;
  readonly #log: Logger;

  constructor(span: Span, log: Logger) {
    this.#span = span;
    this.#log = log;
  }

  end(ctx: RequestContext): void {
    try {
      const span = this.#span;
      span.updateName(spanName(ctx));
      span.setAttributes(spanAttributes(ctx));
      if (spanFailed(ctx)) span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.errorCode ?? ctx.outcome ?? 'failed' });
      // The end on the same clock as the start: the epoch start plus the monotonic duration.
      span.end(ctx.startedAt + elapsedMs(ctx.startedHr));
    } catch (err) {
      this.#log.warn({ requestId: ctx.requestId, err: errorMessage(err) }, 'request span could not be ended');
    }
  }
}

/** The export headers: `headers`, then `headersFile` (a YAML/JSON map, e.g. a mounted Secret) over them. */
export function exportHeaders(config: TracingConfig): Record<string, string> {
  const headers: Record<string, string> = { ...config.headers };
  if (config.headersFile !== undefined) {
    const parsed: unknown = parseYaml(readFileSync(config.headersFile, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error(`tracing.headersFile ${config.headersFile}: must be a map of header: value`);
    for (const [name, value] of Object.entries(parsed)) {
      if (typeof value !== 'string' && typeof value !== 'number')
        throw new Error(`tracing.headersFile ${config.headersFile}: the value of ${name} must be a string`);
      headers[name] = String(value);
    }
  }
  return headers;
}

export function startTracing(config: TracingConfig, deps: { readonly metrics: Metrics; readonly log: Logger }): Tracing {
  const { metrics, log } = deps;
  if (config.endpoint === undefined) throw new Error('tracing.endpoint is required when tracing is enabled');
  for (const reason of ['queue_full', 'export_failed']) metrics.traceSpansDropped.inc({ reason }, 0);
  const otlp = new OTLPTraceExporter({ url: config.endpoint, headers: exportHeaders(config), timeoutMillis: config.exportTimeoutMs });
  let bounded: BoundedProcessor | null = null;
  const exporter = new CountingExporter(otlp, metrics, log, (n) => bounded?.left(n));
  const batch = new BatchSpanProcessor({
    exporter,
    maxQueueSize: config.maxQueueSize,
    maxExportBatchSize: Math.min(MAX_BATCH, config.maxQueueSize),
    scheduledDelayMillis: config.scheduledDelayMs,
    exportTimeoutMillis: config.exportTimeoutMs,
  });
  bounded = new BoundedProcessor(batch, config.maxQueueSize, metrics);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    // A client's sampled flag decides for its trace; a new trace is sampled at the configured ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [bounded],
  });
  const otelTracer = provider.getTracer('inference-gateway');

  const tracer: RequestTracer = {
    start(incoming, startedAt) {
      try {
        const parent = parseTraceparent(incoming);
        const parentContext =
          parent === null
            ? ROOT_CONTEXT
            : trace.setSpanContext(ROOT_CONTEXT, {
                traceId: parent.traceId,
                spanId: parent.spanId,
                traceFlags: (Number.parseInt(parent.flags, 16) & TraceFlags.SAMPLED) === 0 ? TraceFlags.NONE : TraceFlags.SAMPLED,
                isRemote: true,
              });
        const span = otelTracer.startSpan('request', { kind: SpanKind.SERVER, startTime: startedAt }, parentContext);
        const sc = span.spanContext();
        const sampled = (sc.traceFlags & TraceFlags.SAMPLED) !== 0;
        return { trace: traceContextOf(sc.traceId, sc.spanId, sampled), span: span.isRecording() ? new OtelRequestSpan(span, log) : null };
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'request span could not be started');
        return { trace: continueTrace(incoming), span: null };
      }
    },
  };

  return {
    tracer,
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.exportTimeoutMs);
      });
      try {
        const how = await Promise.race([provider.shutdown().then(() => 'flushed' as const), bound]);
        if (how === 'timeout') log.warn({ timeoutMs: config.exportTimeoutMs }, 'trace flush at shutdown timed out (spans dropped)');
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'trace flush at shutdown failed');
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
