/**
 * The answers of the zero-work ext_proc server F ("floor", bench/floor-server.ts):
 * the least an ext_proc server must do for the benchmark's traffic to pass
 * through the gateway's Envoy configuration (envoy/gateway.yaml) exactly as
 * it does with the sidecar, and nothing else:
 *
 * - request headers: CONTINUE, with the route's cluster header
 *   (`x-gateway-target-cluster`, the route's `cluster_header`) set to the
 *   cluster the sidecar picks for `gpt-demo` in the bench fixture
 *   (`demo-upstream`), and `clear_route_cache` (the route was resolved before
 *   the header existed; the sidecar clears it too, in its request-body answer);
 * - response headers: CONTINUE; for a `text/event-stream` response also
 *   `mode_override` response_body_mode STREAMED, as the sidecar does, so a
 *   stream is passed on chunk by chunk instead of buffered;
 * - everything else: CONTINUE for its phase (bench/lib/extproc-workload.ts).
 *
 * No authentication, no body parsing, no audit: what is left is the cost of
 * the ext_proc protocol itself (gRPC over the Unix socket, the codecs, the
 * transport), measured with this project's own transport and codecs.
 */
import { DEMO_CLUSTER, TARGET_CLUSTER_HEADER } from '../../src/envoy/config.ts';
import type { HeaderMap } from '../../src/server/proto/common.ts';
import type { ProcessingRequest, ProcessingResponseInput } from '../../src/server/proto/ext-proc.ts';
import { continueFor } from './extproc-workload.ts';

/** The cluster F routes every request to: the one the sidecar picks for gpt-demo in the bench fixture. */
export const FLOOR_CLUSTER = DEMO_CLUSTER;

const ROUTE_HEADER = { key: TARGET_CLUSTER_HEADER, raw_value: Buffer.from(FLOOR_CLUSTER) };

const SSE = 'text/event-stream';

/** The response's content-type, read straight from the header list (raw_value, else value). */
function contentType(map: HeaderMap | undefined | null): string {
  for (const h of map?.headers ?? []) {
    if (h.key !== 'content-type') continue;
    return h.raw_value !== undefined && h.raw_value !== null && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
  }
  return '';
}

/** F's answer to one ProcessingRequest. */
export function floorAnswer(message: ProcessingRequest): ProcessingResponseInput {
  switch (message.request) {
    case 'request_headers':
      return {
        request_headers: {
          response: {
            status: 'CONTINUE',
            header_mutation: { set_headers: [{ header: ROUTE_HEADER, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
            clear_route_cache: true,
          },
        },
      };
    case 'response_headers': {
      const answer: ProcessingResponseInput = { response_headers: { response: { status: 'CONTINUE' } } };
      if (contentType(message.response_headers?.headers).toLowerCase().startsWith(SSE)) answer.mode_override = { response_body_mode: 'STREAMED' };
      return answer;
    }
    default:
      return continueFor(message);
  }
}
