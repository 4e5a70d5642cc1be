/**
 * The sidecar process: gRPC (ext_proc, ext_authz, health) on a Unix socket
 * and/or TCP, plus the admin HTTP server. Owns start-up and drain.
 *
 * Drain (SIGTERM): readiness and gRPC health turn NOT_SERVING, the server
 * stops accepting new streams, in-flight streams get `shutdownGraceMs` to
 * finish; whatever is left is audited as aborted and failed with an error
 * status so Envoy fails those requests closed rather than passing them on.
 */
import { mkdirSync, rmSync, existsSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema.ts';
import { RequestProcessor } from './pipeline/processor.ts';
import { ApiKeyVerifier } from './stages/auth/api-keys.ts';
import { Authenticator } from './stages/auth/authenticate.ts';
import { JwtVerifier } from './stages/auth/jwt.ts';
import { MtlsVerifier } from './stages/auth/mtls.ts';
import { createKeyStore } from './stores/keys/index.ts';
import { createQuotaStores } from './stores/quota/index.ts';
import { QuotaStage } from './stages/quota/stage.ts';
import { Classifier } from './stages/classify/classifier.ts';
import { ContentGuard } from './stages/policy/content.ts';
import { Policy } from './stages/policy/policy.ts';
import type { AuditSink } from './stores/audit/file-sink.ts';
import { createAuditChain } from './stores/audit/index.ts';
import { SnapshotHolder, loadSnapshotFile } from './control/snapshot.ts';
import { pushSnapshot } from './control/push.ts';
import { UpstreamCredentials } from './stages/route/credentials.ts';
import { loadPublicKeys } from './crypto/signing.ts';
import { watchSnapshotFile } from './control/watch.ts';
import { RedisSnapshotSubscriber } from './control/pubsub.ts';
import { Metrics } from './telemetry/metrics.ts';
import { startAdminServer, type AdminServer } from './admin/server.ts';
import { AuthorizationService, ExternalProcessorService, HealthService as HealthServiceDef } from './server/proto/load.ts';
import { ExtProcStream, type ExtProcCall } from './server/extproc/stream.ts';
import { createCheckHandler } from './server/ext-authz.ts';
import { HealthService } from './server/health.ts';
import { GrpcStatus, Http2GrpcServer } from './server/transport/http2-server.ts';

export interface Sidecar {
  readonly socketPath: string | null;
  readonly tcpPort: number | null;
  readonly adminPort: number;
  readonly metrics: Metrics;
  /** Resolves when the sidecar has fully stopped. */
  readonly stopped: Promise<void>;
  shutdown(reason: string): Promise<void>;
}

export interface SidecarOptions {
  readonly log: Logger;
  /** Process-level metrics (CPU, memory, event loop); off when several sidecars share a process in tests. */
  readonly processMetrics?: boolean;
  readonly audit?: AuditSink;
}

export async function startSidecar(config: GatewayConfig, opts: SidecarOptions): Promise<Sidecar> {
  const log = opts.log;
  const metrics = new Metrics({ processMetrics: opts.processMetrics ?? true });
  const trust = { keys: loadPublicKeys(config.routing.publicKeys) };
  const snapshot = loadSnapshotFile(config.routing.snapshotFile, trust);
  metrics.setSnapshot(snapshot.version, snapshot.loadedAt);
  const audit = opts.audit ?? (await createAuditChain(config, log));
  const keyStore = createKeyStore(config, log);
  const auth = new Authenticator(
    {
      apiKeys: new ApiKeyVerifier(keyStore, { unknownKeyCache: config.auth.unknownKeyCache, log }),
      jwt: new JwtVerifier(config.auth.jwt, { onJwksFetch: (issuer, outcome) => metrics.jwksFetches.inc({ issuer, outcome }) }),
      mtls: new MtlsVerifier(config.auth.mtls),
    },
    config.auth.require,
  );
  const quotaStores = createQuotaStores(config, log);
  const quota = new QuotaStage(config.quotas, { primary: quotaStores.primary, local: quotaStores.local, breaker: quotaStores.breaker, metrics, log });
  const content = new ContentGuard(
    new Classifier({ phiTerms: config.policy.phiTerms, custom: config.policy.custom.map((c) => ({ name: c.name, dataClass: c.dataClass, ...(c.pattern === undefined ? {} : { pattern: c.pattern }), ...(c.terms === undefined ? {} : { terms: c.terms }) })) }),
    new Policy(config.policy),
    { responses: config.policy.responses, streamHoldBackChars: config.policy.streamHoldBackChars },
  );
  const snapshots = new SnapshotHolder(snapshot);
  const snapshotWatch = watchSnapshotFile(config.routing.snapshotFile, snapshots, { log, metrics, trust });
  const redisUrl = config.redis.url;
  const snapshotRedis = config.routing.redis === undefined || redisUrl === undefined
    ? null
    : new RedisSnapshotSubscriber({ url: redisUrl, ...config.routing.redis, commandTimeoutMs: config.redis.commandTimeoutMs, holder: snapshots, trust, metrics, log });
  // Serve the latest published snapshot from the first request when Redis is up; never hold start-up for a Redis that is down.
  await snapshotRedis?.firstAttempt(Math.max(1000, 4 * config.redis.commandTimeoutMs));
  const processor = new RequestProcessor({
    config,
    auth,
    quota,
    content,
    credentials: new UpstreamCredentials(config.routing.credentialsDir ?? null),
    snapshots,
    audit,
    metrics,
    log,
  });

  const streams = new Set<ExtProcStream>();
  let draining = false;
  const health = new HealthService();
  const server = new Http2GrpcServer({
    maxReceiveBytes: config.server.grpc.maxReceiveBytes,
    onTransportError: (err) => log.warn({ err: err.message }, 'gRPC connection error'),
  });
  server.bidi(ExternalProcessorService.Process, (call: ExtProcCall) => {
    if (draining) {
      call.fail(GrpcStatus.UNAVAILABLE, 'inference-gateway is draining');
      return;
    }
    streams.add(new ExtProcStream(call, { processor, metrics, log }, (s) => streams.delete(s)));
  });
  server.unary(AuthorizationService.Check, createCheckHandler(processor, log));
  server.unary(HealthServiceDef.Check, health.check);
  server.serverStream(HealthServiceDef.Watch, health.watch);

  const socketPath = config.server.grpc.socket === '' ? null : config.server.grpc.socket;
  if (socketPath !== null) {
    mkdirSync(dirname(socketPath), { recursive: true });
    // A socket file left by a killed sidecar would make bind fail; only ever remove a socket.
    if (existsSync(socketPath) && lstatSync(socketPath).isSocket()) rmSync(socketPath);
    await server.listen({ path: socketPath });
  }
  let tcpPort: number | null = null;
  if (config.server.grpc.port !== null) tcpPort = await server.listen({ host: config.server.grpc.host, port: config.server.grpc.port });

  let admin: AdminServer | null = null;
  const maxAgeMs = config.routing.maxAgeSeconds === undefined ? null : config.routing.maxAgeSeconds * 1000;
  const readiness = {
    notReadyReason: (): string | null => {
      if (draining) return 'draining';
      const issued = snapshots.current().issuedAt;
      if (maxAgeMs !== null && (issued === null || Date.now() - issued > maxAgeMs)) return `routing snapshot ${snapshots.current().version} is older than routing.maxAgeSeconds`;
      return null;
    },
  };
  admin = await startAdminServer({
    host: config.server.admin.host,
    port: config.server.admin.port,
    metrics,
    readiness,
    // Push only with control-plane keys configured: the signature is what authenticates a pushed snapshot.
    snapshotPush: trust.keys.size === 0 ? null : (text) => pushSnapshot(text, snapshots, trust, metrics, log),
  });
  health.set('SERVING');
  log.info({ socket: socketPath, tcpPort, adminPort: admin.port, snapshot: snapshots.current().version, models: snapshots.current().models.size }, 'sidecar ready');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let shuttingDown: Promise<void> | null = null;

  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      log.info({ reason, inFlight: streams.size, graceMs: config.server.shutdownGraceMs }, 'draining');
      draining = true;
      health.set('NOT_SERVING');
      const graceful = server.shutdown();
      const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.server.shutdownGraceMs).unref());
      if ((await Promise.race([graceful, deadline])) === 'timeout') {
        log.warn({ inFlight: streams.size }, 'grace period over: failing the remaining streams');
        await Promise.all([...streams].map((s) => s.abortForShutdown()));
        server.forceShutdown();
      }
      health.endWatches();
      snapshotWatch.stop();
      snapshotRedis?.close();
      if (socketPath !== null && existsSync(socketPath)) rmSync(socketPath, { force: true });
      await admin.close();
      await audit.close();
      await keyStore.close();
      await quotaStores.close();
      log.info('stopped');
      resolveStopped();
    })();
    return shuttingDown;
  };

  return { socketPath, tcpPort, adminPort: admin.port, metrics, stopped, shutdown };
}
