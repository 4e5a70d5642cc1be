// Types for grpc.health.v1 (standard gRPC health checking), as decoded /
// accepted by the gateway's proto loader. See common.ts for the conventions.

import type { handleServerStreamingCall, handleUnaryCall } from '@grpc/grpc-js';
import type { OpenEnum } from './common.ts';

export interface HealthCheckRequest {
  /** Empty string (absent) means the server as a whole. */
  service?: string;
}
export type HealthCheckRequestInput = HealthCheckRequest;

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckResponse {
  status?: OpenEnum<ServingStatus>;
}
export type HealthCheckResponseInput = HealthCheckResponse;

export type HealthListRequest = Record<string, never>;
export type HealthListRequestInput = HealthListRequest;

export interface HealthListResponse {
  statuses?: Record<string, HealthCheckResponse>;
}
export type HealthListResponseInput = HealthListResponse;

/**
 * Implementation object for `server.addService(HealthService, …)`. List is
 * optional: grpc-js answers UNIMPLEMENTED for a missing handler.
 */
export type HealthHandlers = {
  Check: handleUnaryCall<HealthCheckRequest, HealthCheckResponseInput>;
  Watch: handleServerStreamingCall<HealthCheckRequest, HealthCheckResponseInput>;
  List?: handleUnaryCall<HealthListRequest, HealthListResponseInput>;
};
