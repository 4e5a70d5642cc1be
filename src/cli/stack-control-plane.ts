/**
 * The control plane half of `inference-gateway stack --control-plane`: a
 * private PostgreSQL (the desired state, kept in <dir>/postgres across
 * restarts) and redis-server (snapshots and keys for the sidecar; refilled
 * by the control plane at every start), the control plane itself (admin API,
 * xDS for Envoy), and an admin token for the local operator: an ES256 key
 * pair whose public half is the control plane's only trusted issuer
 * (<dir>/admin-jwks.json) and a token signed with it, valid 12 h
 * (<dir>/admin-token), minted anew at every start.
 */
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { loadControlPlaneConfig } from '../control-plane/config.ts';
import { startControlPlane, type RunningControlPlane } from '../control-plane/main.ts';
import { signSnapshot, type SnapshotDoc } from '../control-plane/snapshot.ts';
import { loadOrCreateSigningKey } from '../crypto/signing.ts';
import {
  ensureDatabase,
  findPostgresBinDir,
  initPostgres,
  killProcess,
  postgresRunAs,
  redisServerAvailable,
  spawnPostgres,
  spawnRedis,
  stopProcess,
} from '../devtools/services.ts';
import type { Logger } from '../telemetry/logger.ts';

export const ADMIN_ISSUER = 'inference-gateway-local-stack';
export const ADMIN_AUDIENCE = 'igw-admin';
const TOKEN_TTL_SECONDS = 12 * 3600;

/** What is missing to run the control plane locally, as sentences; empty when nothing is. */
export function missingServices(): string[] {
  const missing: string[] = [];
  if (findPostgresBinDir() === null)
    missing.push('PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN to the folder of initdb and postgres)');
  if (!redisServerAvailable()) missing.push('redis-server not found on the PATH (apt-get install redis-server)');
  return missing;
}

export interface StackControlPlane {
  readonly adminUrl: string;
  readonly xdsPort: number;
  readonly redisUrl: string;
  readonly tokenFile: string;
  /** The snapshot signing key's public half, for the sidecar's routing.publicKeys. */
  readonly snapshotPublicKey: string;
  /** The demo snapshot signed with the control plane's key, dated before anything the control plane publishes. */
  readonly signedDemoSnapshot: string;
  /** A fresh admin token (write role). */
  readonly token: string;
  stop(): Promise<void>;
}

export async function startStackControlPlane(opts: {
  dir: string;
  redisPort: number;
  postgresPort: number;
  adminPort: number;
  xdsPort: number;
  /** Clusters Envoy has statically: deployments on them are not served over xDS. */
  staticClusters: readonly string[];
  demoSnapshot: SnapshotDoc;
  log: Logger;
  say: (msg: string) => void;
}): Promise<StackControlPlane> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    // Redis: nothing persisted; the control plane writes the snapshot and every key at start.
    const redis = spawnRedis(opts.redisPort);
    cleanups.push(() => killProcess(redis.proc));
    await redis.ready;
    const redisUrl = `redis://127.0.0.1:${opts.redisPort}`;

    const postgres = await startStackPostgres(opts.dir, opts.postgresPort, opts.say);
    cleanups.push(() => stopProcess(postgres, 'SIGINT')); // fast shutdown
    const dbUrl = await ensureDatabase(opts.postgresPort, 'control_plane');

    const cpDir = join(opts.dir, 'control-plane');
    mkdirSync(cpDir, { recursive: true });
    const snapshotKeyFile = join(cpDir, 'snapshot-key.pem');
    const { key: snapshotKey } = loadOrCreateSigningKey(snapshotKeyFile);
    const token = await adminToken(opts.dir);
    const tokenFile = join(opts.dir, 'admin-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

    const cfgFile = join(cpDir, 'control-plane.yaml');
    writeFileSync(
      cfgFile,
      stringify({
        listen: { host: '127.0.0.1', port: opts.adminPort },
        postgres: { url: dbUrl },
        redis: { url: redisUrl },
        routing: { signingKeyFile: 'snapshot-key.pem' },
        auth: { jwt: { issuers: [{ issuer: ADMIN_ISSUER, audiences: [ADMIN_AUDIENCE], jwksFile: '../admin-jwks.json', algorithms: ['ES256'] }] } },
        audit: { file: 'admin-audit.jsonl', signingKeyFile: 'admin-audit.pem' },
        xds: { host: '127.0.0.1', port: opts.xdsPort, staticClusters: [...opts.staticClusters] },
        logging: { level: 'info' },
      }),
    );
    const cp: RunningControlPlane = await startControlPlane(loadControlPlaneConfig(cfgFile), opts.log);
    cleanups.push(() => cp.stop());
    if (cp.xdsPort === null) throw new Error('the control plane started without its xDS server');
    return {
      adminUrl: `http://127.0.0.1:${cp.port}`,
      xdsPort: cp.xdsPort,
      redisUrl,
      tokenFile,
      snapshotPublicKey: `${snapshotKeyFile}.pub`,
      // Dated 2020: any snapshot the control plane publishes is newer, so the sidecar takes it (an older one is refused as a rollback).
      signedDemoSnapshot: signSnapshot(opts.demoSnapshot, snapshotKey, new Date('2020-01-01T00:00:00Z')),
      token,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** PostgreSQL on <dir>/postgres (initialised on first use, kept across restarts). */
async function startStackPostgres(dir: string, port: number, say: (msg: string) => void): Promise<ChildProcess> {
  const bin = findPostgresBinDir();
  if (bin === null) throw new Error('PostgreSQL server binaries not found');
  const as = postgresRunAs();
  const pgDir = join(dir, 'postgres');
  const data = join(pgDir, 'data');
  mkdirSync(pgDir, { recursive: true });
  if (as.uid !== undefined) chownSync(pgDir, as.uid, as.gid ?? as.uid);
  if (!existsSync(join(data, 'PG_VERSION'))) {
    say(`[stack] initialising PostgreSQL in ${data}`);
    initPostgres(bin, data, as);
  }
  const started = spawnPostgres(bin, data, pgDir, port, as, { durable: true });
  try {
    await started.ready;
  } catch (err) {
    await killProcess(started.proc);
    throw err;
  }
  return started.proc;
}

/** A new ES256 key pair: its public JWK becomes <dir>/admin-jwks.json, its private half signs the operator's token and is then dropped. */
async function adminToken(dir: string): Promise<string> {
  const kid = `local-${Date.now().toString(36)}`;
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  writeFileSync(join(dir, 'admin-jwks.json'), JSON.stringify({ keys: [jwk] }));
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ['igw:admin:write'] })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setIssuer(ADMIN_ISSUER)
    .setAudience(ADMIN_AUDIENCE)
    .setSubject('local-operator')
    .setIssuedAt(now)
    .setExpirationTime(now + TOKEN_TTL_SECONDS)
    .sign(privateKey);
}

/**
 * The demo models as control plane resources, so they stay routed once the control plane's snapshot replaces the
 * file one: each model and a deployment on its static cluster. Created only when missing (409: already there).
 * ha-demo's fallback over an aggregate cluster has no admin API form yet: it is not among them.
 */
export async function seedDemoModels(adminUrl: string, token: string, upstreamAddress: string): Promise<void> {
  const post = async (path: string, body: unknown): Promise<void> => {
    const res = await fetch(`${adminUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201 && res.status !== 409) throw new Error(`seeding ${path}: ${res.status} ${await res.text()}`);
  };
  const demo = [
    {
      id: 'gpt-demo',
      endpoints: ['chat', 'completions', 'messages'],
      upstreamModel: 'demo-model',
      provider: 'openai',
      price: { inputPerMillion: '0.5', outputPerMillion: '1.5' },
    },
    { id: 'embed-demo', endpoints: ['embeddings'], upstreamModel: 'demo-embedder', provider: 'openai' },
    {
      id: 'claude-demo',
      endpoints: ['messages', 'count_tokens', 'chat'],
      upstreamModel: 'demo-claude',
      provider: 'anthropic',
      price: { inputPerMillion: '3', cachedInputPerMillion: '0.3', outputPerMillion: '15' },
    },
  ];
  for (const m of demo) {
    await post('/v1/models', { id: m.id, endpoints: m.endpoints });
    await post('/v1/deployments', {
      id: `${m.id}-local`,
      model: m.id,
      cluster: 'demo-upstream',
      provider: m.provider,
      upstreamModel: m.upstreamModel,
      address: upstreamAddress,
      ...(m.price === undefined ? {} : { price: m.price }),
    });
  }
}
