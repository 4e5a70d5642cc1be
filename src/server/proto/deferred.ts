/**
 * proto-loader's codecs, loaded the first time one is used rather than at
 * start-up. The sidecar's own codecs (wire/) handle the ext_proc messages and
 * health checks; proto-loader, protobufjs and the parsed .proto files, which
 * stay resident once loaded, are needed only for ext_authz calls and for the
 * rare input those codecs leave to it. A sidecar that serves ext_proc alone
 * never loads them (issue #15, idle memory).
 *
 * The first use loads them synchronously (a codec function cannot wait for
 * an `import()`): a one-time pause for the call that needs them.
 * `npm run bench:proto-load` measures the pause and the memory
 * (docs/benchmarks.md, "2026-12-06: idle RSS").
 */
import { createRequire } from 'node:module';
import type { MethodDefinition } from '@grpc/grpc-js';
import type * as Loaded from './load.ts';
import type { MethodCodec } from '../transport/http2-server.ts';

const require = createRequire(import.meta.url);

let loaded: typeof Loaded | null = null;

/** load.ts (proto-loader's package definition and services), loaded on the first call. */
export function loadedProtos(): typeof Loaded {
  loaded ??= require('./load.ts') as typeof Loaded;
  return loaded;
}

/** Whether proto-loader has been loaded in this process (for tests and diagnostics). */
export function protosLoaded(): boolean {
  return loaded !== null;
}

/** gRPC paths of the methods the sidecar serves, as proto-loader names them (`/package.Service/Method`). */
export const METHOD_PATHS = Object.freeze({
  process: '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
  check: '/envoy.service.auth.v3.Authorization/Check',
  healthCheck: '/grpc.health.v1.Health/Check',
  healthWatch: '/grpc.health.v1.Health/Watch',
} as const);

/** proto-loader's definition of one method, looked up (and proto-loader loaded) on first use. */
export function deferredMethod<Req, Res>(pick: (protos: typeof Loaded) => unknown): () => MethodDefinition<Req, Res> {
  let method: MethodDefinition<Req, Res> | null = null;
  return () => {
    method ??= pick(loadedProtos()) as MethodDefinition<Req, Res>;
    return method;
  };
}

/** A transport codec for `path` that is proto-loader's own, loaded when the first message is (de)serialized. */
export function deferredCodec<Req, Res>(path: string, pick: (protos: typeof Loaded) => unknown): MethodCodec<Req, Res> {
  const method = deferredMethod<Req, Res>(pick);
  return Object.freeze({
    path,
    requestDeserialize: (bytes: Buffer) => method().requestDeserialize(bytes),
    responseSerialize: (message: Res) => method().responseSerialize(message),
  });
}
