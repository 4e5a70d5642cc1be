/**
 * The control plane process: config → PostgreSQL (migrations) → admin audit
 * log → data plane sync (the current state pushed once at start) → admin
 * HTTP server. Never on the request path: sidecars and Envoy keep serving
 * what they last received while it is down.
 */
import type { Logger } from 'pino';
import { loadSigningKey } from '../crypto/signing.ts';
import { AdminAudit } from './audit.ts';
import { AdminAuth } from './auth.ts';
import type { OnBackends } from './backends.ts';
import type { ControlPlaneConfig } from './config.ts';
import { AdminServer } from './server.ts';
import { snapshotProblems } from './snapshot.ts';
import { DesiredStateStore } from './store.ts';
import { DataPlaneSync } from './sync.ts';
import { startXdsServer, type XdsServer } from './xds/server.ts';
import { xdsClustersOf } from './xds-clusters.ts';

/** The desired state's backends as xDS clusters, pushed to every connected Envoy. A state the server cannot encode is logged, and Envoy keeps the last good one. */
function serveOverXds(xds: XdsServer, log: Logger, staticClusters: ReadonlySet<string>): OnBackends {
  return (backends, revision) => {
    const clusters = xdsClustersOf(backends, staticClusters);
    try {
      xds.update(clusters);
    } catch (err) {
      log.error(
        { revision, err: err instanceof Error ? err.message : String(err) },
        'backends could not be served over xDS; Envoy keeps the last good clusters',
      );
    }
  };
}

export interface RunningControlPlane {
  readonly port: number;
  /** The xDS server's port, when `xds` is configured. */
  readonly xdsPort: number | null;
  stop(): Promise<void>;
}

export async function startControlPlane(cfg: ControlPlaneConfig, log: Logger, opts: { onBackends?: OnBackends } = {}): Promise<RunningControlPlane> {
  const signingKey = loadSigningKey(cfg.routing.signingKeyFile);
  // Before anything opens: a mapping the mTLS rules refuse fails the start here.
  const auth = new AdminAuth(cfg.auth);
  const store = new DesiredStateStore({
    url: cfg.postgres.url,
    poolSize: cfg.postgres.poolSize,
    check: (state) => snapshotProblems(state, cfg.routing.ownedBy),
  });
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ migrations: applied }, 'database migrations applied');
  const audit = new AdminAudit({ ...cfg.audit, log });
  // Backends reach Envoy over xDS when configured; a caller's hook (tests) sees them too.
  const xds = cfg.xds === undefined ? null : await startXdsServer({ host: cfg.xds.host, port: cfg.xds.port, log });
  const hooks = [
    ...(xds === null ? [] : [serveOverXds(xds, log, new Set(cfg.xds?.staticClusters))]),
    ...(opts.onBackends === undefined ? [] : [opts.onBackends]),
  ];
  const onBackends: OnBackends | undefined =
    hooks.length === 0
      ? undefined
      : async (backends, revision) => {
          for (const h of hooks) await h(backends, revision);
        };
  const sync = new DataPlaneSync({
    redisUrl: cfg.redis.url,
    keyPrefix: cfg.redis.keyPrefix,
    commandTimeoutMs: cfg.redis.commandTimeoutMs,
    routingKey: cfg.routing.key,
    routingChannel: cfg.routing.channel,
    signingKey,
    ownedBy: cfg.routing.ownedBy,
    log,
    ...(onBackends === undefined ? {} : { onBackends }),
  });
  // Whatever is committed reaches Redis, even what a previous run could not push.
  sync.push(await store.state());
  const server = new AdminServer({
    store,
    auth,
    audit,
    sync,
    log,
    ...(cfg.listen.tls === undefined ? {} : { tls: cfg.listen.tls }),
  });
  const port = await server.listen(cfg.listen.host, cfg.listen.port);
  log.info(
    {
      port,
      host: cfg.listen.host,
      scheme: cfg.listen.tls === undefined ? 'http' : 'https',
      xdsPort: xds?.port ?? null,
      snapshotKid: signingKey.kid,
      auditKid: audit.kid,
    },
    'control plane ready',
  );
  return {
    port,
    xdsPort: xds?.port ?? null,
    stop: async () => {
      await server.close();
      await xds?.close();
      await sync.close();
      await audit.close();
      await store.close();
    },
  };
}
