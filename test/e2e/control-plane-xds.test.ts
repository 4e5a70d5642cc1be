/**
 * Backends through the control plane and xDS, end to end: Envoy starts with
 * no upstream cluster at all and takes them from the control plane's ADS
 * server (`xds` in its config). A model and two deployments created over the
 * admin API — a cluster Envoy has never heard of — serve the official OpenAI
 * client within 2 s, nothing restarted; traffic is spread over both
 * backends; a deployment deleted over the API stops receiving traffic; with
 * an active health check a backend that dies is taken out and every request
 * reaches the healthy one; with the control plane killed Envoy keeps the
 * last clusters it was given.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { adminCall, controlledSidecar, startControlPlaneFor, type AdminAnswer, type TestControlPlane } from '../helpers/control-plane.ts';
import { freePort, unusedPort } from '../helpers/ports.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let postgres: TestPostgres;
let stack: TestStack;
let cp: TestControlPlane;
let adminUrl: string;
let backendA: DemoUpstream;
let backendB: DemoUpstream;

async function call(method: string, path: string, body?: unknown, ifMatch?: string): Promise<AdminAnswer<Record<string, unknown>>> {
  return adminCall(adminUrl, method, path, { token: await cp.token('ops', ['igw:admin:write']), body, ifMatch });
}

/** Envoy's admin stats, name → value. */
async function envoyStats(): Promise<Map<string, string>> {
  const text = await (await fetch(`http://127.0.0.1:${stack.envoy.adminPort}/stats`)).text();
  return new Map(text.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as [string, string]));
}

before(async () => {
  [redis, postgres, backendA, backendB] = await Promise.all([startRedis(), startPostgres(), startDemoUpstream({ port: 0 }), startDemoUpstream({ port: 0 })]);
  const xdsPort = await freePort();
  stack = await startTestStack({ withoutSidecar: true, xds: { port: xdsPort }, config: controlledSidecar(redis.url) });
  cp = await startControlPlaneFor(stack, { postgresUrl: await postgres.createDatabase('control_plane'), redisUrl: redis.url, xds: { port: xdsPort } });
  adminUrl = cp.adminUrl;
  // Envoy retries its ADS stream with a backoff: wait until it is connected before timing anything.
  await waitFor(async () => (await envoyStats()).get('control_plane.connected_state') === '1', {
    what: () => `Envoy connected to the control plane's xDS server:\n${cp.output()}`,
    timeoutMs: 30_000,
    intervalMs: 100,
  });
});

after(async () => {
  if (cp !== undefined && cp.process.exitCode === null && cp.process.signalCode === null) cp.process.kill('SIGKILL');
  await stack?.stop();
  await Promise.all([redis?.stop(), postgres?.stop(), backendA?.close(), backendB?.close()]);
});

async function chat(key: string): Promise<number> {
  try {
    await new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 }).chat.completions.create({
      model: 'pool-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return Number(err.status ?? 0);
    throw err;
  }
}

const served = (u: DemoUpstream): number => u.requests.filter((r) => r.path === '/v1/chat/completions').length;

/** Envoy's dynamic cluster of that name, as /config_dump shows it (null when it has none). */
async function dynamicCluster(name: string): Promise<Record<string, unknown> | null> {
  const body = (await (await fetch(`http://127.0.0.1:${stack.envoy.adminPort}/config_dump?resource=dynamic_active_clusters`)).json()) as {
    configs?: Array<{ cluster?: Record<string, unknown> }>;
  };
  return body.configs?.find((c) => c.cluster?.['name'] === name)?.cluster ?? null;
}

test('a deployment addressed by DNS name reaches Envoy as a STRICT_DNS cluster and serves; weight 0 drains an endpoint without a NACK', async () => {
  assert.equal((await call('POST', '/v1/models', { id: 'dns-model', endpoints: ['chat'] })).status, 201);
  const bad = await call('POST', '/v1/deployments', { id: 'bad', model: 'dns-model', cluster: 'cp-dns', upstreamModel: 'u', address: 'under_score.local:80' });
  assert.equal(bad.status, 422);
  assert.match(JSON.stringify(bad.body), /"field":\s*"address"/);
  const byName = await call('POST', '/v1/deployments', {
    id: 'dns-a',
    model: 'dns-model',
    cluster: 'cp-dns',
    upstreamModel: 'dns-upstream',
    address: `localhost:${backendA.port}`,
  });
  assert.equal(byName.status, 201, JSON.stringify(byName.body));
  assert.equal((await call('POST', '/v1/tenants', { id: 'dns-team', org: 'acme' })).status, 201);
  const key = String((await call('POST', '/v1/keys', { principal: 'dana', org: 'acme', tenant: 'dns-team', models: ['dns-model'] })).body['key']);
  const ask = async (): Promise<number> => {
    try {
      await new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 }).chat.completions.create({
        model: 'dns-model',
        messages: [{ role: 'user', content: 'hi' }],
      });
      return 200;
    } catch (err) {
      if (err instanceof OpenAI.APIError) return Number(err.status ?? 0);
      throw err;
    }
  };
  const t0 = performance.now();
  await waitFor(async () => (await ask()) === 200, { what: 'the DNS-named backend to serve', timeoutMs: 2000, intervalMs: 50 });
  assert.ok(performance.now() - t0 < 2000);
  const cluster = await dynamicCluster('cp-dns');
  assert.equal(cluster?.['type'], 'STRICT_DNS');
  assert.equal(cluster?.['eds_cluster_config'], undefined);

  // A second endpoint by address on the same cluster, then the first drained with weight 0: Envoy (which refuses
  // an endpoint of weight 0) is given the cluster without it, and every request reaches the other.
  const second = await call('POST', '/v1/deployments', {
    id: 'dns-b',
    model: 'dns-model',
    cluster: 'cp-dns',
    upstreamModel: 'dns-upstream',
    address: `127.0.0.1:${backendB.port}`,
  });
  assert.equal(second.status, 201, JSON.stringify(second.body));
  const a = await call('GET', '/v1/deployments/dns-a');
  assert.equal((await call('PATCH', '/v1/deployments/dns-a', { weight: 0 }, a.etag ?? '')).status, 200);
  await waitFor(
    async () => {
      const before = served(backendA);
      for (let i = 0; i < 10; i++) assert.equal(await ask(), 200);
      return served(backendA) === before;
    },
    { what: 'the drained endpoint to receive nothing', timeoutMs: 5000, intervalMs: 50 },
  );
  const bBefore = served(backendB);
  for (let i = 0; i < 10; i++) assert.equal(await ask(), 200);
  assert.equal(served(backendB) - bBefore, 10, 'every request reaches the endpoint left');
  assert.equal((await envoyStats()).get('cluster_manager.cds.update_rejected'), '0', 'Envoy rejected no cluster update');
});

test('a deployment addressed by an IPv6 address (in brackets) reaches Envoy as an EDS endpoint and serves', async () => {
  const v6 = await startDemoUpstream({ port: 0, host: '::1' });
  try {
    assert.equal((await call('POST', '/v1/models', { id: 'v6-model', endpoints: ['chat'] })).status, 201);
    const bare = await call('POST', '/v1/deployments', { id: 'v6-bad', model: 'v6-model', cluster: 'cp-v6', upstreamModel: 'u', address: `::1:${v6.port}` });
    assert.equal(bare.status, 422, 'an IPv6 address without brackets is ambiguous and refused');
    const created = await call('POST', '/v1/deployments', {
      id: 'v6-a',
      model: 'v6-model',
      cluster: 'cp-v6',
      upstreamModel: 'v6-upstream',
      address: `[::1]:${v6.port}`,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await call('POST', '/v1/tenants', { id: 'v6-team', org: 'acme' })).status, 201);
    const key = String((await call('POST', '/v1/keys', { principal: 'vic', org: 'acme', tenant: 'v6-team', models: ['v6-model'] })).body['key']);
    const client = new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
    await waitFor(
      async () => {
        try {
          await client.chat.completions.create({ model: 'v6-model', messages: [{ role: 'user', content: 'hi' }] });
          return true;
        } catch {
          return false;
        }
      },
      { what: 'the IPv6 backend to serve', timeoutMs: 5000, intervalMs: 50 },
    );
    assert.equal((v6.requests.at(-1)?.body as { model: string }).model, 'v6-upstream');
    assert.equal((await dynamicCluster('cp-v6'))?.['type'], 'EDS');
  } finally {
    await v6.close();
  }
});

test("a deployment's fallback over the admin API: an aggregate cluster over xDS, a refused connection retried on the backup, the attempt rewritten for it", async () => {
  assert.equal((await call('POST', '/v1/models', { id: 'fb-model', endpoints: ['chat'] })).status, 201);
  const closed = await unusedPort();
  const backup = await call('POST', '/v1/deployments', {
    id: 'fb-backup',
    model: 'fb-model',
    cluster: 'cp-fb-backup',
    upstreamModel: 'backup-upstream',
    address: `127.0.0.1:${backendA.port}`,
    weight: 0, // only failed-over attempts reach it
  });
  assert.equal(backup.status, 201, JSON.stringify(backup.body));
  const missing = await call('POST', '/v1/deployments', {
    id: 'fb-primary',
    model: 'fb-model',
    cluster: 'cp-fb-primary',
    upstreamModel: 'primary-upstream',
    address: `127.0.0.1:${closed}`,
    fallback: ['no-such-deployment'],
  });
  assert.equal(missing.status, 422);
  assert.match(JSON.stringify(missing.body), /fallback\[0\].*no deployment/);
  const primary = await call('POST', '/v1/deployments', {
    id: 'fb-primary',
    model: 'fb-model',
    cluster: 'cp-fb-primary',
    upstreamModel: 'primary-upstream',
    address: `127.0.0.1:${closed}`, // refuses connections
    fallback: ['fb-backup'],
  });
  assert.equal(primary.status, 201, JSON.stringify(primary.body));
  assert.equal((await call('POST', '/v1/tenants', { id: 'fb-team', org: 'acme' })).status, 201);
  const key = String((await call('POST', '/v1/keys', { principal: 'erin', org: 'acme', tenant: 'fb-team', models: ['fb-model'] })).body['key']);
  const client = new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
  const ask = async (): Promise<number> => {
    try {
      await client.chat.completions.create({ model: 'fb-model', messages: [{ role: 'user', content: 'hi' }] });
      return 200;
    } catch (err) {
      if (err instanceof OpenAI.APIError) return Number(err.status ?? 0);
      throw err;
    }
  };
  const before = served(backendA);
  const t0 = performance.now();
  await waitFor(async () => (await ask()) === 200, { what: 'the fallback chain to serve', timeoutMs: 2000, intervalMs: 50 });
  assert.ok(performance.now() - t0 < 2000);
  assert.ok(served(backendA) > before, 'the backup answered');
  const attempt = backendA.requests.at(-1);
  assert.equal((attempt?.body as { model?: string }).model, 'backup-upstream', 'the attempt was rewritten for the backup deployment');
  const aggregate = await dynamicCluster('fallback.fb-primary');
  assert.equal((aggregate?.['cluster_type'] as { name?: string } | undefined)?.name, 'envoy.clusters.aggregate');
  assert.deepEqual((aggregate?.['cluster_type'] as { typed_config?: { clusters?: string[] } }).typed_config?.clusters, ['cp-fb-primary', 'cp-fb-backup']);
  for (let i = 0; i < 5; i++) assert.equal(await ask(), 200, `request ${i} through the fallback`);
  assert.equal((await envoyStats()).get('cluster_manager.cds.update_rejected'), '0', 'Envoy rejected no cluster update');
});

test('backends created, deleted and health-checked over the admin API reach Envoy over xDS; Envoy keeps them without the control plane', async () => {
  assert.equal((await call('POST', '/v1/models', { id: 'pool-model', endpoints: ['chat'] })).status, 201);
  const health = { path: '/v1/models', intervalMs: 200, timeoutMs: 100, unhealthyThreshold: 2, healthyThreshold: 1 };
  for (const [id, b] of [
    ['pool-a', backendA],
    ['pool-b', backendB],
  ] as const) {
    const r = await call('POST', '/v1/deployments', {
      id,
      model: 'pool-model',
      cluster: 'cp-pool', // a cluster no Envoy config names: it exists only over xDS
      upstreamModel: 'pool-upstream',
      address: `127.0.0.1:${b.port}`,
      healthCheck: health,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  assert.equal((await call('POST', '/v1/tenants', { id: 'research', org: 'acme' })).status, 201);
  const created = await call('POST', '/v1/keys', { principal: 'carol', org: 'acme', tenant: 'research', models: ['pool-model'] });
  const key = String(created.body['key']);

  const t0 = performance.now();
  await waitFor(async () => (await chat(key)) === 200, { what: 'the new backend cluster to serve through Envoy', timeoutMs: 2000, intervalMs: 50 });
  assert.ok(performance.now() - t0 < 2000);
  // Both endpoints of the cluster take traffic.
  await waitFor(
    async () => {
      assert.equal(await chat(key), 200);
      return served(backendA) > 0 && served(backendB) > 0;
    },
    // A host added to a health-checked cluster takes traffic once its first check passed.
    { what: 'both backends of the cluster to take traffic', timeoutMs: 5000, intervalMs: 10 },
  ).catch(() => undefined);
  if (served(backendA) === 0 || served(backendB) === 0) {
    const clusters = await (await fetch(`http://127.0.0.1:${stack.envoy.adminPort}/clusters`)).text();
    assert.fail(
      `a ${served(backendA)}, b ${served(backendB)}; Envoy: ${clusters
        .split('\n')
        .filter((l) => l.startsWith('cp-pool'))
        .join('\n')}`,
    );
  }

  // Deleted over the API: B receives nothing more.
  const b = await call('GET', '/v1/deployments/pool-b');
  assert.equal((await call('DELETE', '/v1/deployments/pool-b', undefined, b.etag ?? '')).status, 204);
  await waitFor(
    async () => {
      const before = served(backendB);
      for (let i = 0; i < 10; i++) await chat(key);
      return served(backendB) === before;
    },
    { what: 'traffic to stop reaching the deleted backend', timeoutMs: 5000, intervalMs: 50 },
  );
  const bAfterDelete = served(backendB);
  for (let i = 0; i < 20; i++) assert.equal(await chat(key), 200);
  assert.equal(served(backendB), bAfterDelete, 'the deleted deployment receives no request');

  // Back, then dead: the active health check takes it out, every request reaches A.
  assert.equal(
    (
      await call('POST', '/v1/deployments', {
        id: 'pool-b',
        model: 'pool-model',
        cluster: 'cp-pool',
        upstreamModel: 'pool-upstream',
        address: `127.0.0.1:${backendB.port}`,
        healthCheck: health,
      })
    ).status,
    201,
  );
  await waitFor(
    async () => {
      await chat(key);
      return served(backendB) > bAfterDelete;
    },
    { what: 'the re-added backend to take traffic', timeoutMs: 5000, intervalMs: 20 },
  );
  await backendB.close();
  await waitFor(
    async () =>
      (await envoyStats()).get('cluster.cp-pool.health_check.failure') !== '0' && (await envoyStats()).get('cluster.cp-pool.membership_healthy') === '1',
    {
      what: 'the health check to take the dead backend out',
      timeoutMs: 5000,
      intervalMs: 50,
    },
  );
  for (let i = 0; i < 20; i++) assert.equal(await chat(key), 200, `request ${i} with one backend dead`);

  // The control plane dies: Envoy keeps the clusters it was given.
  const exited = new Promise((resolve) => cp.process.once('exit', resolve));
  cp.process.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 5; i++) assert.equal(await chat(key), 200);
});
