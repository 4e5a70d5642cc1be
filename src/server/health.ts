/**
 * grpc.health.v1: SERVING while ready, NOT_SERVING while starting or
 * draining. Watch streams get every change.
 */
import { GrpcError, GrpcStatus, type ServerCall } from './transport/http2-server.ts';
import type { HealthCheckRequest, HealthCheckResponseInput as HealthCheckResponse } from './proto/types.ts';

type Status = 'SERVING' | 'NOT_SERVING';
type WatchCall = ServerCall<HealthCheckRequest, HealthCheckResponse>;

export class HealthService {
  #status: Status = 'NOT_SERVING';
  readonly #watchers = new Set<WatchCall>();
  /** Services we answer for: '' is the server as a whole. */
  static readonly SERVICES: ReadonlySet<string> = new Set(['', 'envoy.service.ext_proc.v3.ExternalProcessor', 'envoy.service.auth.v3.Authorization']);

  set(status: Status): void {
    if (status === this.#status) return;
    this.#status = status;
    for (const w of this.#watchers) w.write({ status });
  }

  get status(): Status {
    return this.#status;
  }

  check = (request: HealthCheckRequest): Promise<HealthCheckResponse> => {
    const service = request.service ?? '';
    if (!HealthService.SERVICES.has(service)) return Promise.reject(new GrpcError(GrpcStatus.NOT_FOUND, `unknown service ${service}`));
    return Promise.resolve({ status: this.#status });
  };

  watch = (request: HealthCheckRequest, call: WatchCall): void => {
    const service = request.service ?? '';
    call.write({ status: HealthService.SERVICES.has(service) ? this.#status : 'SERVICE_UNKNOWN' });
    this.#watchers.add(call);
    call.on('cancelled', () => this.#watchers.delete(call));
  };

  endWatches(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
  }
}
