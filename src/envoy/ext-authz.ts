/**
 * The ext_authz variant of the gateway's Envoy config, for meshes that only
 * speak ext_authz: the same listener, routing and local-reply mapping as
 * envoy/gateway.yaml with the ext_proc filter replaced by ext_authz (body
 * included, peer certificate included, route recomputed after the check).
 * envoy/ext-authz.yaml is this function applied to envoy/gateway.yaml; a test
 * keeps the committed file equal to it.
 */
import YAML from 'yaml';

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

function node(v: unknown, what: string): Node {
  if (!isNode(v)) throw new Error(`ext_authz render: ${what} is not a mapping`);
  return v;
}
function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`ext_authz render: ${what} is not a list`);
  return v;
}

/** Envoy's response code details for an ext_authz denial (our JSON body, passed through) and for a failed check. */
const DENIED_DETAILS = 'ext_authz_denied';
const ERROR_DETAILS = 'ext_authz_error';

function celFilter(expression: string): Node {
  return {
    extension_filter: {
      name: 'envoy.access_loggers.extension_filters.cel',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', expression },
    },
  };
}

export function toExtAuthzConfig(gatewayYaml: string): string {
  const doc = node(YAML.parse(gatewayYaml), 'document');
  const listeners = list(node(doc['static_resources'], 'static_resources')['listeners'], 'listeners');
  for (const listener of listeners) {
    for (const chain of list(node(listener, 'listener')['filter_chains'], 'filter_chains')) {
      for (const f of list(node(chain, 'filter chain')['filters'], 'filters')) {
        const hcm = node(node(f, 'filter')['typed_config'], 'typed_config');
        const filters = hcm['http_filters'];
        if (!Array.isArray(filters)) continue;
        const i = filters.findIndex((x) => isNode(x) && x['name'] === 'envoy.filters.http.ext_proc');
        if (i === -1) continue;
        const extProc = node(node(filters[i], 'ext_proc')['typed_config'], 'ext_proc.typed_config');
        filters[i] = {
          name: 'envoy.filters.http.ext_authz',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
            transport_api_version: 'V3',
            grpc_service: { ...node(extProc['grpc_service'], 'grpc_service'), timeout: extProc['message_timeout'] ?? '1s' },
            // Fail closed, as ext_proc does.
            failure_mode_allow: false,
            status_on_error: { code: 'ServiceUnavailable' },
            // The sidecar resolves the model from the body; up to the same 2 MiB body limit.
            with_request_body: { max_request_bytes: 2097152, allow_partial_message: false, pack_as_bytes: true },
            // mTLS identity reaches the sidecar as the peer certificate, never from a header.
            include_peer_certificate: true,
            // The sidecar names the cluster in a header: pick the route again after the check.
            clear_route_cache: true,
          },
        };
        const mappers = list(node(hcm['local_reply_config'], 'local_reply_config')['mappers'], 'mappers');
        mappers.splice(
          1,
          0,
          // The sidecar's denials already carry our JSON error: pass them through.
          { filter: celFilter(`response.code_details == '${DENIED_DETAILS}'`) },
          {
            filter: celFilter(`response.code_details.startsWith('${ERROR_DETAILS}')`),
            status_code: 503,
            body_format_override: {
              json_format: { error: { message: 'The gateway is temporarily unavailable.', type: 'server_error', code: 'gateway_unavailable', param: null } },
            },
          },
        );
      }
    }
  }
  return YAML.stringify(doc);
}
