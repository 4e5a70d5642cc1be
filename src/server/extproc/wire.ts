/**
 * Translation between the pipeline's protocol-free results and ext_proc
 * messages. Header values go in `raw_value` only (Envoy rejects a mutation
 * that sets both) with OVERWRITE_IF_EXISTS_OR_ADD.
 */
import type { HeaderEdits, PhaseResult } from '../../pipeline/phase-result.ts';
import type {
  CommonResponseInput,
  HeaderMap,
  HeaderMutationInput as HeaderMutation,
  ImmediateResponseInput,
  ProcessingRequest,
  ProcessingResponseInput as ProcessingResponse,
} from '../proto/types.ts';

export function headerMapToView(map: HeaderMap | undefined | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of map?.headers ?? []) {
    const key = h.key ?? '';
    // raw_value carries the bytes; latin1 keeps every byte as one code unit.
    const raw = h.raw_value;
    const value =
      raw === undefined || raw === null || raw.length === 0
        ? (h.value ?? '')
        : Buffer.isBuffer(raw)
          ? raw.toString('latin1')
          : Buffer.from(raw).toString('latin1');
    const prev = out.get(key);
    // A repeated header is joined as HTTP does; a doubled credential then simply fails to parse.
    out.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return out;
}

export function toHeaderMutation(edits: HeaderEdits | undefined): HeaderMutation | undefined {
  if (edits === undefined || (edits.set.length === 0 && edits.remove.length === 0)) return undefined;
  return {
    set_headers: edits.set.map(([key, value]) => ({
      header: { key, raw_value: Buffer.from(value, 'latin1') },
      append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    remove_headers: [...edits.remove],
  };
}

/** The answer that changes nothing, for a message of a response phase or a trailer; null for a request phase. */
export function unchanged(phase: ProcessingRequest['request']): ProcessingResponse | null {
  switch (phase) {
    case 'response_headers':
      return { response_headers: {} };
    case 'response_body':
      return { response_body: {} };
    case 'request_trailers':
      return { request_trailers: {} };
    case 'response_trailers':
      return { response_trailers: {} };
    default:
      return null;
  }
}

export type AnswerPhase = 'request_headers' | 'request_body' | 'response_headers' | 'response_body';

/** The answer to one ext_proc message. */
export function toProcessingResponse(phase: AnswerPhase, result: PhaseResult): ProcessingResponse {
  if (result.kind === 'respond') {
    const immediate: ImmediateResponseInput = { status: { code: result.status }, body: result.body, details: result.details };
    const headers = toHeaderMutation({ set: result.headers, remove: [] });
    if (headers !== undefined) immediate.headers = headers;
    return { immediate_response: immediate };
  }
  // Only the fields that say something: an absent field is not encoded at all.
  const common: CommonResponseInput = {};
  const headers = toHeaderMutation(result.headers);
  if (headers !== undefined) common.header_mutation = headers;
  if (result.body !== undefined) common.body_mutation = { body: result.body };
  if (result.clearRouteCache === true) common.clear_route_cache = true;
  const out: ProcessingResponse =
    phase === 'request_headers'
      ? { request_headers: { response: common } }
      : phase === 'request_body'
        ? { request_body: { response: common } }
        : phase === 'response_headers'
          ? { response_headers: { response: common } }
          : { response_body: { response: common } };
  if (result.streamResponseBody === true) out.mode_override = { response_body_mode: 'STREAMED' };
  return out;
}
