// Loads the gateway's own .proto declarations (protos/ at the repository
// root) once, at module import, and exposes the gRPC service definitions the
// servers register plus typed client constructors for tests and tools.
//
// Everything here is computed on the startup path; nothing is re-parsed per
// call.

import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { AuthorizationHandlers, CheckRequestInput, CheckResponse } from './ext-authz.ts';
import type { ExternalProcessorHandlers, ProcessingRequestInput, ProcessingResponse } from './ext-proc.ts';
import type { HealthCheckRequestInput, HealthCheckResponse, HealthHandlers, HealthListRequestInput, HealthListResponse } from './health.ts';

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

const grpcObject: grpc.GrpcObject = grpc.loadPackageDefinition(packageDefinition);

function isServiceClientConstructor(value: unknown): value is grpc.ServiceClientConstructor {
  return typeof value === 'function' && 'service' in value && typeof value.service === 'object' && value.service !== null;
}

function lookupClientConstructor(fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = grpcObject;
  for (const part of fullName.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, part)) {
      throw new Error(`gRPC service ${fullName} not found in loaded protos`);
    }
    node = (node as Record<string, unknown>)[part];
  }
  if (!isServiceClientConstructor(node)) {
    throw new Error(`${fullName} is not a gRPC service`);
  }
  return node;
}

const externalProcessorCtor = lookupClientConstructor(SERVICE_NAMES.ExternalProcessor);
const authorizationCtor = lookupClientConstructor(SERVICE_NAMES.Authorization);
const healthCtor = lookupClientConstructor(SERVICE_NAMES.Health);

/** `envoy.service.ext_proc.v3.ExternalProcessor`, for `server.addService`. */
export const ExternalProcessorService: grpc.ServiceDefinition<ExternalProcessorHandlers> =
  externalProcessorCtor.service as grpc.ServiceDefinition<ExternalProcessorHandlers>;

/** `envoy.service.auth.v3.Authorization`, for `server.addService`. */
export const AuthorizationService: grpc.ServiceDefinition<AuthorizationHandlers> = authorizationCtor.service as grpc.ServiceDefinition<AuthorizationHandlers>;

/** `grpc.health.v1.Health`, for `server.addService`. */
export const HealthService: grpc.ServiceDefinition<HealthHandlers> = healthCtor.service as grpc.ServiceDefinition<HealthHandlers>;

// ---------------------------------------------------------------------------
// Typed clients (tests, tools)
// ---------------------------------------------------------------------------

export interface ExternalProcessorClient extends grpc.Client {
  Process(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<ProcessingRequestInput, ProcessingResponse>;
  Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<ProcessingRequestInput, ProcessingResponse>;
}

export interface AuthorizationClient extends grpc.Client {
  Check(request: CheckRequestInput, callback: grpc.requestCallback<CheckResponse>): grpc.ClientUnaryCall;
  Check(request: CheckRequestInput, metadata: grpc.Metadata, callback: grpc.requestCallback<CheckResponse>): grpc.ClientUnaryCall;
  Check(request: CheckRequestInput, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<CheckResponse>): grpc.ClientUnaryCall;
}

export interface HealthClient extends grpc.Client {
  Check(request: HealthCheckRequestInput, callback: grpc.requestCallback<HealthCheckResponse>): grpc.ClientUnaryCall;
  Check(request: HealthCheckRequestInput, metadata: grpc.Metadata, callback: grpc.requestCallback<HealthCheckResponse>): grpc.ClientUnaryCall;
  Check(
    request: HealthCheckRequestInput,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<HealthCheckResponse>,
  ): grpc.ClientUnaryCall;
  Watch(request: HealthCheckRequestInput, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<HealthCheckResponse>;
  Watch(request: HealthCheckRequestInput, options?: grpc.CallOptions): grpc.ClientReadableStream<HealthCheckResponse>;
  List(request: HealthListRequestInput, callback: grpc.requestCallback<HealthListResponse>): grpc.ClientUnaryCall;
  List(
    request: HealthListRequestInput,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<HealthListResponse>,
  ): grpc.ClientUnaryCall;
}

/** Constructor signature shared by the typed clients. */
export type ClientConstructor<C extends grpc.Client> = new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ChannelOptions>) => C;

export interface ClientConstructors {
  ExternalProcessor: ClientConstructor<ExternalProcessorClient>;
  Authorization: ClientConstructor<AuthorizationClient>;
  Health: ClientConstructor<HealthClient>;
}

const clientCtors: Readonly<ClientConstructors> = Object.freeze({
  ExternalProcessor: externalProcessorCtor as unknown as ClientConstructor<ExternalProcessorClient>,
  Authorization: authorizationCtor as unknown as ClientConstructor<AuthorizationClient>,
  Health: healthCtor as unknown as ClientConstructor<HealthClient>,
});

/**
 * Client constructors for the three services, e.g.
 * `new (clientConstructors().Health)('127.0.0.1:9000', grpc.credentials.createInsecure())`.
 */
export function clientConstructors(): Readonly<ClientConstructors> {
  return clientCtors;
}
