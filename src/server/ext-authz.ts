/**
 * ext_authz Check: the same identity, endpoint, model and authorization
 * decisions as ext_proc, for meshes that only speak ext_authz (Istio
 * CUSTOM AuthorizationPolicy). Differences, by the protocol's nature: it
 * cannot rewrite the body (the upstream sees the client's model alias), it
 * sees the body only when Envoy is configured to send it
 * (`with_request_body`), and it never sees responses, so it cannot count
 * tokens.
 */
import type { Logger } from 'pino';
import type { RequestProcessor } from '../pipeline/processor.ts';
import type { PhaseResult } from '../pipeline/phase-result.ts';
import { connectionInfoFromCheckRequest } from './ext-authz-peer.ts';
import { GrpcError, GrpcStatus } from './transport/http2-server.ts';
import type { CheckRequest, CheckResponseInput as CheckResponse, HeaderValueOptionInput as HeaderValueOption } from './proto/types.ts';
import { errorMessage } from '../shared/values.ts';

const GRPC_OK = 0;
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;

export function createCheckHandler(processor: RequestProcessor, log: Logger): (request: CheckRequest) => Promise<CheckResponse> {
  return (request) =>
    check(processor, request).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'ext_authz check failed');
      throw new GrpcError(GrpcStatus.INTERNAL, 'inference-gateway: check failed');
    });
}

async function check(processor: RequestProcessor, req: CheckRequest): Promise<CheckResponse> {
  const http = req.attributes?.request?.http;
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(http?.headers ?? {})) headers.set(k.toLowerCase(), v);
  if (http?.method !== undefined) headers.set(':method', http.method);
  if (http?.path !== undefined) headers.set(':path', http.path);
  const body =
    http?.raw_body !== undefined && http.raw_body.length > 0
      ? Buffer.from(http.raw_body)
      : http?.body !== undefined && http.body !== ''
        ? Buffer.from(http.body, 'utf8')
        : null;

  const { state, result } = await processor.requestHeaders(headers, body === null, connectionInfoFromCheckRequest(req), 'ext_authz');
  if (result.kind === 'respond') return denied(result);
  const set = [...(result.headers?.set ?? [])];
  const remove = [...(result.headers?.remove ?? [])];
  if (body !== null) {
    const bodyResult = await processor.requestBody(state, body);
    if (bodyResult.kind === 'respond') return denied(bodyResult);
    // Body edits are impossible here; header edits (cluster, model, enrichment) still apply.
    for (const [k, v] of bodyResult.headers?.set ?? []) if (k !== 'content-length') set.push([k, v]);
  }
  await processor.authorized(state);
  // Envoy applies headers_to_remove after the set headers: a name we set must not be listed for removal
  // (the set overwrites the client's value anyway).
  const setNames = new Set(set.map(([k]) => k));
  return {
    status: { code: GRPC_OK },
    ok_response: { headers: set.map(([k, v]) => option(k, v)), headers_to_remove: remove.filter((k) => !setNames.has(k)) },
  };
}

function option(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

function denied(result: Extract<PhaseResult, { kind: 'respond' }>): CheckResponse {
  return {
    status: { code: result.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED },
    denied_response: {
      status: { code: result.status },
      headers: result.headers.map(([k, v]) => option(k, v)),
      body: result.body.toString('utf8'),
    },
  };
}
