/**
 * Revocation across replicas, end to end: two gateway replicas — each its
 * own real Envoy in front of its own sidecar process, both on the same Redis —
 * and a control plane on a real PostgreSQL. Keys created through the admin
 * API serve on both replicas (each has then cached the key's record); each
 * key revoked through the admin API is refused (401) on both replicas within
 * 1 s of the revoke call. The delays measured are printed as test
 * diagnostics (`node --test test/e2e/control-plane-replicas.test.ts`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { adminCall, controlledSidecar, startControlPlaneFor, type AdminAnswer, type TestControlPlane } from '../helpers/control-plane.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { replica, startSidecarProcess, startTestStack, type SidecarProcess, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const KEYS = 5;

let redis: TestRedis;
let postgres: TestPostgres;
let stack: TestStack;
let cp: TestControlPlane;
let second: { sidecar: SidecarProcess; envoy: EnvoyProcess } | null = null;
/** The base URL of each replica's Envoy. */
const replicas: string[] = [];

interface Body {
  key?: string;
  id?: string;
  status?: string;
}

const call = (method: string, path: string, token: string, body?: unknown, ifMatch?: string): Promise<AdminAnswer<Body>> =>
  adminCall<Body>(cp.adminUrl, method, path, { token, body, ifMatch });

before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  stack = await startTestStack({ withoutSidecar: true, config: controlledSidecar(redis.url) });
  cp = await startControlPlaneFor(stack, { postgresUrl: await postgres.createDatabase('control_plane_replicas'), redisUrl: redis.url });
  // The second replica: the same sidecar config (its own socket, audit file and key), behind its own Envoy.
  const r = replica(stack.files.dir, 1);
  const sidecar = await startSidecarProcess(stack.files.configFile, r.env);
  const envoy = await startEnvoy({
    workDir: join(stack.files.dir, 'envoy-1'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: r.socket,
      clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: stack.upstream.port }],
    }),
  });
  second = { sidecar, envoy };
  replicas.push(stack.baseURL, `http://127.0.0.1:${await envoy.listenerPort()}/v1`);
});

after(async () => {
  if (cp !== undefined && cp.process.exitCode === null && cp.process.signalCode === null) cp.process.kill('SIGKILL');
  if (second !== null) {
    await second.envoy.stop();
    await second.sidecar.stop();
  }
  await stack.stop();
  await Promise.all([redis.stop(), postgres.stop()]);
});

async function chat(baseURL: string, key: string): Promise<number> {
  const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
  try {
    await client.chat.completions.create({ model: 'cp-replicated', messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return Number(err.status ?? 0);
    throw err;
  }
}

test('a key revoked through the admin API is refused within 1 s on both replicas', async (t) => {
  const admin = await cp.token('ops-alice', ['igw:admin:write']);
  assert.equal((await call('POST', '/v1/models', admin, { id: 'cp-replicated', endpoints: ['chat'] })).status, 201);
  const dep = await call('POST', '/v1/deployments', admin, {
    id: 'demo',
    model: 'cp-replicated',
    cluster: 'demo-upstream',
    upstreamModel: 'cp-upstream',
    address: `127.0.0.1:${stack.upstream.port}`,
  });
  assert.equal(dep.status, 201, JSON.stringify(dep.body));
  assert.equal((await call('POST', '/v1/tenants', admin, { id: 'research', org: 'acme' })).status, 201);
  const keys: Array<{ id: string; key: string }> = [];
  for (let i = 0; i < KEYS; i++) {
    const created = await call('POST', '/v1/keys', admin, { principal: `user-${i}`, org: 'acme', tenant: 'research' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    keys.push({ id: created.body.id ?? '', key: created.body.key ?? '' });
  }
  // Every key serves on both replicas first: each replica has the key's record cached when it is revoked.
  for (const base of replicas)
    for (const k of keys)
      await waitFor(async () => (await chat(base, k.key)) === 200, { what: `key ${k.id} to serve on ${base}`, timeoutMs: 2000, intervalMs: 20 });

  const delays: number[][] = replicas.map(() => []);
  /** How long each revoke call took to answer (it waits for the push to Redis). */
  const answers: number[] = [];
  for (const k of keys) {
    const got = await call('GET', `/v1/keys/${k.id}`, admin);
    const sentAt = performance.now();
    const revoked = await call('POST', `/v1/keys/${k.id}/revoke`, admin, undefined, got.etag ?? '');
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.status, 'revoked');
    answers.push(performance.now() - sentAt);
    // Both replicas polled side by side from the moment the API answered; the delay counts from the call's start.
    await Promise.all(
      replicas.map(async (base, i) => {
        await waitFor(async () => (await chat(base, k.key)) === 401, { what: `key ${k.id} to be refused on replica ${i}`, timeoutMs: 1000, intervalMs: 10 });
        delays[i]?.push(performance.now() - sentAt);
      }),
    );
  }
  t.diagnostic(`revoke calls answered after ${answers.map((x) => x.toFixed(0)).join(', ')} ms`);
  for (const [i, d] of delays.entries()) {
    assert.equal(d.length, KEYS);
    const worst = Math.max(...d);
    t.diagnostic(
      `replica ${i}: revoked key refused, counting from the revoke call, after ${d.map((x) => x.toFixed(0)).join(', ')} ms (worst ${worst.toFixed(0)} ms)`,
    );
    assert.ok(worst < 1000, `replica ${i} refused a revoked key only after ${worst} ms`);
  }
  // A key not revoked still serves on both.
  const kept = await call('POST', '/v1/keys', admin, { principal: 'kept', org: 'acme', tenant: 'research' });
  for (const base of replicas)
    await waitFor(async () => (await chat(base, kept.body.key ?? '')) === 200, { what: `a live key to serve on ${base}`, timeoutMs: 2000, intervalMs: 20 });
});
