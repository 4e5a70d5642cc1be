/**
 * The control plane end to end, through real Envoy, a real sidecar process,
 * real Redis and a real PostgreSQL: a model, a deployment and a key created
 * through the admin API serve an official OpenAI client within 2 s, with
 * nothing restarted; a revoked key is refused within 1 s; an admin call
 * without the admin role is refused (403) and audited; with the control
 * plane killed the data plane keeps serving; and `audit verify` passes on
 * the admin audit log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { adminCall, controlledSidecar, startControlPlaneFor, type AdminAnswer, type TestControlPlane } from '../helpers/control-plane.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
let redis: TestRedis;
let postgres: TestPostgres;
let stack: TestStack;
let cp: TestControlPlane;
let adminUrl: string;
let auditFile: string;

const token = (sub: string, roles: string[]): Promise<string> => cp.token(sub, roles);

interface Body {
  error?: { code: string; details: Array<{ field: string; message: string }> };
  key?: string;
  id?: string;
  status?: string;
}

interface AdminLine {
  type: string;
  outcome: string;
  status: number;
  path: string;
  method: string;
  action: string;
  actor: { principal: string } | null;
  before: string | null;
  after: string | null;
}

const call = (method: string, path: string, opts: { token?: string; body?: unknown; ifMatch?: string } = {}): Promise<AdminAnswer<Body>> =>
  adminCall<Body>(adminUrl, method, path, opts);

before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  stack = await startTestStack({ withoutSidecar: true, config: controlledSidecar(redis.url) });
  cp = await startControlPlaneFor(stack, { postgresUrl: await postgres.createDatabase('control_plane'), redisUrl: redis.url });
  adminUrl = cp.adminUrl;
  auditFile = cp.auditFile;
});

after(async () => {
  if (cp !== undefined && cp.process.exitCode === null && cp.process.signalCode === null) cp.process.kill('SIGKILL');
  await stack.stop();
  await Promise.all([redis.stop(), postgres.stop()]);
});

function client(key: string): OpenAI {
  return new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 10_000 });
}

async function chat(key: string, model: string): Promise<number> {
  try {
    await client(key).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return Number(err.status ?? 0);
    throw err;
  }
}

test('model, deployment and key created over the admin API serve requests; revoke; refusals audited; data plane survives the control plane', async () => {
  const admin = await token('ops-alice', ['igw:admin:write']);
  const reader = await token('intern-bob', []);

  // Without the admin role: refused and audited; without a token: 401.
  const refused = await call('GET', '/v1/models', { token: reader });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error?.code, 'forbidden');
  assert.equal((await call('POST', '/v1/models', { token: reader, body: { id: 'x', endpoints: ['chat'] } })).status, 403);
  assert.equal((await call('GET', '/v1/models')).status, 401);

  // Validation errors name the field.
  const bad = await call('POST', '/v1/deployments', {
    token: admin,
    body: { id: 'd', model: 'cp-model', cluster: 'demo-upstream', upstreamModel: 'm', address: 'nohost' },
  });
  assert.equal(bad.status, 422);
  assert.ok(
    (bad.body.error?.details ?? []).some((d) => d.field === 'address'),
    JSON.stringify(bad.body),
  );

  const model = await call('POST', '/v1/models', { token: admin, body: { id: 'cp-model', endpoints: ['chat'] } });
  assert.equal(model.status, 201, JSON.stringify(model.body));
  assert.equal(model.etag, '"1"');
  const dep = await call('POST', '/v1/deployments', {
    token: admin,
    body: { id: 'demo', model: 'cp-model', cluster: 'demo-upstream', upstreamModel: 'cp-upstream', address: `127.0.0.1:${stack.upstream.port}` },
  });
  assert.equal(dep.status, 201, JSON.stringify(dep.body));
  assert.equal((await call('POST', '/v1/tenants', { token: admin, body: { id: 'research', org: 'acme' } })).status, 201);
  const created = await call('POST', '/v1/keys', { token: admin, body: { principal: 'carol', org: 'acme', tenant: 'research', models: ['cp-model'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = created.body.key ?? '';
  assert.match(key, /^igw_/);
  const started = performance.now();
  await waitFor(async () => (await chat(key, 'cp-model')) === 200, { what: 'the new key and model to serve through Envoy', timeoutMs: 2000, intervalMs: 50 });
  assert.ok(performance.now() - started < 2000);
  assert.equal((stack.upstream.requests.at(-1)?.body as { model: string }).model, 'cp-upstream', 'routed to the deployment created over the API');
  // Listing shows metadata only.
  const listed = await call('GET', '/v1/keys', { token: admin });
  assert.ok(!JSON.stringify(listed.body).includes(key));
  assert.ok(!JSON.stringify(listed.body).includes('sha256:'));

  // Optimistic concurrency.
  assert.equal((await call('PUT', '/v1/models/cp-model', { token: admin, body: { id: 'cp-model', endpoints: ['chat'] } })).status, 428);
  assert.equal((await call('PATCH', '/v1/models/cp-model', { token: admin, body: { ownedBy: 'x' }, ifMatch: '"7"' })).status, 412);
  const patched = await call('PATCH', '/v1/models/cp-model', { token: admin, body: { ownedBy: 'ml-team' }, ifMatch: '"1"' });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.etag, '"2"');

  // A second key that outlives the control plane; the first one is revoked.
  const second = await call('POST', '/v1/keys', { token: admin, body: { principal: 'dave', org: 'acme', tenant: 'research' } });
  assert.equal(second.status, 201);
  const got = await call('GET', `/v1/keys/${created.body.id ?? ''}`, { token: admin });
  assert.equal(got.etag, '"1"');
  const revoked = await call('POST', `/v1/keys/${created.body.id ?? ''}/revoke`, { token: admin, ifMatch: got.etag ?? '' });
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  assert.equal(revoked.body.status, 'revoked');
  const revokedAt = performance.now();
  await waitFor(async () => (await chat(key, 'cp-model')) === 401, { what: 'the revoked key to be refused', timeoutMs: 1000, intervalMs: 20 });
  assert.ok(performance.now() - revokedAt < 1000);

  // The control plane dies: the data plane keeps serving what it has.
  const exited = new Promise((resolve) => cp.process.once('exit', resolve));
  cp.process.kill('SIGKILL');
  await exited;
  assert.equal(await chat(second.body.key ?? '', 'cp-model'), 200);

  // The admin audit log verifies, and holds the refused call and the mutations.
  const verified = await run(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'audit', 'verify', '--keys', cp.auditPublicKey, auditFile], {
    encoding: 'utf8',
  });
  assert.match(verified.stdout + verified.stderr, /ok/i);
  const records = readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AdminLine)
    .filter((r) => r.type === 'admin');
  const refusal = records.find((r) => r.outcome === 'refused' && r.status === 403 && r.path === '/v1/models' && r.method === 'GET');
  assert.equal(refusal?.actor?.principal, 'intern-bob');
  const revocation = records.find((r) => r.action === 'revoke');
  assert.equal(revocation?.outcome, 'ok');
  assert.equal(revocation?.actor?.principal, 'ops-alice');
  assert.match(String(revocation?.before), /^[0-9a-f]{64}$/);
  assert.notEqual(revocation?.before, revocation?.after);
  assert.ok(records.some((r) => r.status === 401 && r.actor === null));
  assert.ok(!readFileSync(auditFile, 'utf8').includes(key), 'no key in the audit log');
});
