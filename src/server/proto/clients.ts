// Typed gRPC client constructors for the gateway's three services (tests,
// tools). Kept apart from load.ts because they need @grpc/grpc-js at run
// time, which the sidecar itself never loads.

import * as grpc from '@grpc/grpc-js';
import type { CheckRequestInput, CheckResponse } from './ext-authz.ts';
import type { ProcessingRequestInput, ProcessingResponse } from './ext-proc.ts';
import type { HealthCheckRequestInput, HealthCheckResponse, HealthListRequestInput, HealthListResponse } from './health.ts';
import { packageDefinition, SERVICE_NAMES } from './load.ts';

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
  ExternalProcessor: lookupClientConstructor(SERVICE_NAMES.ExternalProcessor) as unknown as ClientConstructor<ExternalProcessorClient>,
  Authorization: lookupClientConstructor(SERVICE_NAMES.Authorization) as unknown as ClientConstructor<AuthorizationClient>,
  Health: lookupClientConstructor(SERVICE_NAMES.Health) as unknown as ClientConstructor<HealthClient>,
});

/**
 * Client constructors for the three services, e.g.
 * `new (clientConstructors().Health)('127.0.0.1:9000', grpc.credentials.createInsecure())`.
 */
export function clientConstructors(): Readonly<ClientConstructors> {
  return clientCtors;
}
