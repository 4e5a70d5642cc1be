/**
 * The sidecar's gRPC side: ext_proc, ext_authz and health on a Unix socket
 * and/or TCP, over the processor it is handed. Owns the streams in flight
 * and the drain: on shutdown, health turns NOT_SERVING, no new stream is
 * accepted, in-flight streams get the grace period to finish, and whatever
 * is left is audited as aborted and failed with an error status so Envoy
 * fails those requests closed rather than passing them on.
 */
import { existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { AttemptProcessor } from '../pipeline/attempt.ts';
import type { RequestProcessor } from '../pipeline/processor.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { createCheckHandler } from './ext-authz.ts';
import { ATTEMPT_ROLE, ROLE_METADATA, serveAttempt } from './extproc/attempt-stream.ts';
import { ExtProcStream, type ExtProcCall } from './extproc/stream.ts';
import { HealthService } from './health.ts';
import type { CheckRequest, CheckResponseInput } from './proto/types.ts';
import { deferredCodec, METHOD_PATHS } from './proto/deferred.ts';
import { PROCESS_CODEC } from './proto/wire/ext-proc-codec.ts';
import { HEALTH_CHECK_CODEC, HEALTH_WATCH_CODEC } from './proto/wire/health-codec.ts';
import { GrpcStatus, Http2GrpcServer } from './transport/http2-server.ts';

export interface GrpcServerOptions {
  readonly processor: RequestProcessor;
  /** Attempts of requests with fallbacks (streams from the aggregate clusters' upstream ext_proc). */
  readonly attempts: AttemptProcessor;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly maxReceiveBytes: number;
  /** A Unix socket to listen on (a stale socket file is removed first), or null. */
  readonly socketPath: string | null;
  /** A TCP address to listen on (port 0: any free port), or null. */
  readonly tcp: { readonly host: string; readonly port: number } | null;
}

export interface GrpcServer {
  readonly socketPath: string | null;
  /** The TCP port bound, or null. */
  readonly tcpPort: number | null;
  readonly draining: boolean;
  /** Marks the service SERVING (after the rest of the process is ready). */
  serving(): void;
  /** Drains within graceMs, then fails what is left; idempotent. */
  shutdown(graceMs: number, reason: string): Promise<void>;
}

export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcServer> {
  const { processor, attempts, metrics, log } = o;
  const streams = new Set<ExtProcStream>();
  let draining = false;
  const health = new HealthService();
  const server = new Http2GrpcServer({
    maxReceiveBytes: o.maxReceiveBytes,
    onTransportError: (err) => log.warn({ err: err.message }, 'gRPC connection error'),
  });
  // The hot path: ext_proc messages go through the hand-written codec (wire/ext-proc-codec.ts), health checks too;
  // ext_authz through proto-loader, loaded on the first Check (proto/deferred.ts).
  server.bidi(PROCESS_CODEC, (call: ExtProcCall) => {
    if (draining) {
      call.fail(GrpcStatus.UNAVAILABLE, 'inference-gateway is draining');
      return;
    }
    // One service, two filters: Envoy's upstream filter for an attempt says so in its initial metadata.
    if (call.metadata[ROLE_METADATA] === ATTEMPT_ROLE) {
      serveAttempt(call, attempts, log);
      return;
    }
    streams.add(new ExtProcStream(call, { processor, metrics, log }, (s) => streams.delete(s)));
  });
  server.unary(
    deferredCodec<CheckRequest, CheckResponseInput>(METHOD_PATHS.check, (p) => p.AuthorizationService.Check),
    createCheckHandler(processor, log),
  );
  server.unary(HEALTH_CHECK_CODEC, health.check);
  server.serverStream(HEALTH_WATCH_CODEC, health.watch);

  const socketPath = o.socketPath;
  if (socketPath !== null) {
    mkdirSync(dirname(socketPath), { recursive: true });
    // A socket file left by a killed sidecar would make bind fail; only ever remove a socket.
    if (existsSync(socketPath) && lstatSync(socketPath).isSocket()) rmSync(socketPath);
    await server.listen({ path: socketPath });
  }
  const tcpPort = o.tcp === null ? null : await server.listen({ host: o.tcp.host, port: o.tcp.port });

  let stopping: Promise<void> | null = null;
  return {
    socketPath,
    tcpPort,
    get draining() {
      return draining;
    },
    serving: () => health.set('SERVING'),
    shutdown: (graceMs, reason) => {
      stopping ??= (async () => {
        log.info({ reason, inFlight: streams.size, graceMs }, 'draining');
        draining = true;
        health.set('NOT_SERVING');
        const graceful = server.shutdown();
        const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
        if ((await Promise.race([graceful, deadline])) === 'timeout') {
          log.warn({ inFlight: streams.size }, 'grace period over: failing the remaining streams');
          await Promise.all([...streams].map((s) => s.abortForShutdown()));
          server.forceShutdown();
        }
        health.endWatches();
        if (socketPath !== null && existsSync(socketPath)) rmSync(socketPath, { force: true });
      })();
      return stopping;
    },
  };
}
