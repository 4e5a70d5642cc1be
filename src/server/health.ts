/**
 * grpc.health.v1: SERVING while ready, NOT_SERVING while starting or
 * draining. Watch streams get every change.
 */
import type * as grpc from '@grpc/grpc-js';
import type { HealthCheckRequest, HealthCheckResponseInput as HealthCheckResponse } from './proto/types.ts';

type Status = 'SERVING' | 'NOT_SERVING';

export class HealthService {
  #status: Status = 'NOT_SERVING';
  readonly #watchers = new Set<grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();
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

  readonly handlers: grpc.UntypedServiceImplementation = {
    Check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: grpc.sendUnaryData<HealthCheckResponse>) => {
      const service = call.request.service ?? '';
      if (!HealthService.SERVICES.has(service)) {
        cb({ code: 5, details: `unknown service ${service}` });
        return;
      }
      cb(null, { status: this.#status });
    },
    Watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
      const service = call.request.service ?? '';
      call.write({ status: HealthService.SERVICES.has(service) ? this.#status : 'SERVICE_UNKNOWN' });
      this.#watchers.add(call);
      call.on('cancelled', () => this.#watchers.delete(call));
      call.on('close', () => this.#watchers.delete(call));
    },
  };

  endWatches(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
  }
}
