/**
 * Quota plans from the control plane, end to end through real Envoy, a real
 * sidecar process, real Redis and a real PostgreSQL: a plan created through
 * the admin API reaches the sidecar in the signed snapshot and limits the
 * keys whose tier it is (the sidecar's config has no plans at all); a plan
 * changed over the API applies without a restart; and a key without a tier
 * of its own follows its tenant's plan when the tenant changes plan.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { adminCall, controlledSidecar, startControlPlaneFor, type AdminAnswer, type TestControlPlane } from '../helpers/control-plane.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
let postgres: TestPostgres;
let stack: TestStack;
let cp: TestControlPlane;

interface Body {
  error?: { code: string };
  key?: string;
  id?: string;
  tier?: string;
}

const call = (method: string, path: string, token: string, body?: unknown, ifMatch?: string): Promise<AdminAnswer<Body>> =>
  adminCall<Body>(cp.adminUrl, method, path, { token, body, ifMatch });

before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  stack = await startTestStack({ withoutSidecar: true, config: controlledSidecar(redis.url) });
  cp = await startControlPlaneFor(stack, { postgresUrl: await postgres.createDatabase('control_plane_quotas'), redisUrl: redis.url });
});

after(async () => {
  if (cp !== undefined && cp.process.exitCode === null && cp.process.signalCode === null) cp.process.kill('SIGKILL');
  await stack.stop();
  await Promise.all([redis.stop(), postgres.stop()]);
});

interface Outcome {
  status: number;
  code: string | null;
  limit: string | null;
}

async function chat(key: string): Promise<Outcome> {
  const client = new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
  try {
    const r = await client.chat.completions.create({ model: 'cp-quota-model', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    return { status: r.response.status, code: null, limit: r.response.headers.get('x-ratelimit-limit-requests') };
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    const code = (err.error as { code?: string } | undefined)?.code ?? err.code ?? null;
    const headers = err.headers as Headers | undefined;
    return { status: Number(err.status ?? 0), code: code === null ? null : String(code), limit: headers?.get('x-ratelimit-limit-requests') ?? null };
  }
}

test('plans created and changed through the admin API limit requests on the sidecar; a tenant change moves its keys to the new plan', async () => {
  const admin = await cp.token('ops-alice', ['igw:admin:write']);
  assert.equal((await call('POST', '/v1/plans', admin, { name: 'cp-gold', limits: [{ scope: 'key', rpm: 2 }] })).status, 201);
  assert.equal((await call('POST', '/v1/plans', admin, { name: 'cp-strict', limits: [{ scope: 'key', rpm: 1 }] })).status, 201);
  assert.equal((await call('POST', '/v1/tenants', admin, { id: 'research', org: 'acme', plan: 'cp-gold' })).status, 201);
  assert.equal((await call('POST', '/v1/models', admin, { id: 'cp-quota-model', endpoints: ['chat'] })).status, 201);
  const dep = await call('POST', '/v1/deployments', admin, {
    id: 'demo',
    model: 'cp-quota-model',
    cluster: 'demo-upstream',
    upstreamModel: 'cp-upstream',
    address: `127.0.0.1:${stack.upstream.port}`,
  });
  assert.equal(dep.status, 201, JSON.stringify(dep.body));
  // No tier: the key's tier is its tenant's plan. A second key names a tier no plan has: it has no quotas.
  const carol = await call('POST', '/v1/keys', admin, { principal: 'carol', org: 'acme', tenant: 'research' });
  assert.equal(carol.status, 201, JSON.stringify(carol.body));
  assert.equal(carol.body.tier, undefined);
  const dave = await call('POST', '/v1/keys', admin, { principal: 'dave', org: 'acme', tenant: 'research', tier: 'unplanned' });
  assert.equal(dave.status, 201);
  const key = carol.body.key ?? '';

  // The first answer that passes is the plan's first request in this minute (refusals before it were 401/404: never counted).
  const first = await waitFor(
    async () => {
      const o = await chat(key);
      return o.status === 200 ? o : null;
    },
    { what: 'the key and model to serve', timeoutMs: 2000, intervalMs: 50 },
  );
  assert.equal(first.limit, '2', "the answer carries the control plane's plan limit");
  assert.equal((await chat(key)).status, 200);
  const refused = await chat(key);
  assert.equal(refused.status, 429);
  assert.equal(refused.code, 'rate_limit_exceeded');
  assert.equal(refused.limit, '2');
  for (let i = 0; i < 4; i++) assert.equal((await chat(dave.body.key ?? '')).status, 200, 'a tier without a plan has no quotas');

  // The plan raised over the API: the same key is admitted again, with no restart.
  const plan = await call('GET', '/v1/plans/cp-gold', admin);
  const raised = await call('PATCH', '/v1/plans/cp-gold', admin, { limits: [{ scope: 'key', rpm: 100 }] }, plan.etag ?? '');
  assert.equal(raised.status, 200, JSON.stringify(raised.body));
  const raisedAt = performance.now();
  const again = await waitFor(
    async () => {
      const o = await chat(key);
      return o.status === 200 ? o : null;
    },
    { what: 'the raised plan to admit the key', timeoutMs: 2000, intervalMs: 20 },
  );
  assert.ok(performance.now() - raisedAt < 2000);
  assert.equal(again.limit, '100');

  // The tenant moves to the strict plan (1 request a minute, already used): its key without a tier follows at once.
  const tenant = await call('GET', '/v1/tenants/research', admin);
  assert.equal((await call('PATCH', '/v1/tenants/research', admin, { plan: 'cp-strict' }, tenant.etag ?? '')).status, 200);
  const movedAt = performance.now();
  const strict = await waitFor(
    async () => {
      const o = await chat(key);
      return o.status === 429 ? o : null;
    },
    { what: "the key to follow its tenant's plan", timeoutMs: 1000, intervalMs: 20 },
  );
  assert.ok(performance.now() - movedAt < 1000);
  assert.equal(strict.limit, '1');
  assert.equal((await chat(dave.body.key ?? '')).status, 200, 'a key with its own tier does not follow the tenant');
});
