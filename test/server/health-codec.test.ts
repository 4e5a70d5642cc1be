/**
 * The grpc.health.v1 codecs (src/server/proto/wire/health-codec.ts) against
 * proto-loader's, which they replace on the sidecar: the same objects from
 * the same bytes (random requests, unknown fields, every prefix of a
 * message), the same bytes for every answer, proto-loader's verdict on
 * malformed input; and the deferred codecs' paths (src/server/proto/deferred.ts)
 * are proto-loader's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { METHOD_PATHS } from '../../src/server/proto/deferred.ts';
import type { HealthCheckRequest, HealthCheckResponseInput } from '../../src/server/proto/health.ts';
import { AuthorizationService, ExternalProcessorService, HealthService } from '../../src/server/proto/load.ts';
import { decodeHealthCheckRequest, encodeHealthCheckResponse, HEALTH_CHECK_CODEC, HEALTH_WATCH_CODEC } from '../../src/server/proto/wire/health-codec.ts';
import { PROCESS_CODEC } from '../../src/server/proto/wire/ext-proc-codec.ts';

const REF = HealthService.Check as unknown as {
  requestSerialize: (m: HealthCheckRequest) => Buffer;
  requestDeserialize: (b: Buffer) => HealthCheckRequest;
  responseSerialize: (m: HealthCheckResponseInput) => Buffer;
};

/** proto-loader's verdict on some bytes: the object, or that it throws. */
function reference(bytes: Buffer): { ok: true; value: HealthCheckRequest } | { ok: false } {
  try {
    return { ok: true, value: REF.requestDeserialize(bytes) };
  } catch {
    return { ok: false };
  }
}

function ours(bytes: Buffer): { ok: true; value: HealthCheckRequest } | { ok: false } {
  try {
    return { ok: true, value: decodeHealthCheckRequest(bytes) };
  } catch {
    return { ok: false };
  }
}

test('paths: the hand-written and deferred codecs serve the paths proto-loader names', () => {
  assert.equal(METHOD_PATHS.process, ExternalProcessorService.Process.path);
  assert.equal(METHOD_PATHS.check, AuthorizationService.Check.path);
  assert.equal(METHOD_PATHS.healthCheck, HealthService.Check.path);
  assert.equal(METHOD_PATHS.healthWatch, HealthService.Watch.path);
  assert.equal(PROCESS_CODEC.path, ExternalProcessorService.Process.path);
  assert.equal(HEALTH_CHECK_CODEC.path, HealthService.Check.path);
  assert.equal(HEALTH_WATCH_CODEC.path, HealthService.Watch.path);
});

test('requests: random HealthCheckRequests, with unknown fields around, decode as proto-loader decodes them', () => {
  const unknown = fc.oneof(
    fc.record({ field: fc.integer({ min: 2, max: 1000 }), value: fc.nat() }).map(({ field, value }) => Buffer.concat([varint(field * 8), varint(value)])),
    fc
      .record({ field: fc.integer({ min: 2, max: 1000 }), bytes: fc.uint8Array({ maxLength: 20 }) })
      .map(({ field, bytes }) => Buffer.concat([varint(field * 8 + 2), varint(bytes.length), Buffer.from(bytes)])),
  );
  fc.assert(
    fc.property(fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: undefined }), fc.array(unknown, { maxLength: 3 }), (service, extra) => {
      const bytes = Buffer.concat([...extra, REF.requestSerialize(service === undefined ? {} : { service })]);
      assert.deepStrictEqual(decodeHealthCheckRequest(bytes), REF.requestDeserialize(bytes));
    }),
    { numRuns: 300 },
  );
});

test("requests: every prefix of a message, and malformed bytes, get proto-loader's verdict", () => {
  const whole = Buffer.concat([
    varint(7 * 8 + 2),
    varint(3),
    Buffer.from('abc'),
    REF.requestSerialize({ service: 'envoy.service.ext_proc.v3.ExternalProcessor' }),
  ]);
  for (let n = 0; n <= whole.length; n++) assert.deepStrictEqual(ours(whole.subarray(0, n)), reference(whole.subarray(0, n)), `prefix of ${n} bytes`);
  // The service field as a varint (wrong wire type), field number 0, wire type 7: whatever proto-loader makes of them.
  for (const bytes of [Buffer.from([0x08, 0x01]), Buffer.from([0x00, 0x01]), Buffer.from([0x0f]), Buffer.from([0x0a, 0x05, 0x61])]) {
    assert.deepStrictEqual(ours(bytes), reference(bytes), bytes.toString('hex'));
  }
});

test("answers: every status, an empty answer and odd input encode to proto-loader's bytes", () => {
  const inputs: unknown[] = [
    { status: 'SERVING' },
    { status: 'NOT_SERVING' },
    { status: 'SERVICE_UNKNOWN' },
    { status: 'UNKNOWN' },
    {},
    { status: 2 },
    { status: 'NO_SUCH_STATUS' },
    { status: 'SERVING', extra: true },
    { status: undefined },
  ];
  for (const input of inputs) {
    const msg = input as HealthCheckResponseInput;
    assert.deepStrictEqual(encodeHealthCheckResponse(msg), REF.responseSerialize(msg), JSON.stringify(input));
  }
  // An answer is a fresh buffer each time: the transport may keep it.
  assert.notEqual(encodeHealthCheckResponse({ status: 'SERVING' }), encodeHealthCheckResponse({ status: 'SERVING' }));
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
