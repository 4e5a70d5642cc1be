// Types for envoy.service.auth.v3 (ext_authz), as decoded / accepted by the
// gateway's proto loader. See common.ts for the conventions
// (`Foo` = decoded, `FooInput` = encodable).

import type { handleUnaryCall } from '@grpc/grpc-js';
import type {
  Address,
  AddressInput,
  BytesInput,
  HeaderMap,
  HeaderMapInput,
  HeaderValueOption,
  HeaderValueOptionInput,
  HttpStatus,
  HttpStatusInput,
  Int64Input,
  Metadata,
  MetadataInput,
  OneofIn,
  OneofOut,
  QueryParameter,
  QueryParameterInput,
  RpcStatus,
  RpcStatusInput,
  Struct,
  StructInput,
  Timestamp,
  TimestampInput,
} from './common.ts';

// ---------------------------------------------------------------------------
// AttributeContext
// ---------------------------------------------------------------------------

/** AttributeContext.Peer: one end of the downstream connection. */
export interface Peer {
  address?: Address;
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}
export interface PeerInput {
  address?: AddressInput;
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

/**
 * AttributeContext.HttpRequest. `headers` (merged, lower-case keys) is used
 * unless the filter sets encode_raw_headers, in which case `header_map` is
 * filled instead. `size` is a decimal string, "-1" when unknown.
 */
export interface HttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: HeaderMap;
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: string;
  protocol?: string;
  body?: string;
  raw_body?: Buffer;
}
export interface HttpRequestInput {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: HeaderMapInput;
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: Int64Input;
  protocol?: string;
  body?: string;
  raw_body?: BytesInput;
}

/** AttributeContext.Request. */
export interface AttributeRequest {
  time?: Timestamp;
  http?: HttpRequest;
}
export interface AttributeRequestInput {
  time?: TimestampInput;
  http?: HttpRequestInput;
}

/** AttributeContext.TLSSession. */
export interface TLSSession {
  sni?: string;
}
export type TLSSessionInput = TLSSession;

/** AttributeContext. */
export interface AttributeContext {
  source?: Peer;
  destination?: Peer;
  request?: AttributeRequest;
  context_extensions?: Record<string, string>;
  metadata_context?: Metadata;
  route_metadata_context?: Metadata;
  tls_session?: TLSSession;
}
export interface AttributeContextInput {
  source?: PeerInput;
  destination?: PeerInput;
  request?: AttributeRequestInput;
  context_extensions?: Record<string, string>;
  metadata_context?: MetadataInput;
  route_metadata_context?: MetadataInput;
  tls_session?: TLSSessionInput;
}

// ---------------------------------------------------------------------------
// Check
// ---------------------------------------------------------------------------

export interface CheckRequest {
  attributes?: AttributeContext;
}
export interface CheckRequestInput {
  attributes?: AttributeContextInput;
}

/** Reply sent downstream on deny (403 when `status` is unset). */
export interface DeniedHttpResponse {
  status?: HttpStatus;
  headers?: HeaderValueOption[];
  body?: string;
}
export interface DeniedHttpResponseInput {
  status?: HttpStatusInput;
  headers?: HeaderValueOptionInput[];
  body?: string;
}

/** Request changes on allow. */
export interface OkHttpResponse {
  headers?: HeaderValueOption[];
  headers_to_remove?: string[];
  /** Deprecated upstream: use CheckResponse.dynamic_metadata. */
  dynamic_metadata?: Struct;
  response_headers_to_add?: HeaderValueOption[];
  query_parameters_to_set?: QueryParameter[];
  query_parameters_to_remove?: string[];
}
export interface OkHttpResponseInput {
  headers?: HeaderValueOptionInput[];
  headers_to_remove?: string[];
  /** Deprecated upstream: use CheckResponse.dynamic_metadata. */
  dynamic_metadata?: StructInput;
  response_headers_to_add?: HeaderValueOptionInput[];
  query_parameters_to_set?: QueryParameterInput[];
  query_parameters_to_remove?: string[];
}

/** The alternatives of CheckResponse's oneof `http_response`. */
export interface CheckHttpResponses {
  denied_response: DeniedHttpResponse;
  ok_response: OkHttpResponse;
  error_response: DeniedHttpResponse;
}
export interface CheckHttpResponsesInput {
  denied_response: DeniedHttpResponseInput;
  ok_response: OkHttpResponseInput;
  error_response: DeniedHttpResponseInput;
}

export interface CheckResponseFields {
  /** code 0 (OK) allows the request; anything else denies it. */
  status?: RpcStatus;
  dynamic_metadata?: Struct;
}
export interface CheckResponseFieldsInput {
  status?: RpcStatusInput;
  dynamic_metadata?: StructInput;
}

/** A decoded CheckResponse; discriminate on `http_response`. */
export type CheckResponse = CheckResponseFields & OneofOut<'http_response', CheckHttpResponses>;
/**
 * What the authorization service returns, e.g.
 * `{ status: { code: 0 }, ok_response: { headers: [...] } }`.
 */
export type CheckResponseInput = CheckResponseFieldsInput & OneofIn<'http_response', CheckHttpResponsesInput>;

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

/** Implementation object for `server.addService(AuthorizationService, …)`. */
export type AuthorizationHandlers = {
  Check: handleUnaryCall<CheckRequest, CheckResponseInput>;
};
