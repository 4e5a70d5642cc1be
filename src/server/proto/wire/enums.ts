/**
 * The enum values the ext_proc codec reads and writes, written out from the
 * declarations in protos/ (and google/protobuf/struct.proto's NullValue).
 * test/server/ext-proc-codec.test.ts checks every table against the enums
 * proto-loader loads, so a value added to a .proto without being added here
 * fails the tests.
 */

/** Names by number, for decoding; a number missing here decodes as the bare number (proto3 enums are open). */
export type EnumNames = readonly (string | undefined)[];
/** Numbers by name, for encoding; a name missing here is dropped, as protobufjs's fromObject drops it. */
export type EnumNumbers = ReadonlyMap<string, number>;

function numbers(names: EnumNames): EnumNumbers {
  const out = new Map<string, number>();
  names.forEach((name, n) => {
    if (name !== undefined) out.set(name, n);
  });
  return out;
}

/** google.protobuf.NullValue */
export const NULL_VALUE_NAMES: EnumNames = ['NULL_VALUE'];
export const NULL_VALUE: EnumNumbers = numbers(NULL_VALUE_NAMES);

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode */
export const HEADER_SEND_MODE_NAMES: EnumNames = ['DEFAULT', 'SEND', 'SKIP'];
export const HEADER_SEND_MODE: EnumNumbers = numbers(HEADER_SEND_MODE_NAMES);

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode */
export const BODY_SEND_MODE_NAMES: EnumNames = ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL', 'FULL_DUPLEX_STREAMED', 'GRPC'];
export const BODY_SEND_MODE: EnumNumbers = numbers(BODY_SEND_MODE_NAMES);

/** envoy.service.ext_proc.v3.CommonResponse.ResponseStatus */
export const RESPONSE_STATUS: EnumNumbers = numbers(['CONTINUE', 'CONTINUE_AND_REPLACE']);

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction */
export const HEADER_APPEND_ACTION: EnumNumbers = numbers(['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS']);

/** envoy.type.v3.StatusCode: the name of each HTTP status it declares (the value is the status). */
export const STATUS_CODE: EnumNumbers = new Map<string, number>([
  ['Empty', 0],
  ['Continue', 100],
  ['OK', 200],
  ['Created', 201],
  ['Accepted', 202],
  ['NonAuthoritativeInformation', 203],
  ['NoContent', 204],
  ['ResetContent', 205],
  ['PartialContent', 206],
  ['MultiStatus', 207],
  ['AlreadyReported', 208],
  ['IMUsed', 226],
  ['MultipleChoices', 300],
  ['MovedPermanently', 301],
  ['Found', 302],
  ['SeeOther', 303],
  ['NotModified', 304],
  ['UseProxy', 305],
  ['TemporaryRedirect', 307],
  ['PermanentRedirect', 308],
  ['BadRequest', 400],
  ['Unauthorized', 401],
  ['PaymentRequired', 402],
  ['Forbidden', 403],
  ['NotFound', 404],
  ['MethodNotAllowed', 405],
  ['NotAcceptable', 406],
  ['ProxyAuthenticationRequired', 407],
  ['RequestTimeout', 408],
  ['Conflict', 409],
  ['Gone', 410],
  ['LengthRequired', 411],
  ['PreconditionFailed', 412],
  ['PayloadTooLarge', 413],
  ['URITooLong', 414],
  ['UnsupportedMediaType', 415],
  ['RangeNotSatisfiable', 416],
  ['ExpectationFailed', 417],
  ['MisdirectedRequest', 421],
  ['UnprocessableEntity', 422],
  ['Locked', 423],
  ['FailedDependency', 424],
  ['UpgradeRequired', 426],
  ['PreconditionRequired', 428],
  ['TooManyRequests', 429],
  ['RequestHeaderFieldsTooLarge', 431],
  ['InternalServerError', 500],
  ['NotImplemented', 501],
  ['BadGateway', 502],
  ['ServiceUnavailable', 503],
  ['GatewayTimeout', 504],
  ['HTTPVersionNotSupported', 505],
  ['VariantAlsoNegotiates', 506],
  ['InsufficientStorage', 507],
  ['LoopDetected', 508],
  ['NotExtended', 510],
  ['NetworkAuthenticationRequired', 511],
]);
