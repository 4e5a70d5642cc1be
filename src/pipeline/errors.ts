/**
 * The one registry of error codes the gateway can return. Every failure a
 * client sees — from the sidecar or from Envoy's local replies — uses one of
 * these codes in OpenAI's error shape, so the official SDKs parse it.
 * docs/errors.md holds the same table; test/pipeline/errors.test.ts keeps the
 * two equal.
 */

export type ErrorType =
  'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'insufficient_quota' | 'server_error';

interface ErrorSpec {
  readonly status: number;
  readonly type: ErrorType;
  /** Who produces it: the sidecar, or Envoy via local_reply_config. */
  readonly origin: 'sidecar' | 'envoy';
  readonly description: string;
}

export const ERROR_CODES = {
  credential_in_query: {
    status: 400,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description:
      'A credential was sent in the URL query string (a parameter such as api_key, key, access_token or token, or a value shaped like a gateway API key or a JWT); it is refused before authentication, and must be sent in the authorization or x-api-key header.',
  },
  missing_api_key: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description: 'No credential was presented.',
  },
  invalid_api_key: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description: 'The credential is malformed, unknown, expired or revoked.',
  },
  invalid_token: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description:
      'The bearer JWT is malformed, unsigned, expired, not yet valid, or from an untrusted issuer or audience; or the IdP does not call the opaque token active, it is for another audience, or it was revoked.',
  },
  untrusted_client_certificate: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description: 'The client certificate is not acceptable: foreign SPIFFE trust domain, several URI SANs, or no identity mapping.',
  },
  credential_conflict: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description: 'Two credentials were presented that name different organisations or tenants.',
  },
  additional_credential_required: {
    status: 401,
    type: 'authentication_error',
    origin: 'sidecar',
    description: 'This tenant or endpoint requires another credential as well (e.g. mTLS plus an API key).',
  },
  endpoint_not_allowed: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description: 'The caller is not allowed to use this endpoint.',
  },
  data_policy_denied: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description: 'The data policy refuses a data class found in the request or the response (the class is named, never the value).',
  },
  no_authorized_deployment: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description:
      "The data policy's destination rules authorize no deployment of the model for this request (its data classes, tenant, org, role); the message names the rules, never a deployment.",
  },
  transforms_unsupported: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description:
      "The model's request transforms (defaults, forced parameters, a system prompt prefix) would change the request, and this path (ext_authz) cannot rewrite a body; the request is refused rather than sent without them.",
  },
  model_not_allowed: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description: 'The caller is not allowed to use this model.',
  },
  model_not_found: {
    status: 404,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description: 'The requested model is not in the routing snapshot.',
  },
  unknown_url: {
    status: 404,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description: 'The path is not an API the gateway serves (Envoy answers the same for unrouted paths).',
  },
  method_not_allowed: {
    status: 405,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description: 'The HTTP method is not supported on this path.',
  },
  rate_limit_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    origin: 'sidecar',
    description: 'A request or token rate limit, or the concurrency limit, is reached; retry after the retry-after header.',
  },
  insufficient_quota: {
    status: 429,
    type: 'insufficient_quota',
    origin: 'sidecar',
    description: 'The daily token cap is exhausted until midnight in the configured time zone.',
  },
  budget_exceeded: {
    status: 429,
    type: 'insufficient_quota',
    origin: 'sidecar',
    description:
      'A spend budget (daily or monthly, per key, tenant, org or model) is used up until it resets in the configured time zone; retry-after says when.',
  },
  budget_currency_mismatch: {
    status: 403,
    type: 'permission_error',
    origin: 'sidecar',
    description:
      "The model's deployments are priced in another currency than the caller's spend budget, so the budget cannot count it; the request is refused.",
  },
  invalid_request_body: {
    status: 400,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description: 'The body is not valid JSON or does not match the endpoint schema.',
  },
  unsupported_content_type: {
    status: 415,
    type: 'invalid_request_error',
    origin: 'sidecar',
    description: 'The body is not application/json.',
  },
  request_too_large: {
    status: 413,
    type: 'invalid_request_error',
    origin: 'envoy',
    description: 'The body exceeds the gateway body limit.',
  },
  internal_error: {
    status: 500,
    type: 'server_error',
    origin: 'sidecar',
    description: 'The sidecar failed while handling this request; other requests are unaffected.',
  },
  authentication_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'sidecar',
    description:
      'A credential could not be checked because its key source (JWKS, key store, introspection endpoint, token revocation list) is unreachable; it is not accepted.',
  },
  quota_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'sidecar',
    description: 'The quota store is unreachable and the plan fails closed.',
  },
  audit_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'sidecar',
    description: 'The audit record could not be committed, so the request is refused (fail closed).',
  },
  upstream_credential_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'sidecar',
    description: 'The deployment needs a credential the sidecar cannot read (missing or empty secret file).',
  },
  upstream_response_invalid: {
    status: 502,
    type: 'server_error',
    origin: 'sidecar',
    description: "The model server's answer could not be read in its provider's API, so it could not be translated for the client.",
  },
  upstream_error: {
    status: 502,
    type: 'server_error',
    origin: 'sidecar',
    description:
      'The model server failed with a body that is not an API error (an HTML page, an empty body): its 503 or 504 is kept, any other status is a 502; the message quotes the start of the body.',
  },
  upstream_rate_limited: {
    status: 429,
    type: 'rate_limit_error',
    origin: 'sidecar',
    description: 'The model server refused the request for its own rate limit, with a body that is not an API error; its retry-after is kept.',
  },
  authorized_deployment_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'sidecar',
    description:
      "Deployments the data policy's destination rules authorize exist, but none could serve the request (unreachable, unhealthy or drained); no other deployment was tried. The message names the rules.",
  },
  upstream_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'envoy',
    description: 'The model server could not be reached (connection failure, reset, no healthy host, unknown cluster).',
  },
  upstream_timeout: {
    status: 504,
    type: 'server_error',
    origin: 'envoy',
    description: 'The model server did not answer within the route timeout.',
  },
  gateway_unavailable: {
    status: 503,
    type: 'server_error',
    origin: 'envoy',
    description: 'The sidecar is unreachable or failed the stream; Envoy fails closed.',
  },
  gateway_timeout: {
    status: 504,
    type: 'server_error',
    origin: 'envoy',
    description: 'The sidecar did not answer a phase within the ext_proc message timeout.',
  },
  gateway_error: {
    status: 502,
    type: 'server_error',
    origin: 'envoy',
    description: 'Any other error Envoy produced itself; the status is kept.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure that ends the request with a client-visible error. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly status: number;
  /** Extra response headers (e.g. retry-after). */
  readonly headers: Readonly<Record<string, string>>;

  /** `status`: only for upstream_error, which keeps a model server's 503 or 504 (docs/errors.md). */
  constructor(code: ErrorCode, message: string, opts: { param?: string | null; headers?: Record<string, string>; status?: 503 | 504 } = {}) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
    this.param = opts.param ?? null;
    this.status = code === 'upstream_error' && opts.status !== undefined ? opts.status : ERROR_CODES[code].status;
    this.headers = opts.headers ?? {};
  }

  /** The error's type in the registry (OpenAI's error types, which families map to their own). */
  get type(): ErrorType {
    return ERROR_CODES[this.code].type;
  }
}
