/**
 * The composition root: reads nothing itself but the validated config, and
 * builds the sidecar from it — stores, stages, API families, snapshot
 * delivery, the request processor — then starts the gRPC server
 * (src/server) and the admin HTTP server. Owns start-up order and shutdown.
 *
 * Shutdown (SIGTERM): readiness turns false, the gRPC server drains
 * (src/server/grpc.ts), then snapshot delivery, the admin server and the
 * stores close, the audit chain last, then queued trace spans are flushed
 * (bounded by tracing.exportTimeoutMs).
 *
 * What only some configurations use is imported when they do (Redis clients,
 * JWT and introspection verifiers, the tracing SDK): a module loaded once
 * stays resident, and the default configuration needs none of them.
 */
import type { Logger } from 'pino';
import { startAdminServer } from './admin/server.ts';
import type { GatewayConfig, QuotaPlan } from './config/schema.ts';
import { pushSnapshot } from './control/push.ts';
import { loadSnapshotFile, SnapshotHolder } from './control/snapshot.ts';
import { watchSnapshotFile } from './control/watch.ts';
import { ConfigError } from './config/errors.ts';
import { reviewSnapshot } from './control/destinations-check.ts';
import { loadPublicKeys } from './crypto/signing.ts';
import { API_FAMILIES, DEFAULT_FAMILY } from './families/index.ts';
import { TRANSLATORS } from './families/translate/port.ts';
import type { AuditSink } from './pipeline/ports.ts';
import { AttemptProcessor } from './pipeline/attempt.ts';
import { RequestProcessor } from './pipeline/processor.ts';
import { startGrpcServer } from './server/grpc.ts';
import { ApiKeyVerifier } from './stages/auth/api-keys.ts';
import { Authenticator } from './stages/auth/authenticate.ts';
import { createIntrospectionVerifier, createJwtVerifier } from './stages/auth/verifiers.ts';
import { MtlsVerifier } from './stages/auth/mtls.ts';
import { Classifier } from './stages/classify/classifier.ts';
import { ScanPool } from './stages/classify/pool.ts';
import { ContentGuard } from './stages/policy/content.ts';
import { DestinationPolicy } from './stages/policy/destinations.ts';
import { Policy } from './stages/policy/policy.ts';
import { QuotaStage } from './stages/quota/stage.ts';
import { UpstreamCredentials } from './stages/route/credentials.ts';
import { MemoryAttemptLedger } from './stages/route/attempt-ledger.ts';
import { SnapshotRoutes } from './stages/route/resolver.ts';
import { createAuditChain } from './stores/audit/index.ts';
import { createKeyStore } from './stores/keys/index.ts';
import { createQuotaStores } from './stores/quota/index.ts';
import { Metrics } from './telemetry/metrics.ts';
import type { Tracing } from './tracing/otel.ts';

/**
 * max_tokens for a request translated to a provider that requires one (Anthropic) when neither the client nor its quota plan set
 * one; the plan's defaultMaxTokens wins when a plan limits tokens.
 */
const DEFAULT_MAX_TOKENS = 4096;

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

  // Routing snapshots: the file (followed), admin pushes and Redis pub/sub, all signed when keys are configured.
  const trust = { keys: loadPublicKeys(config.routing.publicKeys) };
  // Every snapshot, the first included, is reviewed against the data policy's destination rules.
  const destinationCheck = { rules: config.policy.destinations, mode: config.policy.destinationCheck };
  const initial = loadSnapshotFile(config.routing.snapshotFile, trust);
  const review = reviewSnapshot(destinationCheck, null, initial);
  if (review.refuse) throw new ConfigError(config.routing.snapshotFile, review.problems);
  if (review.problems.length > 0) log.warn({ snapshot: initial.version, problems: review.problems }, 'destination rules no deployment satisfies');
  const snapshots = new SnapshotHolder(initial, destinationCheck);
  metrics.setSnapshot(snapshots.current().version, snapshots.current().loadedAt, snapshots.current().issuedAt);
  const snapshotWatch = watchSnapshotFile(config.routing.snapshotFile, snapshots, { log, metrics, trust });
  const redisUrl = config.redis.url;
  const snapshotRedis =
    config.routing.redis === undefined || redisUrl === undefined
      ? null
      : new (await import('./control/pubsub.ts')).RedisSnapshotSubscriber({
          url: redisUrl,
          ...config.routing.redis,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          holder: snapshots,
          trust,
          metrics,
          log,
        });
  // Serve the latest published snapshot from the first request when Redis is up; never hold start-up for a Redis that is down.
  await snapshotRedis?.firstAttempt(Math.max(1000, 4 * config.redis.commandTimeoutMs));

  const pipeline = await buildPipeline(config, {
    log,
    metrics,
    routes: new SnapshotRoutes(snapshots),
    snapshotPlans: () => snapshots.current().plans,
    ...(opts.audit === undefined ? {} : { audit: opts.audit }),
  });
  const { processor, attempts: attemptProcessor } = pipeline;

  const grpc = await startGrpcServer({
    processor,
    attempts: attemptProcessor,
    metrics,
    log,
    maxReceiveBytes: config.server.grpc.maxReceiveBytes,
    socketPath: config.server.grpc.socket === '' ? null : config.server.grpc.socket,
    tcp: config.server.grpc.port === null ? null : { host: config.server.grpc.host, port: config.server.grpc.port },
  });

  const maxAgeMs = config.routing.maxAgeSeconds === undefined ? null : config.routing.maxAgeSeconds * 1000;
  const admin = await startAdminServer({
    host: config.server.admin.host,
    port: config.server.admin.port,
    metrics,
    readiness: {
      notReadyReason: (): string | null => {
        if (grpc.draining) return 'draining';
        const issued = snapshots.current().issuedAt;
        if (maxAgeMs !== null && (issued === null || Date.now() - issued > maxAgeMs))
          return `routing snapshot ${snapshots.current().version} is older than routing.maxAgeSeconds`;
        return null;
      },
    },
    // Push only with control-plane keys configured: the signature is what authenticates a pushed snapshot.
    snapshotPush: trust.keys.size === 0 ? null : (text) => pushSnapshot(text, snapshots, trust, metrics, log),
  });
  grpc.serving();
  log.info(
    { socket: grpc.socketPath, tcpPort: grpc.tcpPort, adminPort: admin.port, snapshot: snapshots.current().version, models: snapshots.current().models.size },
    'sidecar ready',
  );

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let shuttingDown: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      await grpc.shutdown(config.server.shutdownGraceMs, reason);
      snapshotWatch.stop();
      snapshotRedis?.close();
      await admin.close();
      await pipeline.close();
      log.info('stopped');
      resolveStopped();
    })();
    return shuttingDown;
  };

  return { socketPath: grpc.socketPath, tcpPort: grpc.tcpPort, adminPort: admin.port, metrics, stopped, shutdown };
}

export interface Pipeline {
  readonly processor: RequestProcessor;
  readonly attempts: AttemptProcessor;
  /** Closes what the stages hold, the audit chain last (its final checkpoint). */
  close(): Promise<void>;
}

/**
 * Stores, stages and the request processor over them — everything a request goes through between the transport and
 * the stores. The sidecar serves it over gRPC; `npm run bench:pipeline` drives it in-process.
 */
export async function buildPipeline(
  config: GatewayConfig,
  opts: {
    readonly log: Logger;
    readonly metrics: Metrics;
    readonly routes: SnapshotRoutes;
    /** The quota plans of the snapshot in use (looked up before config.quotas.plans). */
    readonly snapshotPlans?: () => ReadonlyMap<string, QuotaPlan>;
    readonly audit?: AuditSink;
  },
): Promise<Pipeline> {
  const { log, metrics } = opts;
  // Request spans: the OpenTelemetry SDK is loaded only when tracing is on (off, the request path imports none of it).
  const tracing = config.tracing.enabled ? await startTracing(config, metrics, log) : null;
  // Stores.
  const audit = opts.audit ?? (await createAuditChain(config, log));
  const keyStore = await createKeyStore(config, log);
  const quotaStores = await createQuotaStores(config, log);
  const revocations =
    config.auth.tokenRevocation && config.redis.url !== undefined
      ? new (await import('./stores/tokens/revocations.ts')).RedisTokenRevocations({
          url: config.redis.url,
          keyPrefix: config.redis.keyPrefix,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          log,
        })
      : null;
  // Start with the revocation list when Redis is up; until it is read, OAuth tokens (JWT or introspected) get 503, never acceptance.
  if (revocations !== null && !(await revocations.start(Math.max(1000, 4 * config.redis.commandTimeoutMs)))) {
    log.warn({ redis: revocations.description }, 'token revocation list not read yet: JWTs and introspected tokens are refused with 503 until it is');
  }

  // Stages, then the processor over them.
  const auth = new Authenticator(
    {
      apiKeys: new ApiKeyVerifier(keyStore, { unknownKeyCache: config.auth.unknownKeyCache, log }),
      jwt: await createJwtVerifier(config.auth.jwt, {
        onJwksFetch: (issuer, outcome) => metrics.jwksFetches.inc({ issuer, outcome }),
        ...(revocations === null ? {} : { revocations }),
      }),
      introspection: await createIntrospectionVerifier(config.auth.introspection, {
        onCall: (issuer, outcome) => metrics.introspectionCalls.inc({ issuer, outcome }),
        ...(revocations === null ? {} : { revocations }),
      }),
      mtls: new MtlsVerifier(config.auth.mtls),
    },
    config.auth.require,
  );
  const quota = new QuotaStage(config.quotas, {
    primary: quotaStores.primary,
    local: quotaStores.local,
    breaker: quotaStores.breaker,
    metrics,
    log,
    ...(opts.snapshotPlans === undefined ? {} : { snapshotPlans: opts.snapshotPlans }),
  });
  const classifierConfig = {
    phiTerms: config.policy.phiTerms,
    custom: config.policy.custom.map((c) => ({
      name: c.name,
      dataClass: c.dataClass,
      ...(c.pattern === undefined ? {} : { pattern: c.pattern }),
      ...(c.terms === undefined ? {} : { terms: c.terms }),
    })),
  };
  // Large bodies are classified on worker threads with the same detectors.
  const scanPool = config.policy.inspectWorkers === 0 ? null : new ScanPool(classifierConfig, config.policy.inspectWorkers);
  const content = new ContentGuard(new Classifier(classifierConfig), new Policy(config.policy), {
    responses: config.policy.responses,
    pool: scanPool,
    inlineChars: config.policy.inlineInspectChars,
  });
  const routes = opts.routes;
  const credentials = new UpstreamCredentials(config.routing.credentialsDir ?? null);
  const attempts = new MemoryAttemptLedger();
  const processor = new RequestProcessor({
    options: {
      maxBodyBytes: config.limits.maxBodyBytes,
      maxJsonDepth: config.policy.maxJsonDepth,
      streamHoldBackChars: config.policy.streamHoldBackChars,
      defaultMaxTokens: DEFAULT_MAX_TOKENS,
      extAuthzRedact: config.policy.extAuthzRedact,
    },
    families: API_FAMILIES,
    defaultFamily: DEFAULT_FAMILY,
    auth,
    routes,
    quota,
    content,
    destinations: new DestinationPolicy(config.policy),
    credentials,
    translators: TRANSLATORS,
    audit,
    attempts,
    metrics,
    log,
    tracer: tracing?.tracer ?? null,
  });
  // Each attempt on a target with fallbacks, from the upstream ext_proc in Envoy's aggregate cluster.
  const attemptProcessor = new AttemptProcessor({
    families: API_FAMILIES,
    defaultFamily: DEFAULT_FAMILY,
    routes,
    translators: TRANSLATORS,
    credentials,
    ledger: attempts,
    log,
    options: { maxJsonDepth: config.policy.maxJsonDepth, defaultMaxTokens: DEFAULT_MAX_TOKENS },
  });

  return {
    processor,
    attempts: attemptProcessor,
    close: async () => {
      quota.close();
      await quotaStores.close();
      await keyStore.close();
      await revocations?.close();
      await scanPool?.close();
      await audit.close();
      await tracing?.shutdown();
    },
  };
}

async function startTracing(config: GatewayConfig, metrics: Metrics, log: Logger): Promise<Tracing> {
  const { startTracing: start } = await import('./tracing/otel.ts');
  const tracing = start(config.tracing, { metrics, log });
  const url = new URL(config.tracing.endpoint ?? '');
  // The endpoint without any user:password it might carry.
  log.info({ endpoint: `${url.origin}${url.pathname}`, sampleRatio: config.tracing.sampleRatio }, 'tracing: request spans exported over OTLP/HTTP');
  return tracing;
}
