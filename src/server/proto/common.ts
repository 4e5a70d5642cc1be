// Hand-written types for the JS objects that @grpc/proto-loader produces and
// accepts with the gateway's loader options (see LOADER_OPTIONS in load.ts):
//
//   keepCase  -> field names stay snake_case, exactly as in the .proto files
//   defaults  -> false: absent fields (and proto3 zero values, which are not
//                put on the wire) are simply missing, so every field is `?:`
//   enums     -> String: a declared value arrives as its name; a value this
//                build does not declare arrives as its number
//   longs     -> String: 64-bit integers arrive as decimal strings
//   oneofs    -> true: the decoded object carries an extra string property
//                named after the oneof whose value is the name of the field
//                that is set (e.g. `request: 'request_headers'`)
//   bytes     -> Buffer when decoding
//
// Naming: `Foo` is the decoded shape (what a handler receives), `FooInput` is
// what may be handed to grpc for encoding (protobufjs `fromObject`). Every
// decoded shape is assignable to its input shape, so decoded values can be
// passed back unchanged.
//
// This file holds the shared helpers plus google.protobuf, google.rpc,
// envoy.type.v3 and envoy.config.core.v3 shapes.

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/**
 * A proto3 enum value: one of the declared names, or the bare number for a
 * value this build's .proto does not declare (proto3 enums are open). When
 * encoding, either a declared name or a number may be given; an undeclared
 * *name* is silently dropped by protobufjs.
 */
export type OpenEnum<Name extends string> = Name | number;

/**
 * A `bytes` field on the way out. A string is decoded as BASE64 by
 * protobufjs (not UTF-8): pass `Buffer.from(text)` for text.
 */
export type BytesInput = Uint8Array | string;

/** A 64-bit integer on the way out (decoded ones are decimal strings). */
export type Int64Input = string | number;

/**
 * Decoded form of a message's oneof `K` whose alternatives are the
 * properties of `A`: either exactly one alternative is present together with
 * the discriminant `K` naming it, or none is present and `K` is absent too.
 */
export type OneofOut<K extends string, A> =
  | {
      [P in keyof A & string]: Record<K, P> & Pick<A, P> & { [Q in Exclude<keyof A & string, P>]?: undefined };
    }[keyof A & string]
  | (Partial<Record<K, undefined>> & { [Q in keyof A & string]?: undefined });

/**
 * Input form of a oneof: at most one alternative; the discriminant may be
 * given (it is ignored by the encoder) but must agree with the alternative.
 */
export type OneofIn<K extends string, A> =
  | {
      [P in keyof A & string]: Partial<Record<K, P>> & Pick<A, P> & { [Q in Exclude<keyof A & string, P>]?: undefined };
    }[keyof A & string]
  | (Partial<Record<K, undefined>> & { [Q in keyof A & string]?: undefined });

// ---------------------------------------------------------------------------
// google.protobuf well-known types (bundled with protobufjs)
// ---------------------------------------------------------------------------

/** google.protobuf.Any (no JSON `@type` mapping with these options). */
export interface Any {
  type_url?: string;
  value?: Buffer;
}
export interface AnyInput {
  type_url?: string;
  value?: BytesInput;
}

/** google.protobuf.Duration and google.protobuf.Timestamp. */
export interface Duration {
  seconds?: string;
  nanos?: number;
}
export interface DurationInput {
  seconds?: Int64Input;
  nanos?: number;
}
export type Timestamp = Duration;
export type TimestampInput = DurationInput;

/** google.protobuf.BoolValue. */
export interface BoolValue {
  value?: boolean;
}
export type BoolValueInput = BoolValue;

export type NullValue = 'NULL_VALUE';

// NOTE: proto-loader takes the well-known types from protobufjs's bundled
// JSON descriptors, whose Struct/Value/ListValue fields are camelCase
// (`stringValue`, `structValue`, ...) regardless of keepCase. Only these
// bundled messages are affected; Any keeps `type_url`.

/** google.protobuf.Struct. */
export interface Struct {
  fields?: Record<string, Value>;
}
export interface StructInput {
  fields?: Record<string, ValueInput>;
}

/** google.protobuf.ListValue. */
export interface ListValue {
  values?: Value[];
}
export interface ListValueInput {
  values?: ValueInput[];
}

export interface ValueKinds {
  nullValue: OpenEnum<NullValue>;
  numberValue: number;
  stringValue: string;
  boolValue: boolean;
  structValue: Struct;
  listValue: ListValue;
}
export interface ValueKindsInput {
  nullValue: OpenEnum<NullValue>;
  numberValue: number;
  stringValue: string;
  boolValue: boolean;
  structValue: StructInput;
  listValue: ListValueInput;
}
/** google.protobuf.Value: oneof `kind`, e.g. `{ kind: 'stringValue', stringValue: 'x' }`. */
export type Value = OneofOut<'kind', ValueKinds>;
export type ValueInput = OneofIn<'kind', ValueKindsInput>;

// ---------------------------------------------------------------------------
// google.rpc
// ---------------------------------------------------------------------------

/** google.rpc.Status; `code` is a google.rpc.Code (0 = OK). */
export interface RpcStatus {
  code?: number;
  message?: string;
  details?: Any[];
}
export interface RpcStatusInput {
  code?: number;
  message?: string;
  details?: AnyInput[];
}

// ---------------------------------------------------------------------------
// envoy.type.v3
// ---------------------------------------------------------------------------

/** Names of envoy.type.v3.StatusCode values (the number is the HTTP code). */
export type StatusCodeName =
  | 'Empty'
  | 'Continue'
  | 'OK'
  | 'Created'
  | 'Accepted'
  | 'NonAuthoritativeInformation'
  | 'NoContent'
  | 'ResetContent'
  | 'PartialContent'
  | 'MultiStatus'
  | 'AlreadyReported'
  | 'IMUsed'
  | 'MultipleChoices'
  | 'MovedPermanently'
  | 'Found'
  | 'SeeOther'
  | 'NotModified'
  | 'UseProxy'
  | 'TemporaryRedirect'
  | 'PermanentRedirect'
  | 'BadRequest'
  | 'Unauthorized'
  | 'PaymentRequired'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'ProxyAuthenticationRequired'
  | 'RequestTimeout'
  | 'Conflict'
  | 'Gone'
  | 'LengthRequired'
  | 'PreconditionFailed'
  | 'PayloadTooLarge'
  | 'URITooLong'
  | 'UnsupportedMediaType'
  | 'RangeNotSatisfiable'
  | 'ExpectationFailed'
  | 'MisdirectedRequest'
  | 'UnprocessableEntity'
  | 'Locked'
  | 'FailedDependency'
  | 'UpgradeRequired'
  | 'PreconditionRequired'
  | 'TooManyRequests'
  | 'RequestHeaderFieldsTooLarge'
  | 'InternalServerError'
  | 'NotImplemented'
  | 'BadGateway'
  | 'ServiceUnavailable'
  | 'GatewayTimeout'
  | 'HTTPVersionNotSupported'
  | 'VariantAlsoNegotiates'
  | 'InsufficientStorage'
  | 'LoopDetected'
  | 'NotExtended'
  | 'NetworkAuthenticationRequired';

/**
 * envoy.type.v3.HttpStatus. When encoding, `code` may simply be the numeric
 * HTTP status (e.g. 429); decoding yields the name ('TooManyRequests') for
 * declared codes and the number otherwise.
 */
export interface HttpStatus {
  code?: OpenEnum<StatusCodeName>;
}
export type HttpStatusInput = HttpStatus;

// ---------------------------------------------------------------------------
// envoy.config.core.v3 (base.proto)
// ---------------------------------------------------------------------------

/** envoy.config.core.v3.Metadata, keyed by filter namespace. */
export interface Metadata {
  filter_metadata?: Record<string, Struct>;
  typed_filter_metadata?: Record<string, Any>;
}
export interface MetadataInput {
  filter_metadata?: Record<string, StructInput>;
  typed_filter_metadata?: Record<string, AnyInput>;
}

/**
 * envoy.config.core.v3.HeaderValue. Envoy's ext_proc (and ext_authz raw
 * header mode) fill `raw_value` and leave `value` empty; send mutations in
 * `raw_value` as well.
 */
export interface HeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}
export interface HeaderValueInput {
  key?: string;
  value?: string;
  raw_value?: BytesInput;
}

export type HeaderAppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

/** envoy.config.core.v3.HeaderValueOption. */
export interface HeaderValueOption {
  header?: HeaderValue;
  /** Deprecated upstream; use append_action and never set both. */
  append?: BoolValue;
  append_action?: OpenEnum<HeaderAppendAction>;
  keep_empty_value?: boolean;
}
export interface HeaderValueOptionInput {
  header?: HeaderValueInput;
  /** Deprecated upstream; use append_action and never set both. */
  append?: BoolValueInput;
  append_action?: OpenEnum<HeaderAppendAction>;
  keep_empty_value?: boolean;
}

/** envoy.config.core.v3.HeaderMap: an ordered list, keys may repeat. */
export interface HeaderMap {
  headers?: HeaderValue[];
}
export interface HeaderMapInput {
  headers?: HeaderValueInput[];
}

/** envoy.config.core.v3.QueryParameter. */
export interface QueryParameter {
  key?: string;
  value?: string;
}
export type QueryParameterInput = QueryParameter;

// ---------------------------------------------------------------------------
// envoy.config.core.v3 (address.proto)
// ---------------------------------------------------------------------------

/** envoy.config.core.v3.Pipe (Unix domain socket). */
export interface Pipe {
  path?: string;
  mode?: number;
}
export type PipeInput = Pipe;

export interface EnvoyInternalAddressNames {
  server_listener_name: string;
}
/** envoy.config.core.v3.EnvoyInternalAddress: oneof `address_name_specifier`. */
export type EnvoyInternalAddress = { endpoint_id?: string } & OneofOut<'address_name_specifier', EnvoyInternalAddressNames>;
export type EnvoyInternalAddressInput = { endpoint_id?: string } & OneofIn<'address_name_specifier', EnvoyInternalAddressNames>;

export type SocketProtocol = 'TCP' | 'UDP';

export interface SocketAddressFields {
  protocol?: OpenEnum<SocketProtocol>;
  address?: string;
  resolver_name?: string;
  ipv4_compat?: boolean;
  network_namespace_filepath?: string;
}
export interface SocketAddressPorts {
  port_value: number;
  named_port: string;
}
/** envoy.config.core.v3.SocketAddress: oneof `port_specifier`. */
export type SocketAddress = SocketAddressFields & OneofOut<'port_specifier', SocketAddressPorts>;
export type SocketAddressInput = SocketAddressFields & OneofIn<'port_specifier', SocketAddressPorts>;

export interface AddressKinds {
  socket_address: SocketAddress;
  pipe: Pipe;
  envoy_internal_address: EnvoyInternalAddress;
}
export interface AddressKindsInput {
  socket_address: SocketAddressInput;
  pipe: PipeInput;
  envoy_internal_address: EnvoyInternalAddressInput;
}
/** envoy.config.core.v3.Address: oneof `address`. */
export type Address = OneofOut<'address', AddressKinds>;
export type AddressInput = OneofIn<'address', AddressKindsInput>;
