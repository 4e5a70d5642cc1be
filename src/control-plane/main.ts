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

export interface RunningControlPlane {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startControlPlane(cfg: ControlPlaneConfig, log: Logger, opts: { onBackends?: OnBackends } = {}): Promise<RunningControlPlane> {
  const signingKey = loadSigningKey(cfg.routing.signingKeyFile);
  const store = new DesiredStateStore({
    url: cfg.postgres.url,
    poolSize: cfg.postgres.poolSize,
    check: (state) => snapshotProblems(state, cfg.routing.ownedBy),
  });
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ migrations: applied }, 'database migrations applied');
  const audit = new AdminAudit({ ...cfg.audit, log });
  const sync = new DataPlaneSync({
    redisUrl: cfg.redis.url,
    keyPrefix: cfg.redis.keyPrefix,
    commandTimeoutMs: cfg.redis.commandTimeoutMs,
    routingKey: cfg.routing.key,
    routingChannel: cfg.routing.channel,
    signingKey,
    ownedBy: cfg.routing.ownedBy,
    log,
    ...(opts.onBackends === undefined ? {} : { onBackends: opts.onBackends }),
  });
  // Whatever is committed reaches Redis, even what a previous run could not push.
  sync.push(await store.state());
  const server = new AdminServer({ store, auth: new AdminAuth(cfg.auth), audit, sync, log });
  const port = await server.listen(cfg.listen.host, cfg.listen.port);
  log.info({ port, host: cfg.listen.host, snapshotKid: signingKey.kid, auditKid: audit.kid }, 'control plane ready');
  return {
    port,
    stop: async () => {
      await server.close();
      await sync.close();
      await audit.close();
      await store.close();
    },
  };
}
