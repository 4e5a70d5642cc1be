/** Messages between bench/run.ts and its load-generator child (bench/loadgen.ts). */
import type { Summary } from './stats.ts';

/** How a response body is checked (besides status 200). */
export type BodyCheck = 'chat-json' | 'chat-sse';

interface PhaseCommon {
  host: string;
  port: number;
  /** The whole HTTP/1.1 request, base64 (pre-serialised; sent as is every time). */
  requestBase64: string;
  check: BodyCheck;
  warmupMs: number;
  durationMs: number;
  /** A request without its response after this long is an error (and its connection is dropped). */
  timeoutMs: number;
  /** Timestamp every read of a response and report the gaps between them (streams: inter-chunk latency). */
  chunkGaps?: boolean;
}

/** Closed loop: `connections` keep-alive connections, each sending its next request as soon as the previous one ends. */
export interface ClosedPhaseSpec extends PhaseCommon {
  kind: 'closed';
  connections: number;
}

/** Open loop: requests on a fixed schedule (`rate` per second), whatever the responses do. */
export interface OpenPhaseSpec extends PhaseCommon {
  kind: 'open';
  rate: number;
  /** Connections opened before the first request. */
  initialConnections: number;
  /** Upper bound on connections; beyond it requests queue (and the queueing counts as latency). */
  maxConnections: number;
}

/**
 * Hold: open `streams` streaming requests at once (at most `openConcurrency`
 * waiting for their first bytes at a time), mark 'start' once every one has
 * received its first bytes, keep them open `holdMs`, mark 'end', close them
 * all. The upstream must keep them open that long (a long chunk delay).
 * `durationMs` bounds the opening: streams not open by then are errors.
 */
export interface HoldPhaseSpec extends PhaseCommon {
  kind: 'hold';
  streams: number;
  openConcurrency: number;
  holdMs: number;
}

export type PhaseSpec = ClosedPhaseSpec | OpenPhaseSpec | HoldPhaseSpec;

export interface ErrorTally {
  total: number;
  /** e.g. "status 503", "bad body", "timeout", "connection closed". */
  byKind: Record<string, number>;
  /** First few error descriptions, for the report. */
  samples: string[];
}

export interface PhaseResult {
  kind: 'closed' | 'open' | 'hold';
  /** Length of the measurement window (between the start and end marks). */
  windowMs: number;
  /** Requests counted in the window (closed: completed in it; open: scheduled in it). */
  requests: number;
  /** Successful responses in the whole phase, warm-up included. */
  okTotal: number;
  /** Requests sent in the whole phase, warm-up included. */
  sentTotal: number;
  /** Latency in ms (closed: send → end of response; open: scheduled time → end of response). */
  latency: Summary;
  /** Open loop only: how late requests were actually written (ms after their scheduled time). */
  sendLateness?: Summary;
  /** Open loop only: send → end of response (ms), i.e. without the generator's own delay. */
  serviceTime?: Summary;
  /** Highest number of connections open at once. */
  maxConnections: number;
  /** Open loop only: requests that had to wait for a free connection. */
  queued?: number;
  /** With `chunkGaps`: time between consecutive reads of a response (ms), over the measured responses. */
  chunkGap?: Summary;
  /** With `chunkGaps`: reads per measured response (mean; the first carries the head). */
  readsPerResponse?: number;
  errors: ErrorTally;
}

export type ToChild = { type: 'run'; spec: PhaseSpec };

export type FromChild = { type: 'mark'; mark: 'start' | 'end' } | { type: 'result'; result: PhaseResult } | { type: 'failed'; message: string };
