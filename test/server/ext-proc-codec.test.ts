/**
 * The hand-written ext_proc codec (src/server/proto/wire/) against
 * proto-loader, which it replaces on the sidecar's Process method:
 *
 * - decoding: random ProcessingRequests serialized by proto-loader decode to
 *   exactly what proto-loader's deserializer gives (deepStrictEqual: same
 *   keys, Buffers, enum names, int64 strings, Struct shapes), also with
 *   unknown fields of every wire type at the top level and inside the phase
 *   message, and for every prefix of a message (both agree, or both throw);
 * - encoding: random ProcessingResponseInputs encode to the same bytes as
 *   proto-loader's serializer (and so decode to the same object), including
 *   input it hands back to proto-loader;
 * - malformed input throws, and the transport fails the call with INTERNAL;
 * - Envoy-shaped messages (raw_value headers, the connection attributes)
 *   decode to the same objects and the same ConnectionInfo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import fc from 'fast-check';
import { connectionInfoFromAttributes } from '../../src/server/extproc/attributes.ts';
import { toProcessingResponse } from '../../src/server/extproc/wire.ts';
import type { ProcessingRequest, ProcessingRequestInput, ProcessingResponse, ProcessingResponseInput } from '../../src/server/proto/ext-proc.ts';
import { ExternalProcessorService, packageDefinition } from '../../src/server/proto/load.ts';
import {
  BODY_SEND_MODE_NAMES,
  HEADER_APPEND_ACTION,
  HEADER_SEND_MODE_NAMES,
  NULL_VALUE_NAMES,
  RESPONSE_STATUS,
  STATUS_CODE,
} from '../../src/server/proto/wire/enums.ts';
import { decodeProcessingRequest, encodeProcessingResponse, PROCESS_CODEC } from '../../src/server/proto/wire/ext-proc-codec.ts';
import { WireError } from '../../src/server/proto/wire/reader.ts';
import { frameMessage } from '../../src/server/transport/framing.ts';
import { Http2GrpcServer } from '../../src/server/transport/http2-server.ts';

// proto-loader's own codecs for the method, both directions.
const REF = ExternalProcessorService.Process as unknown as {
  requestSerialize: (m: ProcessingRequestInput) => Buffer;
  requestDeserialize: (b: Buffer) => ProcessingRequest;
  responseSerialize: (m: ProcessingResponseInput) => Buffer;
  responseDeserialize: (b: Buffer) => ProcessingResponse;
};

function messageType(fullName: string): MessageTypeDefinition<object, object> {
  const def = packageDefinition[fullName] as MessageTypeDefinition<object, object> | undefined;
  assert.ok(def !== undefined && 'serialize' in def, fullName);
  return def;
}

/** proto-loader's verdict on some bytes: the object, or that it throws. */
function reference(bytes: Buffer): { ok: true; value: ProcessingRequest } | { ok: false } {
  try {
    return { ok: true, value: REF.requestDeserialize(bytes) };
  } catch {
    return { ok: false };
  }
}

// ---------------------------------------------------------------- wire helpers for hand-built input

function varint(n: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const tag = (field: number, wt: number): Buffer => varint((field << 3) | wt);
const ld = (field: number, body: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(body.length), body]);

// ---------------------------------------------------------------- arbitraries

// Strings as Envoy sends them: valid Unicode (proto3 strings must be valid UTF-8).
const str = fc.string({ unit: 'binary', maxLength: 24 });
const shortStr = fc.string({ maxLength: 12 });
const buf = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const int64String = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map(String);
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });

function enumOf(names: readonly (string | undefined)[]): fc.Arbitrary<string | number> {
  return fc.oneof(fc.constantFrom(...names.filter((n): n is string => n !== undefined)), int32);
}

/** google.protobuf.Struct / Value / ListValue in proto-loader's input form, a few levels deep. */
const { struct } = fc.letrec<{ struct: object; value: object; list: object }>((tie) => ({
  struct: fc.record({ fields: fc.dictionary(shortStr, tie('value'), { maxKeys: 4 }) }, { requiredKeys: [] }),
  list: fc.record({ values: fc.array(tie('value'), { maxLength: 3 }) }, { requiredKeys: [] }),
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ nullValue: enumOf(NULL_VALUE_NAMES) }),
    fc.record({ numberValue: fc.double() }),
    fc.record({ stringValue: str }),
    fc.record({ boolValue: fc.boolean() }),
    fc.record({ structValue: tie('struct') }),
    fc.record({ listValue: tie('list') }),
    // No kind at all, and (hand-written input only) two kinds at once.
    fc.constant({}),
    fc.record({ stringValue: str, boolValue: fc.boolean() }),
  ),
}));

const attributes = fc.dictionary(shortStr, struct, { maxKeys: 3 });
const any = fc.record({ type_url: str, value: buf }, { requiredKeys: [] });

const headerValue = fc.record({ key: str, value: str, raw_value: buf }, { requiredKeys: [] });
const headerMap = fc.record({ headers: fc.array(headerValue, { maxLength: 8 }) }, { requiredKeys: [] });

const httpHeaders = fc.record({ headers: headerMap, attributes, end_of_stream: fc.boolean() }, { requiredKeys: [] });
const httpBody = fc.record(
  { body: buf, end_of_stream: fc.boolean(), end_of_stream_without_message: fc.boolean(), grpc_message_compressed: fc.boolean(), drain_complete: fc.boolean() },
  { requiredKeys: [] },
);
const httpTrailers = fc.record({ trailers: headerMap }, { requiredKeys: [] });

const PHASE_TYPES = {
  request_headers: 'HttpHeaders',
  response_headers: 'HttpHeaders',
  request_body: 'HttpBody',
  response_body: 'HttpBody',
  request_trailers: 'HttpTrailers',
  response_trailers: 'HttpTrailers',
} as const;
const PHASE_FIELDS = { request_headers: 2, response_headers: 3, request_body: 4, response_body: 5, request_trailers: 6, response_trailers: 7 } as const;
type Phase = keyof typeof PHASE_TYPES;
const phaseBody = { HttpHeaders: httpHeaders, HttpBody: httpBody, HttpTrailers: httpTrailers } as const;

const phase: fc.Arbitrary<{ name: Phase; body: object } | null> = fc.oneof(
  fc.constant(null),
  fc.constantFrom(...(Object.keys(PHASE_TYPES) as Phase[])).chain((name) => phaseBody[PHASE_TYPES[name]].map((body: object) => ({ name, body }))),
);

const requestFields = fc.record(
  {
    metadata_context: fc.record({ filter_metadata: attributes, typed_filter_metadata: fc.dictionary(shortStr, any, { maxKeys: 2 }) }, { requiredKeys: [] }),
    attributes,
    observability_mode: fc.boolean(),
    protocol_config: fc.record(
      {
        request_body_mode: enumOf(BODY_SEND_MODE_NAMES),
        response_body_mode: enumOf(BODY_SEND_MODE_NAMES),
        send_body_without_waiting_for_header_response: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    flow_control_init: fc.record(
      {
        initial_window_downstream_to_sidestream: int64String,
        initial_window_sidestream_to_upstream: int64String,
        initial_window_upstream_to_sidestream: int64String,
        initial_window_sidestream_to_downstream: int64String,
      },
      { requiredKeys: [] },
    ),
    client_window_update: fc.record(
      { window_increment_sidestream_to_upstream: int64String, window_increment_sidestream_to_downstream: int64String },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

const processingRequest = fc.tuple(requestFields, phase).map(([fields, p]) => ({ fields, phase: p }));

function requestInput(r: { fields: object; phase: { name: Phase; body: object } | null }): ProcessingRequestInput {
  return r.phase === null ? { ...r.fields } : { ...r.fields, [r.phase.name]: r.phase.body };
}

/** One well-formed unknown field (any wire type, groups nested), numbered where ProcessingRequest/its parts declare nothing. */
const { unknownField } = fc.letrec<{ unknownField: Buffer }>((tie) => ({
  unknownField: fc.oneof(
    { depthSize: 'small' },
    fc.tuple(fc.integer({ min: 14, max: 2 ** 29 - 1 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map(([f, v]) => Buffer.concat([tag(f, 0), varint(v)])),
    fc.tuple(fc.integer({ min: 14, max: 2 ** 29 - 1 }), fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([f, b]) => Buffer.concat([tag(f, 1), b])),
    fc.tuple(fc.integer({ min: 14, max: 2 ** 29 - 1 }), fc.uint8Array({ maxLength: 20 })).map(([f, b]) => ld(f, Buffer.from(b))),
    fc.tuple(fc.integer({ min: 14, max: 2 ** 29 - 1 }), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([f, b]) => Buffer.concat([tag(f, 5), b])),
    fc
      .tuple(fc.integer({ min: 14, max: 2 ** 29 - 1 }), fc.array(tie('unknownField'), { maxLength: 3 }))
      .map(([f, inner]) => Buffer.concat([tag(f, 3), ...inner, tag(f, 4)])),
  ),
}));

// ---------------------------------------------------------------- decoding

test('property: proto-loader-encoded ProcessingRequests decode to exactly what proto-loader decodes', () => {
  fc.assert(
    fc.property(processingRequest, (r) => {
      const bytes = REF.requestSerialize(requestInput(r));
      assert.deepStrictEqual(decodeProcessingRequest(bytes), REF.requestDeserialize(bytes));
    }),
    { numRuns: 2000 },
  );
});

test('property: unknown fields of every wire type are skipped, at the top level and inside the phase message', () => {
  fc.assert(
    fc.property(processingRequest, fc.array(unknownField, { maxLength: 4 }), fc.array(unknownField, { maxLength: 4 }), (r, top, inner) => {
      const rest = REF.requestSerialize(r.fields as ProcessingRequestInput);
      let phaseBytes: Buffer = Buffer.alloc(0);
      if (r.phase !== null) {
        const sub = messageType(`envoy.service.ext_proc.v3.${PHASE_TYPES[r.phase.name]}`).serialize(r.phase.body);
        phaseBytes = ld(PHASE_FIELDS[r.phase.name], Buffer.concat([...inner, sub, ...inner]));
      }
      // Field 1 is reserved (async_mode): unknown as well.
      const bytes = Buffer.concat([...top, phaseBytes, rest, Buffer.from([0x08, 0x01]), ...top]);
      assert.deepStrictEqual(decodeProcessingRequest(bytes), REF.requestDeserialize(bytes));
    }),
    { numRuns: 1000 },
  );
});

test('property: any prefix of a message decodes as proto-loader decodes it, or both throw', () => {
  fc.assert(
    fc.property(processingRequest, fc.nat(), (r, cut) => {
      const full = REF.requestSerialize(requestInput(r));
      const bytes = full.subarray(0, full.length === 0 ? 0 : cut % full.length);
      const want = reference(bytes);
      if (want.ok) assert.deepStrictEqual(decodeProcessingRequest(bytes), want.value);
      else assert.throws(() => decodeProcessingRequest(bytes), WireError);
    }),
    { numRuns: 2000 },
  );
});

test('property: random bytes never crash the decoder with anything but a WireError, and where both decoders accept them they agree', () => {
  // Where they differ: this decoder refuses field 0, known fields with the wrong wire type and mismatched
  // groups (proto-loader accepts them), and reads over-long (padded) varints as the spec says, where
  // protobufjs skips a fixed 5 bytes after the fifth and so misreads or refuses them.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (a) => {
      const bytes = Buffer.from(a);
      let mine: ProcessingRequest | null = null;
      try {
        mine = decodeProcessingRequest(bytes);
      } catch (err) {
        assert.ok(err instanceof WireError, String(err));
      }
      const want = reference(bytes);
      if (mine !== null && want.ok) assert.deepStrictEqual(mine, want.value);
    }),
    { numRuns: 5000 },
  );
});

test('a padded varint (6-byte tag) is read as the spec says', () => {
  const bytes = Buffer.from([0xba, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]);
  assert.deepStrictEqual(decodeProcessingRequest(bytes), { response_trailers: {}, request: 'response_trailers' });
});

test('malformed input throws a WireError', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['varint of 11 bytes', Buffer.from([0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['truncated varint', Buffer.from([0x50, 0xff])],
    ['truncated tag', Buffer.from([0xff])],
    ['length past the end', Buffer.from([0x12, 0x05, 0x18, 0x01])],
    ['length past the end of the enclosing message', Buffer.from([0x12, 0x02, 0x0a, 0x05, 0x0a, 0x01, 0x61, 0x00, 0x00])],
    ['wire type 6', Buffer.from([0x76])],
    ['wire type 7', Buffer.from([0x77])],
    ['stray end-group', Buffer.from([0x7c])],
    ['unterminated group', Buffer.from([0x7b, 0x08, 0x01])],
    ['end-group of another field', Buffer.concat([tag(20, 3), tag(21, 4)])],
    ['field number 0', Buffer.from([0x00, 0x01])],
    ['known field with the wrong wire type', Buffer.from([0x10, 0x01])],
    ['truncated fixed64', Buffer.concat([tag(20, 1), Buffer.alloc(7)])],
    ['truncated fixed32', Buffer.concat([tag(20, 5), Buffer.alloc(3)])],
    ['map entry without a value', ld(9, ld(1, Buffer.from('a')))],
    ['Struct nested 200 deep', ld(9, Buffer.concat([ld(1, Buffer.from('k')), ld(2, nestedStruct(200))]))],
  ];
  for (const [name, bytes] of cases) {
    await t.test(name, () => assert.throws(() => decodeProcessingRequest(bytes), WireError));
  }
  // Where proto-loader throws too, the shared ones: same verdict.
  for (const name of [
    'truncated varint',
    'length past the end',
    'wire type 6',
    'wire type 7',
    'stray end-group',
    'map entry without a value',
    'Struct nested 200 deep',
  ]) {
    const bytes = cases.find(([n]) => n === name)![1];
    assert.throws(() => REF.requestDeserialize(bytes), Error, name);
  }
});

/** A Struct whose one field holds a Struct … `depth` levels deep. */
function nestedStruct(depth: number): Buffer {
  let s: Buffer = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) s = ld(1, Buffer.concat([ld(1, Buffer.from('k')), ld(2, ld(5, s))]));
  return s;
}

test('proto-loader quirks kept: a repeated embedded message replaces, two oneof members both stay, __proto__ is a plain key, negative enums', () => {
  const cases = [
    // request_headers twice: the second (empty) replaces the first
    Buffer.from([0x12, 0x02, 0x18, 0x01, 0x12, 0x00]),
    // request_body then request_headers: both kept, the discriminator names the higher field (request_body)
    Buffer.from([0x22, 0x00, 0x12, 0x00]),
    // attributes["__proto__"]
    ld(9, Buffer.concat([ld(1, Buffer.from('__proto__')), ld(2, Buffer.alloc(0))])),
    // protocol_config.request_body_mode = -1 (10-byte varint) and 99
    ld(11, Buffer.concat([tag(1, 0), varint(-1), tag(2, 0), varint(99)])),
    // a map entry with no key
    ld(9, ld(2, Buffer.alloc(0))),
    // a Value with two kinds
    ld(
      9,
      Buffer.concat([
        ld(1, Buffer.from('a')),
        ld(2, ld(1, Buffer.concat([ld(1, Buffer.from('v')), ld(2, Buffer.concat([ld(3, Buffer.from('s')), tag(4, 0), varint(1)]))]))),
      ]),
    ),
  ];
  for (const bytes of cases) assert.deepStrictEqual(decodeProcessingRequest(bytes), REF.requestDeserialize(bytes), bytes.toString('hex'));
  const proto = decodeProcessingRequest(cases[2]!);
  assert.ok(Object.hasOwn(proto.attributes!, '__proto__'));
  assert.equal(Object.getPrototypeOf(proto.attributes), Object.prototype);
});

test('interned header names: names that share a table slot, and repeats, decode to their own text', () => {
  // Same length and the same bytes where the slot is computed from: only the full comparison tells them apart.
  const names = ['x-abcXe', 'x-abcYe', 'x-abcXe', 'x-ab\u00e9e', '', 'a', 'x-abcYe', 'k'.repeat(32), 'k'.repeat(33)];
  for (let round = 0; round < 3; round++) {
    for (const name of names) {
      const bytes = REF.requestSerialize({
        request_headers: { headers: { headers: [{ key: name, raw_value: Buffer.from('v') }] } },
        attributes: { [name]: {} },
      });
      const got = decodeProcessingRequest(bytes);
      assert.deepStrictEqual(got, REF.requestDeserialize(bytes));
      assert.equal(got.request === 'request_headers' && got.request_headers.headers?.headers?.[0]?.key, name);
    }
  }
});

test('an Envoy-shaped request_headers message (raw_value headers, connection attributes) decodes as proto-loader decodes it', () => {
  const raw = (key: string, value: string) => ({ key, raw_value: Buffer.from(value, 'latin1') });
  const input: ProcessingRequestInput = {
    request_headers: {
      headers: {
        headers: [
          raw(':authority', 'gateway.example:8443'),
          raw(':path', '/v1/chat/completions'),
          raw(':method', 'POST'),
          raw(':scheme', 'https'),
          raw('content-type', 'application/json'),
          raw('authorization', 'Bearer igw_AbCdEfGh_0123456789abcdefghijklmnopqrstuv'),
          raw('x-latin1', 'caf\u00e9'),
          raw('x-empty', ''),
        ],
      },
      end_of_stream: false,
    },
    attributes: {
      'envoy.filters.http.ext_proc': {
        fields: {
          'connection.mtls': { boolValue: true },
          'connection.peer_certificate_valid': { boolValue: true },
          'connection.subject_peer_certificate': { stringValue: 'CN=batch-client,O=Acme' },
          'connection.sha256_peer_certificate_digest': { stringValue: 'ab'.repeat(32) },
          'connection.uri_san_peer_certificate': { stringValue: 'spiffe://acme/batch' },
          'source.address': { stringValue: '10.0.0.7:51234' },
        },
      },
    },
    metadata_context: { filter_metadata: { 'envoy.lb': { fields: { canary: { boolValue: false } } } } },
    protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'STREAMED' },
  };
  const bytes = REF.requestSerialize(input);
  const mine = decodeProcessingRequest(bytes);
  const theirs = REF.requestDeserialize(bytes);
  assert.deepStrictEqual(mine, theirs);
  assert.equal(mine.request, 'request_headers');
  assert.deepStrictEqual(connectionInfoFromAttributes(mine.attributes), connectionInfoFromAttributes(theirs.attributes));
  // Bytes are views into the message, as with protobufjs's Buffer reader.
  assert.equal(mine.request === 'request_headers' && mine.request_headers.headers?.headers?.[0]?.raw_value?.buffer, bytes.buffer);
});

// ---------------------------------------------------------------- encoding

const bytesIn = fc.oneof({ weight: 4, arbitrary: buf }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) });
const enumIn = (names: Iterable<string>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...names) },
    { weight: 2, arbitrary: int32 },
    // An undeclared name (dropped by both) and input proto-loader coerces.
    { weight: 1, arbitrary: fc.constantFrom('NOT_DECLARED', 1.5, 2 ** 40, -(2 ** 40), null, true) },
  );

const headerValueIn = fc.record({ key: str, value: str, raw_value: bytesIn }, { requiredKeys: [] });
const headerValueOptionIn = fc.record(
  {
    header: headerValueIn,
    append: fc.record({ value: fc.boolean() }, { requiredKeys: [] }),
    append_action: enumIn(HEADER_APPEND_ACTION.keys()),
    keep_empty_value: fc.boolean(),
  },
  { requiredKeys: [] },
);
const headerMutationIn = fc.record(
  { set_headers: fc.array(headerValueOptionIn, { maxLength: 12 }), remove_headers: fc.array(str, { maxLength: 4 }) },
  { requiredKeys: [] },
);
const headerMapIn = fc.record({ headers: fc.array(headerValueIn, { maxLength: 6 }) }, { requiredKeys: [] });
const streamedBodyIn = fc.record(
  {
    body: bytesIn,
    end_of_stream: fc.boolean(),
    end_of_stream_without_message: fc.boolean(),
    grpc_message_compressed: fc.boolean(),
    drain_complete: fc.boolean(),
  },
  { requiredKeys: [] },
);
const bodyMutationIn = fc.oneof(
  fc.constant({}),
  fc.record({ body: fc.oneof(bytesIn, fc.uint8Array({ minLength: 200, maxLength: 300 })) }),
  fc.record({ clear_body: fc.boolean() }),
  fc.record({ streamed_response: streamedBodyIn }),
);
const commonResponseIn = fc.record(
  {
    status: enumIn(RESPONSE_STATUS.keys()),
    header_mutation: headerMutationIn,
    body_mutation: bodyMutationIn,
    trailers: headerMapIn,
    clear_route_cache: fc.boolean(),
  },
  { requiredKeys: [] },
);
const commonHolderIn = fc.record({ response: commonResponseIn }, { requiredKeys: [] });
const immediateIn = fc.record(
  {
    status: fc.record({ code: fc.oneof(enumIn(STATUS_CODE.keys()), fc.integer({ min: 100, max: 599 })) }, { requiredKeys: [] }),
    headers: headerMutationIn,
    body: bytesIn,
    grpc_status: fc.record({ status: fc.oneof(fc.nat(), fc.integer()) }, { requiredKeys: [] }),
    details: str,
  },
  { requiredKeys: [] },
);
const streamedImmediateIn = fc.oneof(
  fc.constant({}),
  fc.record({ headers_response: httpHeaders }),
  fc.record({ body_response: streamedBodyIn }),
  fc.record({ trailers_response: headerMapIn }),
);
const headerModes = enumIn(HEADER_SEND_MODE_NAMES as string[]);
const bodyModes = enumIn(BODY_SEND_MODE_NAMES as string[]);
const int64In = fc.oneof(int64String, fc.maxSafeInteger(), fc.integer(), fc.constantFrom(0, -1, 2 ** 32, 2 ** 32 - 1));

const responseKind = fc.oneof(
  fc.constant({}),
  fc.record({ request_headers: commonHolderIn }),
  fc.record({ response_headers: commonHolderIn }),
  fc.record({ request_body: commonHolderIn }),
  fc.record({ response_body: commonHolderIn }),
  fc.record({ request_trailers: fc.record({ header_mutation: headerMutationIn }, { requiredKeys: [] }) }),
  fc.record({ response_trailers: fc.record({ header_mutation: headerMutationIn }, { requiredKeys: [] }) }),
  fc.record({ immediate_response: immediateIn }),
  fc.record({ streamed_immediate_response: streamedImmediateIn }),
);
const responseFields = fc.record(
  {
    dynamic_metadata: struct,
    mode_override: fc.record(
      {
        request_header_mode: headerModes,
        response_header_mode: headerModes,
        request_body_mode: bodyModes,
        response_body_mode: bodyModes,
        request_trailer_mode: headerModes,
        response_trailer_mode: headerModes,
      },
      { requiredKeys: [] },
    ),
    override_message_timeout: fc.record({ seconds: int64In, nanos: fc.integer() }, { requiredKeys: [] }),
    request_drain: fc.boolean(),
    typed_dynamic_metadata: fc.dictionary(shortStr, any, { maxKeys: 2 }),
    server_window_update: fc.record(
      { window_increment_downstream_to_sidestream: int64In, window_increment_upstream_to_sidestream: int64In },
      { requiredKeys: [] },
    ),
    request_drain_requests: fc.boolean(),
    request_drain_responses: fc.boolean(),
  },
  { requiredKeys: [] },
);
// Mostly what the sidecar sends (one kind, few extras); sometimes everything at once.
const processingResponse = fc.oneof(
  { weight: 3, arbitrary: responseKind },
  { weight: 2, arbitrary: fc.tuple(responseKind, responseFields).map(([k, f]) => ({ ...f, ...k })) },
) as fc.Arbitrary<ProcessingResponseInput>;

function sameAsProtoLoader(input: ProcessingResponseInput): void {
  const theirs = REF.responseSerialize(input);
  const mine = encodeProcessingResponse(input);
  assert.deepStrictEqual(REF.responseDeserialize(mine), REF.responseDeserialize(theirs));
  assert.equal(mine.toString('hex'), theirs.toString('hex'));
}

test('property: random ProcessingResponses encode to the bytes (and so the object) proto-loader produces', () => {
  fc.assert(fc.property(processingResponse, sameAsProtoLoader), { numRuns: 3000 });
});

test('what the sidecar sends (wire.ts) encodes as proto-loader encodes it, including large header values and bodies', () => {
  const big = Buffer.alloc(70_000, 'x');
  const inputs: ProcessingResponseInput[] = [
    toProcessingResponse('request_headers', { kind: 'continue' } as never),
    toProcessingResponse('request_headers', {
      kind: 'continue',
      headers: { set: Array.from({ length: 10 }, (_, i) => [`x-gateway-${i}`, `value-${i}-\u00e9`]), remove: ['authorization', 'x-api-key'] },
      body: Buffer.alloc(200, 'b'),
      clearRouteCache: true,
      streamResponseBody: true,
    } as never),
    toProcessingResponse('response_body', {
      kind: 'respond',
      status: 429,
      headers: [['retry-after', '3']],
      body: Buffer.from('{"error":"slow down"}'),
      details: 'quota',
    } as never),
    { request_body: { response: { status: 'CONTINUE_AND_REPLACE', body_mutation: { body: big } } } },
    { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-long', raw_value: Buffer.alloc(20_000, 'v') } }] } } } },
    { request_body: { response: { body_mutation: { clear_body: true } } } },
    { response_trailers: {} },
    { immediate_response: { status: { code: 'TooManyRequests' }, grpc_status: { status: 8 }, details: 'd\u00e9tails \u{1f600}'.repeat(20) } },
    { override_message_timeout: { seconds: 5, nanos: 500_000_000 }, mode_override: { response_body_mode: 'STREAMED', request_trailer_mode: 'SKIP' } },
  ];
  for (const input of inputs) sameAsProtoLoader(input);
});

test('input left to proto-loader encodes (or throws) exactly as proto-loader does', () => {
  const inputs: unknown[] = [
    { request_body: { response: { body_mutation: { body: 'aGVsbG8=' } } } }, // base64 string for bytes
    { override_message_timeout: { seconds: 2 ** 60 } }, // unsafe integer
    { override_message_timeout: { seconds: 'abc' } }, // not a decimal string
    { override_message_timeout: { seconds: 1.5 } },
    { request_headers: { response: { status: 1.5 } } }, // enum number outside int32 integers
    { dynamic_metadata: { fields: { a: { listValue: { values: [{ structValue: { fields: {} } }] } } } } },
  ];
  for (const input of inputs) sameAsProtoLoader(input as ProcessingResponseInput);
  const refused: unknown[] = [
    { request_headers: 5 },
    { request_headers: { response: { header_mutation: { set_headers: {} } } } },
    { request_headers: { response: { header_mutation: { set_headers: [null] } } } },
    { typed_dynamic_metadata: { k: null } },
    { request_body: { response: { body_mutation: { body: 'not base64!' } } } },
    [],
  ];
  for (const input of refused) {
    const theirs = (() => {
      try {
        REF.responseSerialize(input as ProcessingResponseInput);
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    })();
    assert.notEqual(theirs, null, JSON.stringify(input));
    assert.throws(() => encodeProcessingResponse(input as ProcessingResponseInput), { message: theirs! });
  }
  // The scratch buffer is not left in a bad state by a fallback.
  sameAsProtoLoader({ request_headers: { response: { status: 'CONTINUE' } } });
});

test('deliberate difference: a lone surrogate in a string is written as U+FFFD (valid UTF-8), not as protobufjs writes it', () => {
  const mine = encodeProcessingResponse({ immediate_response: { details: 'a\ud800b' } });
  const decoded = REF.responseDeserialize(mine);
  assert.equal(decoded.response === 'immediate_response' && decoded.immediate_response.details, 'a\ufffdb');
});

// ---------------------------------------------------------------- enum tables

test('the codec enum tables match the enums proto-loader loaded from protos/', () => {
  type EnumDescriptor = { name: string; value: Array<{ name: string; number: number }> };
  const topLevel = (name: string): EnumDescriptor['value'] => (packageDefinition[name] as unknown as { type: EnumDescriptor }).type.value;
  const nested = (message: string, name: string): EnumDescriptor['value'] => {
    const type = (packageDefinition[message] as unknown as { type: { enumType: EnumDescriptor[] } }).type;
    return type.enumType.find((e) => e.name === name)!.value;
  };
  const asMap = (values: EnumDescriptor['value']) => new Map(values.map((v) => [v.name, v.number]));
  const fromNames = (names: readonly (string | undefined)[]) => new Map(names.flatMap((n, i) => (n === undefined ? [] : [[n, i] as const])));
  assert.deepStrictEqual(STATUS_CODE, asMap(topLevel('envoy.type.v3.StatusCode')));
  assert.deepStrictEqual(fromNames(NULL_VALUE_NAMES), asMap(topLevel('google.protobuf.NullValue')));
  const mode = 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode';
  assert.deepStrictEqual(fromNames(HEADER_SEND_MODE_NAMES), asMap(nested(mode, 'HeaderSendMode')));
  assert.deepStrictEqual(fromNames(BODY_SEND_MODE_NAMES), asMap(nested(mode, 'BodySendMode')));
  assert.deepStrictEqual(RESPONSE_STATUS, asMap(nested('envoy.service.ext_proc.v3.CommonResponse', 'ResponseStatus')));
  assert.deepStrictEqual(HEADER_APPEND_ACTION, asMap(nested('envoy.config.core.v3.HeaderValueOption', 'HeaderAppendAction')));
});

// ---------------------------------------------------------------- through the transport

test('through the sidecar transport: a message the codec refuses fails the call with INTERNAL, a good one is answered', async () => {
  const server = new Http2GrpcServer({ maxReceiveBytes: 1 << 20 });
  server.bidi(PROCESS_CODEC, (call) => {
    call.on('data', (msg) => call.write({ [msg.request ?? 'request_trailers']: {} }));
    call.on('end', () => call.end());
  });
  const socket = join(mkdtempSync(join(tmpdir(), 'igw-codec-')), 'grpc.sock');
  await server.listen({ path: socket });
  const session = http2.connect('http://localhost', { createConnection: () => connect(socket) });
  const call = (message: Buffer): Promise<{ status: string | undefined; details: string | undefined; data: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': PROCESS_CODEC.path, 'content-type': 'application/grpc', te: 'trailers' });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      const done = (h: http2.IncomingHttpHeaders): void =>
        resolve({ status: h['grpc-status'] as string | undefined, details: h['grpc-message'] as string | undefined, data: Buffer.concat(chunks) });
      req.on('response', (h) => (head = h));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('trailers', (t: http2.IncomingHttpHeaders) => done(t));
      req.on('end', () => done(head));
      req.on('error', reject);
      req.end(frameMessage(message));
    });
  try {
    const bad = await call(Buffer.from([0x12, 0x05, 0x18]));
    assert.equal(bad.status, '13');
    assert.match(decodeURIComponent(bad.details ?? ''), /^cannot parse request message: length 5 at offset 2 runs past the end/);
    const good = await call(REF.requestSerialize({ request_body: { body: Buffer.from('hi'), end_of_stream: true } }));
    assert.equal(good.status, '0');
    assert.deepStrictEqual(REF.responseDeserialize(good.data.subarray(5)), { request_body: {}, response: 'request_body' });
  } finally {
    session.close();
    await server.shutdown();
  }
});
