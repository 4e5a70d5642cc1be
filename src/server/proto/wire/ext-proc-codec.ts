/**
 * Hand-written protobuf codec for the sidecar's hot path,
 * `envoy.service.ext_proc.v3.ExternalProcessor/Process` (issue #15).
 *
 * proto-loader (de)serializes through protobufjs in two steps, wire bytes <->
 * message instance <-> plain object, and that cost ~11% of the sidecar's
 * main-thread CPU under load. This codec goes straight between the wire and
 * the plain objects the rest of the code already uses, with the exact shapes
 * proto-loader produces and accepts under LOADER_OPTIONS (load.ts):
 *
 * - decoding: snake_case names; a field is present iff it was on the wire
 *   (defaults: false), zero values included; the oneof discriminator
 *   (`request`, Struct Value's `kind`) names the set member; enums as names
 *   (an undeclared number stays a number); int64 as decimal strings; `bytes`
 *   as Buffer views into the input; google.protobuf.Struct/Value/ListValue
 *   with protobufjs's camelCase field names (`stringValue`, …); empty maps
 *   and repeated fields absent; an embedded message sent twice replaces the
 *   first (protobufjs does not merge); two members of one oneof both kept,
 *   the discriminator naming the higher field number (what protobufjs's
 *   toObject yields).
 * - encoding: protobufjs fromObject's coercions (String(), Boolean(), >>> 0,
 *   | 0, Number()); a field is written iff its value is not null/undefined,
 *   zero values included; an undeclared enum name drops the field; fields in
 *   field-number order, so the bytes are the same as proto-loader's.
 *
 * Every field declared in protos/ for ProcessingRequest and ProcessingResponse
 * (and what they contain) is implemented. For input this codec does not
 * handle itself (strings for `bytes` fields, which protobufjs reads as
 * base64; int64 values that are not safe integers or decimal strings; a
 * message-typed field that is not an object; enum numbers outside int32), it
 * hands the whole message to proto-loader's serializer, which then encodes it
 * or throws exactly as before. Nothing is silently dropped:
 * test/server/ext-proc-codec.test.ts compares both directions with
 * proto-loader on random messages.
 *
 * Malformed input throws (reader.ts); the transport fails the call with
 * INTERNAL "cannot parse request message: …", as it does for protobufjs errors.
 *
 * Field numbers below are those of the .proto files in protos/.
 */
import type { ProcessingRequest, ProcessingResponseInput } from '../ext-proc.ts';
import { deferredMethod, METHOD_PATHS } from '../deferred.ts';
import type { MethodCodec } from '../../transport/http2-server.ts';
import {
  BODY_SEND_MODE,
  BODY_SEND_MODE_NAMES,
  HEADER_APPEND_ACTION,
  HEADER_SEND_MODE,
  NULL_VALUE,
  NULL_VALUE_NAMES,
  RESPONSE_STATUS,
  STATUS_CODE,
  type EnumNames,
  type EnumNumbers,
} from './enums.ts';
import { MAX_DEPTH, Reader, WireError, WireType } from './reader.ts';
import { Writer } from './writer.ts';

type Obj = Record<string, unknown>;

const { VARINT, I64, LEN } = WireType;

// ===========================================================================
// Decoding: ProcessingRequest (what Envoy sends)
// ===========================================================================

function enumName(names: EnumNames, n: number): string | number {
  return (n >= 0 ? names[n] : undefined) ?? n;
}

/** A map key that is an own property even when it is `__proto__` (as protobufjs's toObject makes it). */
function setKey(map: Obj, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, configurable: true, writable: true });
  else map[key] = value;
}

/**
 * One map<string, Message> entry into `map` (created on first use by the
 * caller). A missing key is ''; a missing value is refused, as proto-loader
 * refuses it (its toObject throws on the null it leaves).
 */
function readMapEntry(r: Reader, map: Obj, readItem: (r: Reader) => unknown): void {
  const outer = r.enter();
  let key = '';
  let value: unknown = null;
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, LEN);
        key = r.internedString();
        break;
      case 2:
        r.expect(tag, LEN);
        value = readMessage(r, readItem);
        break;
      default:
        r.skip(tag);
    }
  }
  r.leave(outer);
  if (value === null) throw new WireError(`map entry "${key}" without a value`);
  setKey(map, key, value);
}

/** An embedded message (its tag already read and checked). */
function readMessage<T>(r: Reader, read: (r: Reader) => T): T {
  const outer = r.enter();
  const value = read(r);
  r.leave(outer);
  return value;
}

// google.protobuf.Struct { map<string, Value> fields = 1; }
function readStruct(r: Reader): Obj {
  const out: Obj = {};
  let fields: Obj | undefined;
  while (r.more()) {
    const tag = r.tag();
    if (tag >>> 3 === 1) {
      r.expect(tag, LEN);
      readMapEntry(r, (fields ??= {}), readValue);
    } else r.skip(tag);
  }
  if (fields !== undefined) out.fields = fields;
  return out;
}

const VALUE_KINDS = [undefined, 'nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'] as const;

// google.protobuf.Value { oneof kind { NullValue null_value = 1; double number_value = 2; string string_value = 3;
//   bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; } }
function readValue(r: Reader): Obj {
  const out: Obj = {};
  let kind = 0;
  while (r.more()) {
    const tag = r.tag();
    const field = tag >>> 3;
    let value: unknown;
    switch (field) {
      case 1:
        r.expect(tag, VARINT);
        value = enumName(NULL_VALUE_NAMES, r.int32());
        break;
      case 2:
        r.expect(tag, I64);
        value = r.double();
        break;
      case 3:
        r.expect(tag, LEN);
        value = r.string();
        break;
      case 4:
        r.expect(tag, VARINT);
        value = r.bool();
        break;
      case 5:
        r.expect(tag, LEN);
        value = readMessage(r, readStruct);
        break;
      case 6:
        r.expect(tag, LEN);
        value = readMessage(r, readListValue);
        break;
      default:
        r.skip(tag);
        continue;
    }
    const name = VALUE_KINDS[field];
    out[name] = value;
    if (field >= kind) {
      kind = field;
      out.kind = name;
    }
  }
  return out;
}

// google.protobuf.ListValue { repeated Value values = 1; }
function readListValue(r: Reader): Obj {
  const out: Obj = {};
  const values: Obj[] = [];
  while (r.more()) {
    const tag = r.tag();
    if (tag >>> 3 === 1) {
      r.expect(tag, LEN);
      values.push(readMessage(r, readValue));
    } else r.skip(tag);
  }
  if (values.length > 0) out.values = values;
  return out;
}

// google.protobuf.Any { string type_url = 1; bytes value = 2; }
function readAny(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, LEN);
        out.type_url = r.string();
        break;
      case 2:
        r.expect(tag, LEN);
        out.value = r.bytes();
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

/** One entry of the map field `name` of `holder`; the map appears with its first entry (an empty map is absent). */
function readMapField(r: Reader, holder: Obj, name: string, readItem: (r: Reader) => unknown): void {
  const map = (holder[name] as Obj | undefined) ?? (holder[name] = {});
  readMapEntry(r, map, readItem);
}

// envoy.config.core.v3.HeaderValue { string key = 1; string value = 2; bytes raw_value = 3; }
function readHeaderValue(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, LEN);
        out.key = r.internedString();
        break;
      case 2:
        r.expect(tag, LEN);
        out.value = r.string();
        break;
      case 3:
        r.expect(tag, LEN);
        out.raw_value = r.bytes();
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

// envoy.config.core.v3.HeaderMap { repeated HeaderValue headers = 1; }
function readHeaderMap(r: Reader): Obj {
  const out: Obj = {};
  const headers: Obj[] = [];
  while (r.more()) {
    const tag = r.tag();
    if (tag >>> 3 === 1) {
      r.expect(tag, LEN);
      headers.push(readMessage(r, readHeaderValue));
    } else r.skip(tag);
  }
  if (headers.length > 0) out.headers = headers;
  return out;
}

// envoy.config.core.v3.Metadata { map<string, Struct> filter_metadata = 1; map<string, Any> typed_filter_metadata = 2; }
function readMetadata(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, LEN);
        readMapField(r, out, 'filter_metadata', readStruct);
        break;
      case 2:
        r.expect(tag, LEN);
        readMapField(r, out, 'typed_filter_metadata', readAny);
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

// HttpHeaders { HeaderMap headers = 1; map<string, Struct> attributes = 2; bool end_of_stream = 3; }
function readHttpHeaders(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, LEN);
        out.headers = readMessage(r, readHeaderMap);
        break;
      case 2:
        r.expect(tag, LEN);
        readMapField(r, out, 'attributes', readStruct);
        break;
      case 3:
        r.expect(tag, VARINT);
        out.end_of_stream = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

// HttpBody { bytes body = 1; bool end_of_stream = 2; bool end_of_stream_without_message = 3;
//   bool grpc_message_compressed = 4; bool drain_complete = 5; }
const HTTP_BODY_FLAGS = [undefined, undefined, 'end_of_stream', 'end_of_stream_without_message', 'grpc_message_compressed', 'drain_complete'] as const;

function readHttpBody(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    const field = tag >>> 3;
    if (field === 1) {
      r.expect(tag, LEN);
      out.body = r.bytes();
    } else if (field >= 2 && field <= 5) {
      r.expect(tag, VARINT);
      out[HTTP_BODY_FLAGS[field]!] = r.bool();
    } else r.skip(tag);
  }
  return out;
}

// HttpTrailers { HeaderMap trailers = 1; }
function readHttpTrailers(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    if (tag >>> 3 === 1) {
      r.expect(tag, LEN);
      out.trailers = readMessage(r, readHeaderMap);
    } else r.skip(tag);
  }
  return out;
}

// ProtocolConfiguration { BodySendMode request_body_mode = 1; BodySendMode response_body_mode = 2;
//   bool send_body_without_waiting_for_header_response = 3; }
function readProtocolConfig(r: Reader): Obj {
  const out: Obj = {};
  while (r.more()) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.expect(tag, VARINT);
        out.request_body_mode = enumName(BODY_SEND_MODE_NAMES, r.int32());
        break;
      case 2:
        r.expect(tag, VARINT);
        out.response_body_mode = enumName(BODY_SEND_MODE_NAMES, r.int32());
        break;
      case 3:
        r.expect(tag, VARINT);
        out.send_body_without_waiting_for_header_response = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

/** A message of int64 fields only, numbered from 1 (FlowControlInit, ClientWindowUpdate). */
function int64Reader(names: readonly string[]): (r: Reader) => Obj {
  return (r) => {
    const out: Obj = {};
    while (r.more()) {
      const tag = r.tag();
      const name = names[(tag >>> 3) - 1];
      if (name === undefined) {
        r.skip(tag);
        continue;
      }
      r.expect(tag, VARINT);
      out[name] = r.int64String();
    }
    return out;
  };
}

const readFlowControlInit = int64Reader([
  'initial_window_downstream_to_sidestream',
  'initial_window_sidestream_to_upstream',
  'initial_window_upstream_to_sidestream',
  'initial_window_sidestream_to_downstream',
]);
const readClientWindowUpdate = int64Reader(['window_increment_sidestream_to_upstream', 'window_increment_sidestream_to_downstream']);

/** ProcessingRequest's oneof `request`, by field number. */
const REQUEST_PHASES: readonly (readonly [string, (r: Reader) => Obj] | undefined)[] = [
  undefined,
  undefined, // 1: reserved (async_mode)
  ['request_headers', readHttpHeaders],
  ['response_headers', readHttpHeaders],
  ['request_body', readHttpBody],
  ['response_body', readHttpBody],
  ['request_trailers', readHttpTrailers],
  ['response_trailers', readHttpTrailers],
];

/**
 * Decodes one ProcessingRequest into the object proto-loader's deserializer
 * would give. Throws a WireError on malformed input.
 */
export function decodeProcessingRequest(bytes: Buffer): ProcessingRequest {
  const r = new Reader(bytes);
  const out: Obj = {};
  let phase = 0;
  while (r.more()) {
    const tag = r.tag();
    const field = tag >>> 3;
    switch (field) {
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
      case 7: {
        r.expect(tag, LEN);
        const [name, read] = REQUEST_PHASES[field]!;
        out[name] = readMessage(r, read);
        if (field >= phase) {
          phase = field;
          out.request = name;
        }
        break;
      }
      case 8:
        r.expect(tag, LEN);
        out.metadata_context = readMessage(r, readMetadata);
        break;
      case 9:
        r.expect(tag, LEN);
        readMapField(r, out, 'attributes', readStruct);
        break;
      case 10:
        r.expect(tag, VARINT);
        out.observability_mode = r.bool();
        break;
      case 11:
        r.expect(tag, LEN);
        out.protocol_config = readMessage(r, readProtocolConfig);
        break;
      case 12:
        r.expect(tag, LEN);
        out.flow_control_init = readMessage(r, readFlowControlInit);
        break;
      case 13:
        r.expect(tag, LEN);
        out.client_window_update = readMessage(r, readClientWindowUpdate);
        break;
      default:
        r.skip(tag);
    }
  }
  return out;
}

// ===========================================================================
// Encoding: ProcessingResponse (what the sidecar answers)
// ===========================================================================

/** Thrown (one shared instance) for input this codec leaves to proto-loader; never escapes this module. */
const FALLBACK: Error = Object.freeze(new Error('ext_proc codec: input left to proto-loader'));

function fallback(): never {
  throw FALLBACK;
}

/** Message-typed values (and map values, repeated elements) must be objects, as fromObject requires. */
function asObject(v: unknown): Obj {
  if (typeof v !== 'object' || v === null) fallback();
  return v as Obj;
}

function writeString(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  w.tag(field, LEN);
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- protobufjs's fromObject applies String() too
  w.string(typeof v === 'string' ? v : String(v));
}

function writeBool(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  w.tag(field, VARINT);
  w.bool(Boolean(v));
}

function writeUint32(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  w.tag(field, VARINT);
  w.uint32((v as number) >>> 0);
}

function writeInt32(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  w.tag(field, VARINT);
  w.int32((v as number) | 0);
}

function writeDouble(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  w.tag(field, I64);
  w.double(Number(v));
}

const DECIMAL = /^-?\d+$/;

/** int64: a safe integer or a decimal string (wrapped to 64 bits, as long.js does); anything else is left to proto-loader. */
function writeInt64(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  let bits: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    if (v >= 0 && v <= 0xffffffff) {
      w.tag(field, VARINT);
      w.uint32(v);
      return;
    }
    bits = BigInt(v);
  } else if (typeof v === 'string' && DECIMAL.test(v)) bits = BigInt(v);
  else fallback();
  w.tag(field, VARINT);
  w.uint64(BigInt.asUintN(64, bits));
}

/** `bytes`: a Uint8Array (Buffer); a string would be base64 to protobufjs, left to it. */
function writeBytes(w: Writer, field: number, v: unknown): void {
  if (v == null) return;
  if (!(v instanceof Uint8Array)) fallback();
  w.tag(field, LEN);
  w.bytes(v);
}

/** An enum: a declared name or an int32; an undeclared name or another type drops the field (fromObject's switch does). */
function writeEnum(w: Writer, field: number, v: unknown, values: EnumNumbers): void {
  let n: number | undefined;
  if (typeof v === 'string') n = values.get(v);
  else if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) fallback();
    n = v;
  }
  if (n === undefined) return;
  w.tag(field, VARINT);
  w.int32(n);
}

/** Nesting depth of the message being written; protobufjs refuses more than MAX_DEPTH, so deeper input goes to it. */
let depth = 0;

function writeMessage(w: Writer, field: number, v: unknown, write: (w: Writer, o: Obj) => void): void {
  if (v == null) return;
  const o = asObject(v);
  if (++depth > MAX_DEPTH) fallback();
  w.tag(field, LEN);
  w.fork();
  write(w, o);
  w.ldelim();
  depth--;
}

function writeRepeated(w: Writer, field: number, v: unknown, write: (w: Writer, o: Obj) => void): void {
  if (!v) return;
  if (!Array.isArray(v)) fallback();
  for (const item of v as unknown[]) writeMessage(w, field, asObject(item), write);
}

function writeMap(w: Writer, field: number, v: unknown, write: (w: Writer, o: Obj) => void): void {
  if (!v) return;
  const map = asObject(v);
  for (const key of Object.keys(map)) {
    const value = asObject(map[key]);
    w.tag(field, LEN);
    w.fork();
    w.tag(1, LEN);
    w.string(key);
    writeMessage(w, 2, value, write);
    w.ldelim();
  }
}

function writeStructBody(w: Writer, o: Obj): void {
  writeMap(w, 1, o.fields, writeValueBody);
}

function writeValueBody(w: Writer, o: Obj): void {
  writeEnum(w, 1, o.nullValue, NULL_VALUE);
  writeDouble(w, 2, o.numberValue);
  writeString(w, 3, o.stringValue);
  writeBool(w, 4, o.boolValue);
  writeMessage(w, 5, o.structValue, writeStructBody);
  writeMessage(w, 6, o.listValue, writeListValueBody);
}

function writeListValueBody(w: Writer, o: Obj): void {
  writeRepeated(w, 1, o.values, writeValueBody);
}

function writeAnyBody(w: Writer, o: Obj): void {
  writeString(w, 1, o.type_url);
  writeBytes(w, 2, o.value);
}

function writeHeaderValueBody(w: Writer, o: Obj): void {
  writeString(w, 1, o.key);
  writeString(w, 2, o.value);
  writeBytes(w, 3, o.raw_value);
}

// google.protobuf.BoolValue { bool value = 1; }
function writeBoolValueBody(w: Writer, o: Obj): void {
  writeBool(w, 1, o.value);
}

function writeHeaderValueOptionBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.header, writeHeaderValueBody);
  writeMessage(w, 2, o.append, writeBoolValueBody);
  writeEnum(w, 3, o.append_action, HEADER_APPEND_ACTION);
  writeBool(w, 4, o.keep_empty_value);
}

function writeHeaderMapBody(w: Writer, o: Obj): void {
  writeRepeated(w, 1, o.headers, writeHeaderValueBody);
}

/** HeaderMutation { repeated HeaderValueOption set_headers = 1; repeated string remove_headers = 2; } */
function writeHeaderMutationBody(w: Writer, o: Obj): void {
  writeRepeated(w, 1, o.set_headers, writeHeaderValueOptionBody);
  const remove = o.remove_headers;
  if (!remove) return;
  if (!Array.isArray(remove)) fallback();
  for (const name of remove as unknown[]) {
    w.tag(2, LEN);
    // String(), as protobufjs's fromObject does.
    w.string(typeof name === 'string' ? name : String(name));
  }
}

/** StreamedBodyResponse and HttpBody share their layout: bytes body = 1, then four bools. */
function writeBodyChunkBody(w: Writer, o: Obj): void {
  writeBytes(w, 1, o.body);
  writeBool(w, 2, o.end_of_stream);
  writeBool(w, 3, o.end_of_stream_without_message);
  writeBool(w, 4, o.grpc_message_compressed);
  writeBool(w, 5, o.drain_complete);
}

/** BodyMutation { oneof mutation { bytes body = 1; bool clear_body = 2; StreamedBodyResponse streamed_response = 3; } } */
function writeBodyMutationBody(w: Writer, o: Obj): void {
  writeBytes(w, 1, o.body);
  writeBool(w, 2, o.clear_body);
  writeMessage(w, 3, o.streamed_response, writeBodyChunkBody);
}

/** CommonResponse { status = 1; header_mutation = 2; body_mutation = 3; HeaderMap trailers = 4; bool clear_route_cache = 5; } */
function writeCommonResponseBody(w: Writer, o: Obj): void {
  writeEnum(w, 1, o.status, RESPONSE_STATUS);
  writeMessage(w, 2, o.header_mutation, writeHeaderMutationBody);
  writeMessage(w, 3, o.body_mutation, writeBodyMutationBody);
  writeMessage(w, 4, o.trailers, writeHeaderMapBody);
  writeBool(w, 5, o.clear_route_cache);
}

/** HeadersResponse and BodyResponse: { CommonResponse response = 1; } */
function writeCommonHolderBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.response, writeCommonResponseBody);
}

/** TrailersResponse { HeaderMutation header_mutation = 1; } */
function writeTrailersResponseBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.header_mutation, writeHeaderMutationBody);
}

/** envoy.type.v3.HttpStatus { StatusCode code = 1; } */
function writeHttpStatusBody(w: Writer, o: Obj): void {
  writeEnum(w, 1, o.code, STATUS_CODE);
}

/** GrpcStatus { uint32 status = 1; } */
function writeGrpcStatusBody(w: Writer, o: Obj): void {
  writeUint32(w, 1, o.status);
}

/** ImmediateResponse { HttpStatus status = 1; HeaderMutation headers = 2; bytes body = 3; GrpcStatus grpc_status = 4; string details = 5; } */
function writeImmediateResponseBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.status, writeHttpStatusBody);
  writeMessage(w, 2, o.headers, writeHeaderMutationBody);
  writeBytes(w, 3, o.body);
  writeMessage(w, 4, o.grpc_status, writeGrpcStatusBody);
  writeString(w, 5, o.details);
}

/** HttpHeaders { HeaderMap headers = 1; map<string, Struct> attributes = 2; bool end_of_stream = 3; } */
function writeHttpHeadersBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.headers, writeHeaderMapBody);
  writeMap(w, 2, o.attributes, writeStructBody);
  writeBool(w, 3, o.end_of_stream);
}

/** StreamedImmediateResponse { oneof response { HttpHeaders headers_response = 1; StreamedBodyResponse body_response = 2; HeaderMap trailers_response = 3; } } */
function writeStreamedImmediateBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.headers_response, writeHttpHeadersBody);
  writeMessage(w, 2, o.body_response, writeBodyChunkBody);
  writeMessage(w, 3, o.trailers_response, writeHeaderMapBody);
}

/** ProcessingMode: header modes at 1, 2, 5, 6; body modes at 3, 4. */
function writeProcessingModeBody(w: Writer, o: Obj): void {
  writeEnum(w, 1, o.request_header_mode, HEADER_SEND_MODE);
  writeEnum(w, 2, o.response_header_mode, HEADER_SEND_MODE);
  writeEnum(w, 3, o.request_body_mode, BODY_SEND_MODE);
  writeEnum(w, 4, o.response_body_mode, BODY_SEND_MODE);
  writeEnum(w, 5, o.request_trailer_mode, HEADER_SEND_MODE);
  writeEnum(w, 6, o.response_trailer_mode, HEADER_SEND_MODE);
}

/** google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; } */
function writeDurationBody(w: Writer, o: Obj): void {
  writeInt64(w, 1, o.seconds);
  writeInt32(w, 2, o.nanos);
}

/** ServerWindowUpdate { int64 window_increment_downstream_to_sidestream = 1; int64 window_increment_upstream_to_sidestream = 2; } */
function writeServerWindowUpdateBody(w: Writer, o: Obj): void {
  writeInt64(w, 1, o.window_increment_downstream_to_sidestream);
  writeInt64(w, 2, o.window_increment_upstream_to_sidestream);
}

function writeProcessingResponseBody(w: Writer, o: Obj): void {
  writeMessage(w, 1, o.request_headers, writeCommonHolderBody);
  writeMessage(w, 2, o.response_headers, writeCommonHolderBody);
  writeMessage(w, 3, o.request_body, writeCommonHolderBody);
  writeMessage(w, 4, o.response_body, writeCommonHolderBody);
  writeMessage(w, 5, o.request_trailers, writeTrailersResponseBody);
  writeMessage(w, 6, o.response_trailers, writeTrailersResponseBody);
  writeMessage(w, 7, o.immediate_response, writeImmediateResponseBody);
  writeMessage(w, 8, o.dynamic_metadata, writeStructBody);
  writeMessage(w, 9, o.mode_override, writeProcessingModeBody);
  writeMessage(w, 10, o.override_message_timeout, writeDurationBody);
  writeMessage(w, 11, o.streamed_immediate_response, writeStreamedImmediateBody);
  writeBool(w, 12, o.request_drain);
  writeMap(w, 13, o.typed_dynamic_metadata, writeAnyBody);
  writeMessage(w, 14, o.server_window_update, writeServerWindowUpdateBody);
  writeBool(w, 15, o.request_drain_requests);
  writeBool(w, 16, o.request_drain_responses);
}

/**
 * proto-loader's serializer for the same message: the fallback (loaded on its first use, deferred.ts), and the
 * reference the tests compare with.
 */
const protoLoaderProcess = deferredMethod<ProcessingRequest, ProcessingResponseInput>((p) => p.ExternalProcessorService.Process);

const writer = new Writer();

/**
 * Encodes one ProcessingResponse: the same bytes as proto-loader's serializer
 * (which it defers to for input it does not handle itself, see above).
 */
export function encodeProcessingResponse(msg: ProcessingResponseInput): Buffer {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return protoLoaderProcess().responseSerialize(msg);
  writer.reset();
  depth = 0;
  try {
    writeProcessingResponseBody(writer, msg as Obj);
  } catch (err) {
    writer.reset();
    if (err !== FALLBACK) throw err;
    return protoLoaderProcess().responseSerialize(msg);
  }
  return writer.finish();
}

/** The Process method's codec for the sidecar's transport (Http2GrpcServer.bidi). */
export const PROCESS_CODEC: MethodCodec<ProcessingRequest, ProcessingResponseInput> = Object.freeze({
  path: METHOD_PATHS.process,
  requestDeserialize: decodeProcessingRequest,
  responseSerialize: encodeProcessingResponse,
});
