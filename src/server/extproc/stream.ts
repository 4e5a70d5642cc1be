/**
 * One ext_proc stream = one HTTP request. An explicit state machine that
 * answers every message exactly once, in order: messages are queued and
 * handled one at a time even when a phase awaits I/O (the audit commit).
 *
 *   request_headers ─▶ request_body? ─▶ response_headers ─▶ response_body* ─▶ complete
 *          └─────────────── immediate response (denial, /v1/models) ───────────▶ complete
 *
 * The stream is ended cleanly (status OK) as soon as the request is
 * complete, i.e. after its last answer and its audit record; never earlier
 * (OK means "carry on without me" to Envoy). Anything else ends it with an
 * error status so Envoy fails the request closed.
 */
import type { Logger } from 'pino';
import type { RequestProcessor, RequestState } from '../../pipeline/processor.ts';
import type { PhaseResult } from '../../pipeline/phase-result.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import type { ProcessingRequest, ProcessingResponseInput as ProcessingResponse } from '../proto/types.ts';
import { headerMapToView, toProcessingResponse, unchanged, type AnswerPhase } from './wire.ts';
import { connectionInfoFromAttributes } from './attributes.ts';
import { loopStalled } from './loop-watch.ts';
import { GrpcStatus, type ServerCall } from '../transport/http2-server.ts';
import { errorMessage } from '../../shared/values.ts';

type StreamState =
  | 'awaiting_request_headers'
  | 'awaiting_request_body'
  | 'awaiting_response_headers'
  | 'awaiting_response_body'
  /** Final answer sent and audited; waiting for Envoy to close its side. */
  | 'complete'
  /**
   * Envoy rejected the request before its headers reached us (e.g. `OPTIONS *`)
   * and shows us only its own local reply: nothing to decide, pass it on.
   */
  | 'envoy_local_reply'
  /** The call is over (ended, cancelled or failed). */
  | 'closed';

export type ExtProcCall = ServerCall<ProcessingRequest, ProcessingResponse>;

export interface StreamDeps {
  readonly processor: RequestProcessor;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class ExtProcStream {
  readonly #call: ExtProcCall;
  readonly #d: StreamDeps;
  #state: StreamState = 'awaiting_request_headers';
  #req: RequestState | null = null;
  #queue: ProcessingRequest[] = [];
  #busy = false;
  #peerClosed = false;
  /** Once response headers went downstream an immediate response is impossible; failures reset the stream instead. */
  #responseStarted = false;
  readonly #onClose: (s: ExtProcStream) => void;

  constructor(call: ExtProcCall, deps: StreamDeps, onClose: (s: ExtProcStream) => void) {
    this.#call = call;
    this.#d = deps;
    this.#onClose = onClose;
    deps.metrics.activeStreams.inc();
    call.on('data', (msg: ProcessingRequest) => {
      this.#queue.push(msg);
      if (this.#busy) return;
      if (loopStalled()) {
        // Resuming from a stall: let what else arrived meanwhile (Envoy ending the stream) in before answering.
        this.#busy = true;
        setImmediate(() => {
          this.#busy = false;
          if (this.#peerClosed && this.#state !== 'complete' && this.#state !== 'envoy_local_reply' && this.#state !== 'closed') {
            void this.#terminate('envoy_gave_up', null);
            return;
          }
          void this.#drain();
        });
        return;
      }
      void this.#drain();
    });
    call.on('end', () => {
      this.#peerClosed = true;
      if (!this.#busy) void this.#drain();
    });
    loopStalled(); // starts the watch with the first stream
    call.on('cancelled', () => void this.#terminate('cancelled', null));
  }

  get requestId(): string | null {
    return this.#req?.ctx.requestId ?? null;
  }

  /** Shutdown past the grace period: audit as aborted and fail the stream. */
  async abortForShutdown(): Promise<void> {
    await this.#terminate('shutdown', null);
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      for (let msg = this.#queue.shift(); msg !== undefined; msg = this.#queue.shift()) {
        if (this.#state === 'closed') return;
        await this.#handle(msg);
      }
      if (this.#peerClosed && this.#state !== 'closed') {
        if (this.#state === 'complete' || this.#state === 'envoy_local_reply') this.#close('ok');
        else await this.#terminate('envoy_closed', null);
      }
    } finally {
      this.#busy = false;
    }
  }

  async #handle(msg: ProcessingRequest): Promise<void> {
    const started = process.hrtime.bigint();
    const phase = msg.request;
    let answer: ProcessingResponse;
    try {
      answer = await this.#dispatch(msg);
    } catch (err) {
      answer = await this.#internalError(phase, err);
      if (this.#state === 'closed') return;
    }
    if (this.#state === 'closed') return; // cancelled while we worked: nobody to answer
    this.#call.write(answer);
    if (phase !== undefined) this.#d.metrics.observePhase(phase, Number(process.hrtime.bigint() - started) / 1e9);
    // The exchange is over (final answer sent, audit committed): close with OK now. Waiting for
    // Envoy instead makes it reset every stream, and Node's HTTP/2 rapid-reset guard then drops
    // the whole connection after ~1000 resets — failing every request in flight on it.
    if (this.#state === 'complete') this.#close('ok');
  }

  async #dispatch(msg: ProcessingRequest): Promise<ProcessingResponse> {
    const p = this.#d.processor;
    if (this.#state === 'envoy_local_reply' || (this.#state === 'awaiting_request_headers' && msg.request === 'response_headers')) {
      const last =
        (msg.request === 'response_headers' && msg.response_headers.end_of_stream === true) ||
        (msg.request === 'response_body' && msg.response_body.end_of_stream === true);
      this.#state = last ? 'complete' : 'envoy_local_reply';
      return passThrough(msg);
    }
    switch (msg.request) {
      case 'request_headers': {
        this.#expect('awaiting_request_headers', msg.request);
        const h = msg.request_headers;
        const eos = h.end_of_stream === true;
        // The client certificate comes only from Envoy's connection attributes, never from a header.
        const { state, result } = await p.requestHeaders(headerMapToView(h.headers), eos, connectionInfoFromAttributes(msg.attributes));
        this.#req = state;
        this.#advance(result, eos ? 'awaiting_response_headers' : 'awaiting_request_body');
        return toProcessingResponse('request_headers', result);
      }
      case 'request_body': {
        this.#expect('awaiting_request_body', msg.request);
        // BUFFERED: this one message is the whole body (Envoy answers 413 itself above its buffer limit).
        const result = await p.requestBody(this.#reqState(), toBuffer(msg.request_body.body));
        this.#advance(result, 'awaiting_response_headers');
        return toProcessingResponse('request_body', result);
      }
      case 'response_headers': {
        // The upstream (or Envoy's router, for its own errors) may answer before the request body was sent.
        if (this.#state !== 'awaiting_request_body') this.#expect('awaiting_response_headers', msg.request);
        const h = msg.response_headers;
        const eos = h.end_of_stream === true;
        const result = await p.responseHeaders(this.#reqState(), headerMapToView(h.headers), eos);
        this.#advance(result, eos ? 'complete' : 'awaiting_response_body');
        this.#responseStarted = result.kind === 'continue' && result.streamResponseBody === true;
        return toProcessingResponse('response_headers', result);
      }
      case 'response_body': {
        this.#expect('awaiting_response_body', msg.request);
        const eos = msg.response_body.end_of_stream === true;
        const result = await p.responseBody(this.#reqState(), toBuffer(msg.response_body.body), eos);
        this.#advance(result, eos ? 'complete' : 'awaiting_response_body');
        return toProcessingResponse('response_body', result);
      }
      case 'request_trailers':
        return { request_trailers: {} };
      case 'response_trailers':
        return { response_trailers: {} };
      default:
        throw new ProtocolError(`unsupported ext_proc message ${String(msg.request)}`);
    }
  }

  #expect(state: StreamState, got: string): void {
    if (this.#state !== state) throw new ProtocolError(`${got} arrived in state ${this.#state}`);
  }

  #reqState(): RequestState {
    if (this.#req === null) throw new ProtocolError('no request headers seen on this stream');
    return this.#req;
  }

  #advance(result: PhaseResult, next: StreamState): void {
    this.#state = result.kind === 'respond' ? 'complete' : next;
  }

  /** A bug or protocol violation: answer this request with our 500 if possible, else reset the stream. */
  async #internalError(phase: string | undefined, err: unknown): Promise<ProcessingResponse> {
    const protocol = err instanceof ProtocolError;
    this.#d.log.error(
      { requestId: this.requestId, phase, err: errorMessage(err), stack: protocol ? undefined : (err as Error).stack },
      'ext_proc stream error',
    );
    const req = this.#req;
    if (protocol || req === null || this.#responseStarted || !isAnswerPhase(phase)) {
      await this.#terminate(protocol ? 'protocol_error' : 'internal_error', err as Error);
      return {};
    }
    const result = await this.#d.processor.fail(req, err);
    this.#state = 'complete';
    return toProcessingResponse(phase, result);
  }

  /** Ends an unfinished stream with an error status (Envoy fails closed) after auditing it as aborted. */
  async #terminate(reason: string, err: Error | null): Promise<void> {
    if (this.#state === 'closed') return;
    const wasComplete = this.#state === 'complete';
    this.#state = 'closed';
    if (this.#req !== null && !wasComplete) await this.#d.processor.abort(this.#req, reason);
    if (reason === 'cancelled') {
      this.#close(reason);
      return;
    }
    if (wasComplete) {
      this.#close('ok');
      return;
    }
    this.#call.fail(GrpcStatus.UNAVAILABLE, `inference-gateway: ${reason}${err === null ? '' : `: ${err.message}`}`);
    this.#close(reason);
  }

  #close(how: string): void {
    if (how === 'ok') {
      this.#state = 'closed';
      this.#call.end();
    }
    this.#d.metrics.activeStreams.dec();
    this.#onClose(this);
  }
}

function passThrough(msg: ProcessingRequest): ProcessingResponse {
  const answer = msg.request === 'request_trailers' ? null : unchanged(msg.request);
  if (answer === null) throw new ProtocolError(`${String(msg.request)} after Envoy's own local reply`);
  return answer;
}

class ProtocolError extends Error {
  override name = 'ProtocolError';
}

function isAnswerPhase(p: string | undefined): p is AnswerPhase {
  return p === 'request_headers' || p === 'request_body' || p === 'response_headers' || p === 'response_body';
}

function toBuffer(b: Buffer | Uint8Array | undefined | null): Buffer {
  if (b === undefined || b === null) return EMPTY;
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

const EMPTY = Buffer.alloc(0);
