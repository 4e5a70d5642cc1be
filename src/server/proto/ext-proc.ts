// Types for envoy.service.ext_proc.v3 and
// envoy.extensions.filters.http.ext_proc.v3.ProcessingMode, as decoded /
// accepted by the gateway's proto loader. See common.ts for the conventions
// (`Foo` = decoded, `FooInput` = encodable).
//
// Fields marked "newer API" were taken from the newest upstream API snapshot
// available while writing (they sit beyond what Envoy 1.38 documents). They
// are declared so that nothing Envoy sends is silently dropped, but a 1.40
// data plane may never set them.

import type { handleBidiStreamingCall } from '@grpc/grpc-js';
import type {
  Any,
  AnyInput,
  BytesInput,
  Duration,
  DurationInput,
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
  OpenEnum,
  Struct,
  StructInput,
} from './common.ts';

// ---------------------------------------------------------------------------
// envoy.extensions.filters.http.ext_proc.v3.ProcessingMode
// ---------------------------------------------------------------------------

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';

export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';

/** ProcessingMode (also used as ProcessingResponse.mode_override). */
export interface ProcessingMode {
  request_header_mode?: OpenEnum<HeaderSendMode>;
  response_header_mode?: OpenEnum<HeaderSendMode>;
  request_body_mode?: OpenEnum<BodySendMode>;
  response_body_mode?: OpenEnum<BodySendMode>;
  request_trailer_mode?: OpenEnum<HeaderSendMode>;
  response_trailer_mode?: OpenEnum<HeaderSendMode>;
}
export type ProcessingModeInput = ProcessingMode;

// ---------------------------------------------------------------------------
// Messages Envoy sends
// ---------------------------------------------------------------------------

/** Filter settings, present on the first ProcessingRequest of a stream. */
export interface ProtocolConfiguration {
  request_body_mode?: OpenEnum<BodySendMode>;
  response_body_mode?: OpenEnum<BodySendMode>;
  send_body_without_waiting_for_header_response?: boolean;
}
export type ProtocolConfigurationInput = ProtocolConfiguration;

/** ProcessingRequest.FlowControlInit (newer API). Byte counts as strings. */
export interface FlowControlInit {
  initial_window_downstream_to_sidestream?: string;
  initial_window_sidestream_to_upstream?: string;
  initial_window_upstream_to_sidestream?: string;
  initial_window_sidestream_to_downstream?: string;
}
export interface FlowControlInitInput {
  initial_window_downstream_to_sidestream?: Int64Input;
  initial_window_sidestream_to_upstream?: Int64Input;
  initial_window_upstream_to_sidestream?: Int64Input;
  initial_window_sidestream_to_downstream?: Int64Input;
}

/** ProcessingRequest.ClientWindowUpdate (newer API). */
export interface ClientWindowUpdate {
  window_increment_sidestream_to_upstream?: string;
  window_increment_sidestream_to_downstream?: string;
}
export interface ClientWindowUpdateInput {
  window_increment_sidestream_to_upstream?: Int64Input;
  window_increment_sidestream_to_downstream?: Int64Input;
}

/** HttpHeaders: header names are lower-case, values in `raw_value`. */
export interface HttpHeaders {
  headers?: HeaderMap;
  /** Deprecated and never populated by Envoy. */
  attributes?: Record<string, Struct>;
  /** True when no body follows. */
  end_of_stream?: boolean;
}
export interface HttpHeadersInput {
  headers?: HeaderMapInput;
  /** Deprecated and never populated by Envoy. */
  attributes?: Record<string, StructInput>;
  end_of_stream?: boolean;
}

/** HttpBody: one body chunk (or the whole body in buffered modes). */
export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
  /** GRPC body mode only. */
  end_of_stream_without_message?: boolean;
  /** GRPC body mode only. */
  grpc_message_compressed?: boolean;
  /** Newer API. */
  drain_complete?: boolean;
}
export interface HttpBodyInput {
  body?: BytesInput;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
  drain_complete?: boolean;
}

/** HttpTrailers: values in `raw_value`. */
export interface HttpTrailers {
  trailers?: HeaderMap;
}
export interface HttpTrailersInput {
  trailers?: HeaderMapInput;
}

/** The alternatives of ProcessingRequest's oneof `request`. */
export interface ProcessingRequestPhases {
  request_headers: HttpHeaders;
  response_headers: HttpHeaders;
  request_body: HttpBody;
  response_body: HttpBody;
  request_trailers: HttpTrailers;
  response_trailers: HttpTrailers;
}
export interface ProcessingRequestPhasesInput {
  request_headers: HttpHeadersInput;
  response_headers: HttpHeadersInput;
  request_body: HttpBodyInput;
  response_body: HttpBodyInput;
  request_trailers: HttpTrailersInput;
  response_trailers: HttpTrailersInput;
}

/** Name of the phase a ProcessingRequest carries (its `request` property). */
export type ProcessingPhase = keyof ProcessingRequestPhases;

export interface ProcessingRequestFields {
  metadata_context?: Metadata;
  attributes?: Record<string, Struct>;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfiguration;
  /** Newer API. */
  flow_control_init?: FlowControlInit;
  /** Newer API. */
  client_window_update?: ClientWindowUpdate;
}
export interface ProcessingRequestFieldsInput {
  metadata_context?: MetadataInput;
  attributes?: Record<string, StructInput>;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfigurationInput;
  flow_control_init?: FlowControlInitInput;
  client_window_update?: ClientWindowUpdateInput;
}

/**
 * A decoded ProcessingRequest. Discriminate on `request`:
 *
 *     switch (msg.request) {
 *       case 'request_headers': msg.request_headers.headers; break;
 *       case 'request_body': msg.request_body.body; break;
 *       case undefined: // malformed: no phase set
 *     }
 */
export type ProcessingRequest = ProcessingRequestFields & OneofOut<'request', ProcessingRequestPhases>;
export type ProcessingRequestInput = ProcessingRequestFieldsInput & OneofIn<'request', ProcessingRequestPhasesInput>;

// ---------------------------------------------------------------------------
// Messages the processor sends
// ---------------------------------------------------------------------------

/** HeaderMutation: put values in `header.raw_value`. */
export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}
export interface HeaderMutationInput {
  set_headers?: HeaderValueOptionInput[];
  remove_headers?: string[];
}

/** Body chunk answer for FULL_DUPLEX_STREAMED / GRPC body modes. */
export interface StreamedBodyResponse {
  body?: Buffer;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
  /** Newer API. */
  drain_complete?: boolean;
}
export interface StreamedBodyResponseInput {
  body?: BytesInput;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
  drain_complete?: boolean;
}

export interface BodyMutationKinds {
  body: Buffer;
  clear_body: boolean;
  streamed_response: StreamedBodyResponse;
}
export interface BodyMutationKindsInput {
  body: BytesInput;
  clear_body: boolean;
  streamed_response: StreamedBodyResponseInput;
}
/** BodyMutation: oneof `mutation`. */
export type BodyMutation = OneofOut<'mutation', BodyMutationKinds>;
export type BodyMutationInput = OneofIn<'mutation', BodyMutationKindsInput>;

export type ResponseStatus = 'CONTINUE' | 'CONTINUE_AND_REPLACE';

/** CommonResponse: mutations for a headers or body answer. */
export interface CommonResponse {
  status?: OpenEnum<ResponseStatus>;
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  trailers?: HeaderMap;
  clear_route_cache?: boolean;
}
export interface CommonResponseInput {
  status?: OpenEnum<ResponseStatus>;
  header_mutation?: HeaderMutationInput;
  body_mutation?: BodyMutationInput;
  trailers?: HeaderMapInput;
  clear_route_cache?: boolean;
}

export interface HeadersResponse {
  response?: CommonResponse;
}
export interface HeadersResponseInput {
  response?: CommonResponseInput;
}

export interface BodyResponse {
  response?: CommonResponse;
}
export interface BodyResponseInput {
  response?: CommonResponseInput;
}

export interface TrailersResponse {
  header_mutation?: HeaderMutation;
}
export interface TrailersResponseInput {
  header_mutation?: HeaderMutationInput;
}

export interface GrpcStatus {
  status?: number;
}
export type GrpcStatusInput = GrpcStatus;

/** ImmediateResponse: a local reply that ends processing. */
export interface ImmediateResponse {
  status?: HttpStatus;
  headers?: HeaderMutation;
  body?: Buffer;
  grpc_status?: GrpcStatus;
  details?: string;
}
export interface ImmediateResponseInput {
  /** Required by Envoy; `{ code: 429 }` or `{ code: 'TooManyRequests' }`. */
  status?: HttpStatusInput;
  headers?: HeaderMutationInput;
  body?: BytesInput;
  grpc_status?: GrpcStatusInput;
  details?: string;
}

export interface StreamedImmediateResponseParts {
  headers_response: HttpHeaders;
  body_response: StreamedBodyResponse;
  trailers_response: HeaderMap;
}
export interface StreamedImmediateResponsePartsInput {
  headers_response: HttpHeadersInput;
  body_response: StreamedBodyResponseInput;
  trailers_response: HeaderMapInput;
}
/** StreamedImmediateResponse: oneof `response`. */
export type StreamedImmediateResponse = OneofOut<'response', StreamedImmediateResponseParts>;
export type StreamedImmediateResponseInput = OneofIn<'response', StreamedImmediateResponsePartsInput>;

/** ProcessingResponse.ServerWindowUpdate (newer API). */
export interface ServerWindowUpdate {
  window_increment_downstream_to_sidestream?: string;
  window_increment_upstream_to_sidestream?: string;
}
export interface ServerWindowUpdateInput {
  window_increment_downstream_to_sidestream?: Int64Input;
  window_increment_upstream_to_sidestream?: Int64Input;
}

/** The alternatives of ProcessingResponse's oneof `response`. */
export interface ProcessingResponseKinds {
  request_headers: HeadersResponse;
  response_headers: HeadersResponse;
  request_body: BodyResponse;
  response_body: BodyResponse;
  request_trailers: TrailersResponse;
  response_trailers: TrailersResponse;
  immediate_response: ImmediateResponse;
  streamed_immediate_response: StreamedImmediateResponse;
}
export interface ProcessingResponseKindsInput {
  request_headers: HeadersResponseInput;
  response_headers: HeadersResponseInput;
  request_body: BodyResponseInput;
  response_body: BodyResponseInput;
  request_trailers: TrailersResponseInput;
  response_trailers: TrailersResponseInput;
  immediate_response: ImmediateResponseInput;
  streamed_immediate_response: StreamedImmediateResponseInput;
}

export interface ProcessingResponseFields {
  dynamic_metadata?: Struct;
  mode_override?: ProcessingMode;
  override_message_timeout?: Duration;
  request_drain?: boolean;
  /** Newer API. */
  typed_dynamic_metadata?: Record<string, Any>;
  /** Newer API. */
  server_window_update?: ServerWindowUpdate;
  /** Newer API. */
  request_drain_requests?: boolean;
  /** Newer API. */
  request_drain_responses?: boolean;
}
export interface ProcessingResponseFieldsInput {
  dynamic_metadata?: StructInput;
  mode_override?: ProcessingModeInput;
  override_message_timeout?: DurationInput;
  request_drain?: boolean;
  typed_dynamic_metadata?: Record<string, AnyInput>;
  server_window_update?: ServerWindowUpdateInput;
  request_drain_requests?: boolean;
  request_drain_responses?: boolean;
}

/** A decoded ProcessingResponse; discriminate on `response`. */
export type ProcessingResponse = ProcessingResponseFields & OneofOut<'response', ProcessingResponseKinds>;
/**
 * What a processor writes, e.g.
 * `{ request_headers: { response: { status: 'CONTINUE' } } }`.
 */
export type ProcessingResponseInput = ProcessingResponseFieldsInput & OneofIn<'response', ProcessingResponseKindsInput>;

// ---------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------

/** Implementation object for `server.addService(ExternalProcessorService, …)`. */
export type ExternalProcessorHandlers = {
  Process: handleBidiStreamingCall<ProcessingRequest, ProcessingResponseInput>;
};
