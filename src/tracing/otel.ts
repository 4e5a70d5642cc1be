/**
 * Request spans with the OpenTelemetry SDK, exported as OTLP/HTTP protobuf.
 * Loaded by the composition root (src/app.ts) only when `tracing.enabled`:
 * with tracing off no OpenTelemetry package is imported at all.
 *
 * The export never holds up a request: a span is encoded and queued when the
 * request's audit record is written, and batches go out in the background
 * (src/tracing/export.ts). The queue is bounded; what does not fit is dropped
 * and counted, as is every span of a batch the collector refused, failed or
 * timed out on (`inference_gateway_trace_spans_dropped_total{reason}`).
 */
import { readFileSync } from 'node:fs';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
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
import { EncodingSpanProcessor } from './export.ts';

export interface Tracing {
  readonly tracer: RequestTracer;
  /** Sends what is queued (bounded by exportTimeoutMs) and stops the exporter. */
  shutdown(): Promise<void>;
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
  const exporter = new EncodingSpanProcessor(
    {
      endpoint: config.endpoint,
      headers: exportHeaders(config),
      maxQueueSize: config.maxQueueSize,
      scheduledDelayMs: config.scheduledDelayMs,
      exportTimeoutMs: config.exportTimeoutMs,
    },
    { metrics, log },
  );
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    // A client's sampled flag decides for its trace; a new trace is sampled at the configured ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [exporter],
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
