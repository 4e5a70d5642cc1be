// Proves that our own .proto declarations (protos/) are wire-compatible with
// independent upstream definitions: the Envoy / xDS / googleapis protos
// shipped in @grpc/grpc-js-xds/deps and the health proto shipped with
// grpc-health-check.
//
// 1. Schema: both protobufjs reflections are walked. Every field upstream
//    declares must exist in ours with the same number, type, label, map key
//    type and oneof; every enum value upstream declares must have the same
//    number. Anything we declare that the bundled upstream copy lacks (it is
//    older than Envoy 1.40) must be listed, with its number and type, in
//    NEWER_THAN_BUNDLED below, so no field number of ours can change
//    unnoticed.
// 2. Wire: for every message we declare, fully populated samples (every
//    field set; one sample per oneof alternative) are encoded with ours and
//    decoded with upstream and vice versa, and the decoded objects are
//    compared; the encodings of the common subset must be byte-identical.
// 3. Services: method paths, streaming flags and request/response types.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import {
  AuthorizationService,
  ExternalProcessorService,
  HealthService,
  LOADER_OPTIONS,
  PROTOS_DIR,
  PROTO_FILES,
  SERVICE_NAMES,
  packageDefinition,
} from '../../src/server/proto/load.ts';

// ---------------------------------------------------------------------------
// Loading both schemas
// ---------------------------------------------------------------------------

const NODE_MODULES = path.resolve(import.meta.dirname, '../../node_modules');
const XDS_DEPS = path.join(NODE_MODULES, '@grpc/grpc-js-xds/deps');
const UPSTREAM_INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(XDS_DEPS, d));
const UPSTREAM_HEALTH_PROTO = path.join(NODE_MODULES, 'grpc-health-check/proto/health/v1/health.proto');

function loadRoot(files: readonly string[], includeDirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    throw new Error(`${target} not found in ${includeDirs.join(', ')}`);
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

const ours = loadRoot(PROTO_FILES, [PROTOS_DIR]);
const upstream = loadRoot(
  ['envoy/service/ext_proc/v3/external_processor.proto', 'envoy/service/auth/v3/external_auth.proto', UPSTREAM_HEALTH_PROTO],
  UPSTREAM_INCLUDE_DIRS,
);

/** The toObject options proto-loader derives from LOADER_OPTIONS. */
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

// ---------------------------------------------------------------------------
// Reflection helpers
// ---------------------------------------------------------------------------

/** Well-known types come from protobufjs itself on both sides. */
function isBundledWellKnown(fullName: string): boolean {
  return fullName.startsWith('.google.protobuf.');
}

function collect(root: protobuf.NamespaceBase): { types: protobuf.Type[]; enums: protobuf.Enum[] } {
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) {
        if (!isBundledWellKnown(child.fullName)) types.push(child);
      } else if (child instanceof protobuf.Enum) {
        if (!isBundledWellKnown(child.fullName)) enums.push(child);
      }
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) visit(child);
    }
  };
  visit(root);
  return { types, enums };
}

const ourSchema = collect(ours);

function lookupType(root: protobuf.Root, fullName: string): protobuf.Type | null {
  const found = root.lookup(fullName);
  return found instanceof protobuf.Type ? found : null;
}

function lookupEnum(root: protobuf.Root, fullName: string): protobuf.Enum | null {
  const found = root.lookup(fullName);
  return found instanceof protobuf.Enum ? found : null;
}

/** A comparable description of a field's wire-relevant properties. */
interface FieldSpec {
  id: number;
  type: string;
  label: 'single' | 'repeated' | 'map';
  keyType?: string;
  oneof?: string;
  packed?: boolean;
}

function fieldSpec(field: protobuf.Field): FieldSpec {
  const resolved = field.resolvedType;
  const type = resolved ? resolved.fullName : field.type;
  const spec: FieldSpec = {
    id: field.id,
    type,
    label: field instanceof protobuf.MapField ? 'map' : field.repeated ? 'repeated' : 'single',
  };
  if (field instanceof protobuf.MapField) spec.keyType = field.keyType;
  if (field.partOf) spec.oneof = field.partOf.name;
  if (field.repeated && !(field instanceof protobuf.MapField)) spec.packed = field.packed;
  return spec;
}

// ---------------------------------------------------------------------------
// What the bundled upstream copy does not have yet
// ---------------------------------------------------------------------------

type Extra = Omit<FieldSpec, 'packed'>;

/**
 * Fields (and whole messages) we declare from the Envoy 1.40-era API that the
 * bundled @grpc/grpc-js-xds copy predates. Numbers and types are pinned here
 * so they are still checked against a second, independent statement.
 */
const NEWER_THAN_BUNDLED: Record<string, Record<string, Extra>> = {
  '.envoy.service.ext_proc.v3.ProtocolConfiguration': {
    request_body_mode: {
      id: 1,
      type: '.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
      label: 'single',
    },
    response_body_mode: {
      id: 2,
      type: '.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
      label: 'single',
    },
    send_body_without_waiting_for_header_response: { id: 3, type: 'bool', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.ProcessingRequest': {
    protocol_config: {
      id: 11,
      type: '.envoy.service.ext_proc.v3.ProtocolConfiguration',
      label: 'single',
    },
    flow_control_init: {
      id: 12,
      type: '.envoy.service.ext_proc.v3.ProcessingRequest.FlowControlInit',
      label: 'single',
    },
    client_window_update: {
      id: 13,
      type: '.envoy.service.ext_proc.v3.ProcessingRequest.ClientWindowUpdate',
      label: 'single',
    },
  },
  '.envoy.service.ext_proc.v3.ProcessingRequest.FlowControlInit': {
    initial_window_downstream_to_sidestream: { id: 1, type: 'int64', label: 'single' },
    initial_window_sidestream_to_upstream: { id: 2, type: 'int64', label: 'single' },
    initial_window_upstream_to_sidestream: { id: 3, type: 'int64', label: 'single' },
    initial_window_sidestream_to_downstream: { id: 4, type: 'int64', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.ProcessingRequest.ClientWindowUpdate': {
    window_increment_sidestream_to_upstream: { id: 1, type: 'int64', label: 'single' },
    window_increment_sidestream_to_downstream: { id: 2, type: 'int64', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.ProcessingResponse': {
    streamed_immediate_response: {
      id: 11,
      type: '.envoy.service.ext_proc.v3.StreamedImmediateResponse',
      label: 'single',
      oneof: 'response',
    },
    request_drain: { id: 12, type: 'bool', label: 'single' },
    typed_dynamic_metadata: {
      id: 13,
      type: '.google.protobuf.Any',
      label: 'map',
      keyType: 'string',
    },
    server_window_update: {
      id: 14,
      type: '.envoy.service.ext_proc.v3.ProcessingResponse.ServerWindowUpdate',
      label: 'single',
    },
    request_drain_requests: { id: 15, type: 'bool', label: 'single' },
    request_drain_responses: { id: 16, type: 'bool', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.ProcessingResponse.ServerWindowUpdate': {
    window_increment_downstream_to_sidestream: { id: 1, type: 'int64', label: 'single' },
    window_increment_upstream_to_sidestream: { id: 2, type: 'int64', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.HttpBody': {
    end_of_stream_without_message: { id: 3, type: 'bool', label: 'single' },
    grpc_message_compressed: { id: 4, type: 'bool', label: 'single' },
    drain_complete: { id: 5, type: 'bool', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.StreamedImmediateResponse': {
    headers_response: {
      id: 1,
      type: '.envoy.service.ext_proc.v3.HttpHeaders',
      label: 'single',
      oneof: 'response',
    },
    body_response: {
      id: 2,
      type: '.envoy.service.ext_proc.v3.StreamedBodyResponse',
      label: 'single',
      oneof: 'response',
    },
    trailers_response: {
      id: 3,
      type: '.envoy.config.core.v3.HeaderMap',
      label: 'single',
      oneof: 'response',
    },
  },
  '.envoy.service.ext_proc.v3.StreamedBodyResponse': {
    body: { id: 1, type: 'bytes', label: 'single' },
    end_of_stream: { id: 2, type: 'bool', label: 'single' },
    end_of_stream_without_message: { id: 3, type: 'bool', label: 'single' },
    grpc_message_compressed: { id: 4, type: 'bool', label: 'single' },
    drain_complete: { id: 5, type: 'bool', label: 'single' },
  },
  '.envoy.service.ext_proc.v3.BodyMutation': {
    streamed_response: {
      id: 3,
      type: '.envoy.service.ext_proc.v3.StreamedBodyResponse',
      label: 'single',
      oneof: 'mutation',
    },
  },
  '.envoy.config.core.v3.SocketAddress': {
    network_namespace_filepath: { id: 7, type: 'string', label: 'single' },
  },
  '.envoy.service.auth.v3.CheckResponse': {
    error_response: {
      id: 5,
      type: '.envoy.service.auth.v3.DeniedHttpResponse',
      label: 'single',
      oneof: 'http_response',
    },
  },
};

/** Enum values we declare that the bundled copy lacks. */
const NEWER_ENUM_VALUES: Record<string, Record<string, number>> = {
  '.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode': {
    FULL_DUPLEX_STREAMED: 4,
    GRPC: 5,
  },
};

// ---------------------------------------------------------------------------
// 1. Schema comparison
// ---------------------------------------------------------------------------

function reservedNumbers(type: protobuf.Type): Set<number> {
  const out = new Set<number>();
  for (const r of type.reserved ?? []) {
    if (Array.isArray(r)) {
      const [from, to] = r;
      if (from !== undefined && to !== undefined) {
        for (let n = from; n <= Math.min(to, from + 1000); n++) out.add(n);
      }
    }
  }
  return out;
}

void describe('schema: our declarations match upstream field by field', () => {
  void test('we declare every message and enum the services need', () => {
    const names = new Set(ourSchema.types.map((t) => t.fullName));
    const required = [
      '.envoy.service.ext_proc.v3.ProcessingRequest',
      '.envoy.service.ext_proc.v3.ProcessingResponse',
      '.envoy.service.ext_proc.v3.HttpHeaders',
      '.envoy.service.ext_proc.v3.HttpBody',
      '.envoy.service.ext_proc.v3.HttpTrailers',
      '.envoy.service.ext_proc.v3.HeadersResponse',
      '.envoy.service.ext_proc.v3.BodyResponse',
      '.envoy.service.ext_proc.v3.TrailersResponse',
      '.envoy.service.ext_proc.v3.CommonResponse',
      '.envoy.service.ext_proc.v3.ImmediateResponse',
      '.envoy.service.ext_proc.v3.GrpcStatus',
      '.envoy.service.ext_proc.v3.HeaderMutation',
      '.envoy.service.ext_proc.v3.BodyMutation',
      '.envoy.service.ext_proc.v3.StreamedBodyResponse',
      '.envoy.service.ext_proc.v3.StreamedImmediateResponse',
      '.envoy.service.ext_proc.v3.ProtocolConfiguration',
      '.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode',
      '.envoy.config.core.v3.HeaderValue',
      '.envoy.config.core.v3.HeaderValueOption',
      '.envoy.config.core.v3.HeaderMap',
      '.envoy.config.core.v3.Metadata',
      '.envoy.config.core.v3.QueryParameter',
      '.envoy.config.core.v3.Address',
      '.envoy.config.core.v3.SocketAddress',
      '.envoy.config.core.v3.Pipe',
      '.envoy.config.core.v3.EnvoyInternalAddress',
      '.envoy.type.v3.HttpStatus',
      '.envoy.service.auth.v3.CheckRequest',
      '.envoy.service.auth.v3.CheckResponse',
      '.envoy.service.auth.v3.OkHttpResponse',
      '.envoy.service.auth.v3.DeniedHttpResponse',
      '.envoy.service.auth.v3.AttributeContext',
      '.envoy.service.auth.v3.AttributeContext.Peer',
      '.envoy.service.auth.v3.AttributeContext.Request',
      '.envoy.service.auth.v3.AttributeContext.HttpRequest',
      '.envoy.service.auth.v3.AttributeContext.TLSSession',
      '.google.rpc.Status',
      '.grpc.health.v1.HealthCheckRequest',
      '.grpc.health.v1.HealthCheckResponse',
    ];
    // All missing ones at once, not the first.
    assert.deepEqual(
      required.filter((r) => !names.has(r)),
      [],
      'messages we must declare',
    );
  });

  for (const ourType of ourSchema.types) {
    void test(`message ${ourType.fullName}`, () => {
      const upType = lookupType(upstream, ourType.fullName);
      const extras = NEWER_THAN_BUNDLED[ourType.fullName] ?? {};

      // Numbers are unique within the message and clear of reserved ones.
      const ids = ourType.fieldsArray.map((f) => f.id);
      assert.equal(new Set(ids).size, ids.length, 'duplicate field number');
      const reserved = reservedNumbers(ourType);
      for (const id of ids) assert.ok(!reserved.has(id), `field number ${id} is reserved`);

      if (upType === null) {
        // Entirely newer than the bundled copy: every field must be pinned.
        assert.deepEqual(
          Object.fromEntries(ourType.fieldsArray.map((f) => [f.name, fieldSpec(f)])),
          Object.fromEntries(Object.entries(extras).map(([name, spec]) => [name, withPacked(spec)])),
          `${ourType.fullName} is absent upstream and must match NEWER_THAN_BUNDLED exactly`,
        );
        assert.ok(Object.keys(extras).length > 0, `${ourType.fullName} does not exist upstream and is not listed as newer`);
        return;
      }

      // Every upstream field exists in ours, identically.
      for (const upField of upType.fieldsArray) {
        const ourField = ourType.fields[upField.name];
        assert.ok(ourField, `missing field ${upField.name} (= ${upField.id})`);
        assert.deepEqual(fieldSpec(ourField), fieldSpec(upField), `field ${upField.name}`);
      }
      // Everything else we declare is a pinned, newer field.
      const ourExtras = ourType.fieldsArray.filter((f) => !upType.fields[f.name]);
      assert.deepEqual(
        Object.fromEntries(ourExtras.map((f) => [f.name, fieldSpec(f)])),
        Object.fromEntries(Object.entries(extras).map(([name, spec]) => [name, withPacked(spec)])),
        'fields beyond the bundled upstream copy must be exactly NEWER_THAN_BUNDLED',
      );
      // Newer fields must not collide with anything upstream uses or reserves.
      const upIds = new Set(upType.fieldsArray.map((f) => f.id));
      const upReserved = reservedNumbers(upType);
      for (const f of ourExtras) {
        assert.ok(!upIds.has(f.id), `${f.name} reuses upstream number ${f.id}`);
        assert.ok(!upReserved.has(f.id), `${f.name} uses upstream-reserved number ${f.id}`);
      }
      // What upstream reserves, we reserve too.
      for (const n of upReserved) assert.ok(reserved.has(n), `number ${n} not reserved`);
      for (const r of upType.reserved ?? []) {
        if (typeof r === 'string') assert.ok(ourType.isReservedName(r), `name ${r} not reserved`);
      }
      // Same oneofs with the same members (membership also checked per field).
      for (const upOneof of upType.oneofsArray) {
        const ourOneof = ourType.oneofs?.[upOneof.name];
        assert.ok(ourOneof, `missing oneof ${upOneof.name}`);
        for (const member of upOneof.oneof) assert.ok(ourOneof.oneof.includes(member));
      }
    });
  }

  for (const ourEnum of ourSchema.enums) {
    void test(`enum ${ourEnum.fullName}`, () => {
      const upEnum = lookupEnum(upstream, ourEnum.fullName);
      assert.ok(upEnum, `enum ${ourEnum.fullName} missing upstream`);
      for (const [name, number] of Object.entries(upEnum.values)) {
        assert.equal(ourEnum.values[name], number, `${name} must be ${number}`);
      }
      const extra = Object.fromEntries(Object.entries(ourEnum.values).filter(([name]) => upEnum.values[name] === undefined));
      assert.deepEqual(extra, NEWER_ENUM_VALUES[ourEnum.fullName] ?? {});
      const numbers = Object.values(ourEnum.values);
      assert.equal(new Set(numbers).size, numbers.length, 'duplicate enum number');
    });
  }

  void test('every NEWER_THAN_BUNDLED entry refers to something we declare', () => {
    for (const [typeName, fields] of Object.entries(NEWER_THAN_BUNDLED)) {
      const t = lookupType(ours, typeName);
      assert.ok(t, `${typeName} not declared`);
      for (const name of Object.keys(fields)) assert.ok(t.fields[name], `${typeName}.${name}`);
    }
  });
});

function withPacked(spec: Extra): FieldSpec {
  return spec.label === 'repeated' ? { ...spec, packed: true } : { ...spec };
}

// ---------------------------------------------------------------------------
// 2. Sample generation
// ---------------------------------------------------------------------------

type Sample = Record<string, unknown>;

const MAX_DEPTH = 6;
const BYTES = (): Buffer => Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]);

function scalarSample(type: string, name: string): unknown {
  switch (type) {
    case 'double':
      return 1.25;
    case 'float':
      return 0.5;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return -42;
    case 'uint32':
    case 'fixed32':
      return 4242;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return '-9007199254740993';
    case 'uint64':
    case 'fixed64':
      return '18446744073709551615';
    case 'bool':
      return true;
    case 'string':
      return `${name}-värde`;
    case 'bytes':
      return BYTES();
    default:
      throw new Error(`no sample for scalar type ${type}`);
  }
}

function enumSample(e: protobuf.Enum): string {
  // The last declared value: non-zero whenever the enum has one.
  const names = Object.keys(e.values);
  const last = names[names.length - 1];
  if (last === undefined) throw new Error(`empty enum ${e.fullName}`);
  return last;
}

/** Rotates the alternative picked for nested oneofs, for broader coverage. */
let rotation = 0;

function valueSample(field: protobuf.Field, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    return depth >= MAX_DEPTH ? undefined : messageSample(resolved, depth + 1);
  }
  if (resolved instanceof protobuf.Enum) return enumSample(resolved);
  return scalarSample(field.type, field.name);
}

function mapKey(keyType: string, i: number): string {
  switch (keyType) {
    case 'string':
      return `key-${i}`;
    case 'bool':
      return i === 0 ? 'true' : 'false';
    default:
      return String(i + 1);
  }
}

function fieldSample(field: protobuf.Field, depth: number): unknown {
  if (field instanceof protobuf.MapField) {
    const out: Sample = {};
    for (let i = 0; i < 2; i++) {
      const v = valueSample(field, depth);
      if (v === undefined) return undefined;
      out[mapKey(field.keyType, i)] = v;
    }
    return out;
  }
  if (field.repeated) {
    const items = [valueSample(field, depth), valueSample(field, depth)];
    return items.some((v) => v === undefined) ? undefined : items;
  }
  return valueSample(field, depth);
}

/**
 * A sample with every field set. `choose` pins the alternative of one oneof
 * (by oneof name); other oneofs get a rotating alternative.
 */
function messageSample(type: protobuf.Type, depth: number, choose?: [string, string]): Sample {
  const out: Sample = {};
  for (const field of type.fieldsArray) {
    if (field.partOf) continue;
    const v = fieldSample(field, depth);
    if (v !== undefined) out[field.name] = v;
  }
  for (const oneof of type.oneofsArray) {
    let order = oneof.oneof.slice();
    if (choose && choose[0] === oneof.name) {
      order = [choose[1]];
    } else {
      const start = rotation++ % order.length;
      order = [...order.slice(start), ...order.slice(0, start)];
    }
    for (const name of order) {
      const field = type.fields[name];
      if (!field) throw new Error(`bad oneof member ${name}`);
      const v = fieldSample(field, depth);
      if (v !== undefined) {
        out[name] = v;
        out[oneof.name] = name;
        break;
      }
    }
  }
  return out;
}

/** One sample per alternative of every oneof (or a single sample). */
function samplesFor(type: protobuf.Type): { label: string; sample: Sample }[] {
  rotation = 0;
  const out: { label: string; sample: Sample }[] = [];
  if (type.oneofsArray.length === 0) {
    out.push({ label: 'all fields', sample: messageSample(type, 0) });
  }
  for (const oneof of type.oneofsArray) {
    for (const member of oneof.oneof) {
      const sample = messageSample(type, 0, [oneof.name, member]);
      assert.equal(sample[oneof.name], member, `could not build ${oneof.name}=${member}`);
      out.push({ label: `${oneof.name}=${member}`, sample });
    }
  }
  // Every plain field is set at the top level of every sample.
  for (const { sample } of out) {
    for (const field of type.fieldsArray) {
      if (!field.partOf) assert.ok(field.name in sample, `${type.fullName}.${field.name} unset`);
    }
  }
  return out;
}

/**
 * Restricts a sample (built from our type) to the fields `upType` knows. With
 * `upstreamView`, enum names upstream lacks become their numbers, which is
 * how upstream decodes them.
 */
function project(sample: Sample, ourType: protobuf.Type, upType: protobuf.Type, upstreamView: boolean): Sample {
  const out: Sample = {};
  const oneofNames = new Set(ourType.oneofsArray.map((o) => o.name));
  for (const [key, value] of Object.entries(sample)) {
    if (oneofNames.has(key)) {
      if (typeof value === 'string' && upType.fields[value]) out[key] = value;
      continue;
    }
    const ourField = ourType.fields[key];
    const upField = upType.fields[key];
    if (!ourField) throw new Error(`sample has unknown key ${key}`);
    if (!upField) continue;
    const ourNested = ourField.resolvedType;
    const upNested = upField.resolvedType;
    if (ourNested instanceof protobuf.Enum && upNested instanceof protobuf.Enum && upstreamView) {
      // A value name upstream does not know decodes there as its number.
      const one = (v: unknown): unknown => (typeof v === 'string' && upNested.values[v] === undefined ? ourNested.values[v] : v);
      out[key] = ourField.repeated ? (value as unknown[]).map(one) : one(value);
    } else if (ourNested instanceof protobuf.Type && upNested instanceof protobuf.Type) {
      const one = (v: unknown): Sample => project(v as Sample, ourNested, upNested, upstreamView);
      if (ourField instanceof protobuf.MapField) {
        out[key] = Object.fromEntries(Object.entries(value as Sample).map(([k, v]) => [k, one(v)]));
      } else if (ourField.repeated) {
        out[key] = (value as unknown[]).map(one);
      } else {
        out[key] = one(value);
      }
    } else {
      out[key] = value;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// 2. Round trips
// ---------------------------------------------------------------------------

interface Codec {
  serialize(value: Sample): Buffer;
  deserialize(bytes: Buffer): unknown;
}

/**
 * Our production codec: the proto-loader package definition entry. Message
 * types nested inside other messages get no entry of their own there; for
 * those the same conversion is done on our protobufjs reflection.
 */
function ourCodec(type: protobuf.Type): Codec {
  const def = packageDefinition[type.fullName.replace(/^\./, '')];
  if (def && 'serialize' in def) return def as MessageTypeDefinition<Sample, unknown>;
  assert.ok(type.parent instanceof protobuf.Type, `no loader definition for ${type.fullName}`);
  return {
    serialize: (value) => Buffer.from(type.encode(type.fromObject(value)).finish()),
    deserialize: (bytes) => type.toObject(type.decode(bytes), TO_OBJECT),
  };
}

function upEncode(type: protobuf.Type, obj: Sample): Buffer {
  return Buffer.from(type.encode(type.fromObject(obj)).finish());
}

function upDecode(type: protobuf.Type, bytes: Uint8Array): Sample {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

void describe('wire: fully populated samples survive both directions', () => {
  void test('the loader really uses the documented options', () => {
    assert.equal(LOADER_OPTIONS.keepCase, true);
    assert.equal(LOADER_OPTIONS.longs, String);
    assert.equal(LOADER_OPTIONS.enums, String);
    assert.equal(LOADER_OPTIONS.defaults, false);
    assert.equal(LOADER_OPTIONS.oneofs, true);
    assert.deepEqual(LOADER_OPTIONS.includeDirs, [PROTOS_DIR]);
  });

  for (const ourType of ourSchema.types) {
    const upType = lookupType(upstream, ourType.fullName);
    for (const { label, sample } of samplesFor(ourType)) {
      void test(`${ourType.fullName} [${label}]`, () => {
        const codec = ourCodec(ourType);
        const ourBytes = codec.serialize(sample);

        // Ours -> ours: nothing lost, including fields the bundled copy lacks.
        assert.deepEqual(codec.deserialize(ourBytes), sample);

        if (upType === null) return; // not in the bundled copy; pinned above
        const common = project(sample, ourType, upType, true);

        // Ours -> upstream: upstream sees exactly the common part.
        assert.deepEqual(upDecode(upType, ourBytes), common);

        // Upstream -> ours (we name enum values upstream only numbers).
        const upBytes = upEncode(upType, common);
        assert.deepEqual(codec.deserialize(upBytes), project(sample, ourType, upType, false));

        // Same object, same bytes.
        assert.ok(codec.serialize(common).equals(upBytes), 'encodings of the common subset differ');
      });
    }
  }
});

// ---------------------------------------------------------------------------
// 3. Services
// ---------------------------------------------------------------------------

void describe('services: paths and signatures match upstream', () => {
  const exported = {
    [SERVICE_NAMES.ExternalProcessor]: ExternalProcessorService,
    [SERVICE_NAMES.Authorization]: AuthorizationService,
    [SERVICE_NAMES.Health]: HealthService,
  } as const;

  void test('well-known method paths', () => {
    assert.equal(ExternalProcessorService.Process.path, '/envoy.service.ext_proc.v3.ExternalProcessor/Process');
    assert.equal(ExternalProcessorService.Process.requestStream, true);
    assert.equal(ExternalProcessorService.Process.responseStream, true);
    assert.equal(AuthorizationService.Check.path, '/envoy.service.auth.v3.Authorization/Check');
    assert.equal(AuthorizationService.Check.requestStream, false);
    assert.equal(AuthorizationService.Check.responseStream, false);
    assert.equal(HealthService.Check.path, '/grpc.health.v1.Health/Check');
    assert.equal(HealthService.Watch.path, '/grpc.health.v1.Health/Watch');
    assert.equal(HealthService.Watch.requestStream, false);
    assert.equal(HealthService.Watch.responseStream, true);
  });

  for (const [serviceName, definition] of Object.entries(exported)) {
    void test(serviceName, () => {
      const ourService = ours.lookupService(serviceName);
      const upService = upstream.lookupService(serviceName);
      assert.deepEqual(Object.keys(ourService.methods).sort(), Object.keys(upService.methods).sort(), 'method sets differ');
      for (const [name, upMethod] of Object.entries(upService.methods)) {
        const ourMethod = ourService.methods[name];
        assert.ok(ourMethod);
        upMethod.resolve();
        ourMethod.resolve();
        assert.equal(ourMethod.resolvedRequestType?.fullName, upMethod.resolvedRequestType?.fullName);
        assert.equal(ourMethod.resolvedResponseType?.fullName, upMethod.resolvedResponseType?.fullName);
        assert.equal(Boolean(ourMethod.requestStream), Boolean(upMethod.requestStream));
        assert.equal(Boolean(ourMethod.responseStream), Boolean(upMethod.responseStream));

        const methodDef = (definition as Record<string, { path: string; requestStream: boolean; responseStream: boolean }>)[name];
        assert.ok(methodDef, `exported definition lacks ${name}`);
        assert.equal(methodDef.path, `/${serviceName}/${name}`);
        assert.equal(methodDef.requestStream, Boolean(upMethod.requestStream));
        assert.equal(methodDef.responseStream, Boolean(upMethod.responseStream));
      }
    });
  }
});
