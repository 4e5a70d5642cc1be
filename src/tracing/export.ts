/**
 * The span export: each ended, sampled span is encoded to OTLP protobuf at
 * once (the SDK's own serializer, @opentelemetry/otlp-transformer) and only
 * its bytes wait in a bounded queue; a timer posts what waits as one
 * ExportTraceServiceRequest over HTTP.
 *
 * Why not the SDK's BatchSpanProcessor + OTLP exporter: they keep every span
 * object until its batch is sent (up to scheduledDelayMs), so under load the
 * spans outlive the young generation and every sampled span costs an old-space
 * collection's share — `npm run bench:tracing` measured about 200 µs of CPU per
 * sampled span in the pipeline that way, against ~40 µs for the span itself.
 * Bytes in a Buffer are off the JS heap: the span object dies young.
 *
 * Concatenated protobuf messages merge, and `resource_spans` is a repeated
 * field, so the bytes of one ExportTraceServiceRequest per span, joined, are
 * one valid request with one ResourceSpans per span.
 *
 * Never on the request path: onEnd encodes and queues; a full queue drops the
 * span and counts it (`queue_full`); a batch the collector refuses, fails or
 * does not answer within exportTimeoutMs is dropped and each of its spans
 * counted (`export_failed`). One export is in flight at a time; no retries
 * (a span is not worth holding memory for a collector that is down).
 */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { TraceFlags } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';
import { errorMessage } from '../shared/values.ts';
import type { Metrics } from '../telemetry/metrics.ts';

/** Spans per export request at most (the queue may hold more: they go in the next one). */
export const MAX_BATCH = 512;
/** An export failure is logged at most this often (each failed span is counted regardless). */
const FAILURE_LOG_INTERVAL_MS = 30_000;

export interface ExportOptions {
  readonly endpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly maxQueueSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
}

export class EncodingSpanProcessor implements SpanProcessor {
  readonly #o: ExportOptions;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #url: URL;
  readonly #agent: HttpAgent | HttpsAgent;
  #queue: Uint8Array[] = [];
  #inFlight: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastLog = 0;
  #closed = false;

  constructor(o: ExportOptions, deps: { readonly metrics: Metrics; readonly log: Logger }) {
    this.#o = o;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#url = new URL(o.endpoint);
    this.#agent = this.#url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#closed || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#queue.length >= this.#o.maxQueueSize) {
      this.#metrics.traceSpansDropped.inc({ reason: 'queue_full' });
      return;
    }
    const bytes = ProtobufTraceSerializer.serializeRequest([span]);
    if (bytes === undefined) return;
    this.#queue.push(bytes);
    if (this.#queue.length >= MAX_BATCH) setImmediate(() => void this.#exportNext());
    else this.#timer ??= setTimeout(() => void this.#exportNext(), this.#o.scheduledDelayMs).unref();
  }

  /** Sends everything queued, one request after another; resolves when all are answered (or failed). */
  async forceFlush(): Promise<void> {
    for (;;) {
      if (this.#inFlight !== null) await this.#inFlight;
      else if (this.#queue.length > 0) await this.#exportNext();
      else return;
    }
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#agent.destroy();
  }

  /** Posts the oldest MAX_BATCH spans (nothing while an export is in flight: its end schedules the next). */
  #exportNext(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#inFlight !== null || this.#queue.length === 0) return this.#inFlight ?? Promise.resolve();
    const batch = this.#queue.splice(0, MAX_BATCH);
    this.#inFlight = this.#post(Buffer.concat(batch)).then(
      () => undefined,
      (err: unknown) => this.#failed(batch.length, err),
    );
    void this.#inFlight.finally(() => {
      this.#inFlight = null;
      if (this.#queue.length > 0 && !this.#closed) this.#timer ??= setTimeout(() => void this.#exportNext(), this.#o.scheduledDelayMs).unref();
    });
    return this.#inFlight;
  }

  #failed(spans: number, err: unknown): void {
    this.#metrics.traceSpansDropped.inc({ reason: 'export_failed' }, spans);
    const now = Date.now();
    if (now - this.#lastLog < FAILURE_LOG_INTERVAL_MS) return;
    this.#lastLog = now;
    this.#log.warn({ spans, err: errorMessage(err) }, 'trace export failed (spans dropped)');
  }

  #post(body: Buffer): Promise<void> {
    const send = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<void>((resolve, reject) => {
      const req = send(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          timeout: this.#o.exportTimeoutMs,
          headers: { ...this.#o.headers, 'content-type': 'application/x-protobuf', 'content-length': String(body.length) },
        },
        (res) => {
          res.resume(); // the ExportTraceServiceResponse (partial success) is not read: a 2xx means accepted
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`the collector answered HTTP ${status}`));
          });
          res.on('error', reject);
        },
      );
      // The whole export is bounded: a collector that accepts the connection and never answers fails it.
      const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${this.#o.exportTimeoutMs} ms`)), this.#o.exportTimeoutMs);
      deadline.unref();
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#o.exportTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
