// Loads the gateway's own .proto declarations (protos/ at the repository
// root) once, at module import, and exposes the gRPC service definitions the
// servers register. Typed client constructors for tests and tools are in
// clients.ts: they need @grpc/grpc-js at run time, which the sidecar (its own
// HTTP/2 transport) does not load — ~17 MB of resident memory it would carry
// for nothing (issue #15).
//
// Everything here is computed on the startup path; nothing is re-parsed per
// call.

import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { AuthorizationHandlers } from './ext-authz.ts';
import type { ExternalProcessorHandlers } from './ext-proc.ts';
import type { HealthHandlers } from './health.ts';

/** Absolute path of the directory holding our .proto files. */
export const PROTOS_DIR: string = path.resolve(import.meta.dirname, '../../../protos');

/** The proto-loader options every gateway component relies on. */
export const LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
});

/** Entry files (relative to PROTOS_DIR); their imports are pulled in. */
export const PROTO_FILES: readonly string[] = Object.freeze([
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'grpc/health/v1/health.proto',
]);

/** Fully-qualified gRPC service names. */
export const SERVICE_NAMES = Object.freeze({
  ExternalProcessor: 'envoy.service.ext_proc.v3.ExternalProcessor',
  Authorization: 'envoy.service.auth.v3.Authorization',
  Health: 'grpc.health.v1.Health',
} as const);

/**
 * The proto-loader package definition. Keys are fully-qualified names;
 * message entries carry `serialize` / `deserialize` functions.
 */
export const packageDefinition: protoLoader.PackageDefinition = protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS });

/** A service's method definitions, as proto-loader made them (the same object grpc-js' client constructors carry). */
function serviceDefinition<T>(fullName: string): grpc.ServiceDefinition<T> {
  const def = packageDefinition[fullName];
  if (def === undefined || typeof def !== 'object' || 'format' in def) throw new Error(`gRPC service ${fullName} not found in loaded protos`);
  return def as unknown as grpc.ServiceDefinition<T>;
}

/** `envoy.service.ext_proc.v3.ExternalProcessor`, for `server.addService`. */
export const ExternalProcessorService: grpc.ServiceDefinition<ExternalProcessorHandlers> = serviceDefinition<ExternalProcessorHandlers>(
  SERVICE_NAMES.ExternalProcessor,
);

/** `envoy.service.auth.v3.Authorization`, for `server.addService`. */
export const AuthorizationService: grpc.ServiceDefinition<AuthorizationHandlers> = serviceDefinition<AuthorizationHandlers>(SERVICE_NAMES.Authorization);

/** `grpc.health.v1.Health`, for `server.addService`. */
export const HealthService: grpc.ServiceDefinition<HealthHandlers> = serviceDefinition<HealthHandlers>(SERVICE_NAMES.Health);
