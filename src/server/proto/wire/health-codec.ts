/**
 * grpc.health.v1 Check and Watch codecs for the sidecar's transport, without
 * proto-loader: a request is one optional string, an answer one enum. The
 * results are what proto-loader gives and writes under LOADER_OPTIONS
 * (load.ts): an absent `service` is left out, the status is written by name.
 * Anything else — malformed request bytes, an answer that is not a known
 * status — goes to proto-loader's own codec (deferred.ts), so the outcome is
 * always exactly proto-loader's. test/server/health-codec.test.ts compares
 * the two.
 */
import type { HealthCheckRequest, HealthCheckResponseInput } from '../types.ts';
import { deferredMethod, METHOD_PATHS } from '../deferred.ts';
import type { MethodCodec } from '../../transport/http2-server.ts';
import { Reader, WireError, WireType } from './reader.ts';

/** grpc.health.v1.HealthCheckResponse.ServingStatus, by name. */
const SERVING_STATUS: ReadonlyMap<string, number> = new Map([
  ['UNKNOWN', 0],
  ['SERVING', 1],
  ['NOT_SERVING', 2],
  ['SERVICE_UNKNOWN', 3],
]);

/** Each status's encoded answer (field 1, varint), built once: answers are shared, never written to. */
const ENCODED: ReadonlyMap<string, Buffer> = new Map([...SERVING_STATUS].map(([name, n]) => [name, Buffer.from([0x08, n])]));

const checkMethod = deferredMethod<HealthCheckRequest, HealthCheckResponseInput>((p) => p.HealthService.Check);

export function decodeHealthCheckRequest(bytes: Buffer): HealthCheckRequest {
  const r = new Reader(bytes);
  const out: HealthCheckRequest = {};
  try {
    while (r.more()) {
      const tag = r.tag();
      if (tag >>> 3 === 1) {
        r.expect(tag, WireType.LEN);
        out.service = r.string();
      } else r.skip(tag);
    }
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    // Malformed: proto-loader decides, as it did before this codec.
    return checkMethod().requestDeserialize(bytes);
  }
  return out;
}

export function encodeHealthCheckResponse(msg: HealthCheckResponseInput): Buffer {
  if (typeof msg === 'object' && msg !== null && !Array.isArray(msg)) {
    const keys = Object.keys(msg);
    if (keys.length === 0) return Buffer.alloc(0);
    if (keys.length === 1 && keys[0] === 'status' && typeof msg.status === 'string') {
      const encoded = ENCODED.get(msg.status);
      if (encoded !== undefined) return Buffer.from(encoded);
    }
  }
  return checkMethod().responseSerialize(msg);
}

/** Health.Check: one request, one answer. */
export const HEALTH_CHECK_CODEC: MethodCodec<HealthCheckRequest, HealthCheckResponseInput> = Object.freeze({
  path: METHOD_PATHS.healthCheck,
  requestDeserialize: decodeHealthCheckRequest,
  responseSerialize: encodeHealthCheckResponse,
});

/** Health.Watch: the same messages (a request, then a stream of answers). */
export const HEALTH_WATCH_CODEC: MethodCodec<HealthCheckRequest, HealthCheckResponseInput> = Object.freeze({
  path: METHOD_PATHS.healthWatch,
  requestDeserialize: decodeHealthCheckRequest,
  responseSerialize: encodeHealthCheckResponse,
});
