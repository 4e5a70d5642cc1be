/**
 * One ext_proc stream from the upstream filter chain of an aggregate cluster
 * = one attempt of a request with fallbacks (src/pipeline/attempt.ts).
 *
 *   request_headers ─▶ request_body ─▶ response_headers ─▶ (closed with OK)
 *          └── a refused attempt: immediate response ──▶ (closed with OK)
 *
 * A request without a fallback ticket (a target naming an aggregate of
 * interchangeable members) is passed through unchanged in every phase.
 *
 * Envoy's filter config sends only those three messages (no response body:
 * the downstream phase reads and translates the answer once). A connection
 * the member refused ends the stream after request_body without a response;
 * the ledger then keeps the attempt without a status.
 */
import type { Logger } from 'pino';
import type { AttemptProcessor, AttemptState } from '../../pipeline/attempt.ts';
import { CONTINUE, type PhaseResult } from '../../pipeline/phase-result.ts';
import type { Struct } from '../proto/common.ts';
import type { ProcessingRequest } from '../proto/types.ts';
import { GrpcStatus } from '../transport/http2-server.ts';
import { EXT_PROC_ATTRIBUTES_KEY } from './attributes.ts';
import type { ExtProcCall } from './stream.ts';
import { headerMapToView, toProcessingResponse, unchanged } from './wire.ts';

/** gRPC initial metadata the aggregate clusters' ext_proc filters send (src/envoy/config.ts): this stream is an attempt. */
export const ROLE_METADATA = 'x-gateway-ext-proc';
export const ATTEMPT_ROLE = 'upstream-attempt';
/** The attribute naming the endpoint Envoy picked for the attempt. */
export const HOST_METADATA_ATTRIBUTE = 'xds.upstream_host_metadata';

/**
 * The member cluster from the endpoint's metadata (`gateway.member`, set on
 * every endpoint by src/envoy/config.ts). Envoy 1.40 sends it as the Metadata
 * message in protobuf text format, not as a Struct (test/envoy/upstream-ext-proc.test.ts).
 */
export function memberFromAttributes(attrs: Record<string, Struct> | undefined): string | null {
  const v = attrs?.[EXT_PROC_ATTRIBUTES_KEY]?.fields?.[HOST_METADATA_ATTRIBUTE];
  if (v?.kind !== 'stringValue') return null;
  const m = /key: "gateway" value \{ fields \{ key: "member" value \{ string_value: "([A-Za-z0-9._-]{1,128})" \} \}/.exec(v.stringValue);
  return m?.[1] ?? null;
}

export function serveAttempt(call: ExtProcCall, attempts: AttemptProcessor, log: Logger): void {
  let state: AttemptState | null = null;
  let done = false;
  const answer = (phase: 'request_headers' | 'request_body' | 'response_headers', result: PhaseResult, last: boolean): void => {
    call.write(toProcessingResponse(phase, result));
    if (last || result.kind === 'respond') {
      done = true;
      call.end();
    }
  };
  call.on('data', (msg: ProcessingRequest) => {
    if (done) return;
    try {
      switch (msg.request) {
        case 'request_headers': {
          const begun = attempts.begin(headerMapToView(msg.request_headers.headers), memberFromAttributes(msg.attributes));
          state = begun.state;
          answer('request_headers', begun.result, false);
          return;
        }
        // No state: an attempt without a fallback chain, passed on as the downstream phase prepared it.
        case 'request_body':
          answer('request_body', state === null ? CONTINUE : attempts.body(state, Buffer.from(msg.request_body.body ?? [])), false);
          return;
        case 'response_headers':
          answer('response_headers', state === null ? CONTINUE : attempts.responseHeaders(state, headerMapToView(msg.response_headers.headers)), true);
          return;
        default:
          // Not configured for this filter (response body, trailers): pass it on untouched.
          call.write(unchanged(msg.request) ?? {});
      }
    } catch (err) {
      log.error({ err: (err as Error).message, phase: msg.request }, 'upstream attempt stream error');
      done = true;
      call.fail(GrpcStatus.INTERNAL, 'inference-gateway: attempt stream error');
    }
  });
  call.on('end', () => {
    if (!done) {
      done = true;
      call.end();
    }
  });
  call.on('cancelled', () => {
    done = true;
  });
}
