/**
 * The desired state against a real, private PostgreSQL: migrations are
 * idempotent, versions move one per change, a stale version is refused (412)
 * and changes nothing, references are enforced, a change that would make the
 * routing snapshot invalid is rolled back, and key secrets are never stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { hashApiKey } from '../../src/crypto/api-key-format.ts';
import { ApiError } from '../../src/control-plane/errors.ts';
import { migrate, MIGRATIONS } from '../../src/control-plane/migrations.ts';
import { backendsOf } from '../../src/control-plane/backends.ts';
import { buildSnapshot, snapshotProblems } from '../../src/control-plane/snapshot.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { deploymentSatisfies } from '../../src/pipeline/destinations.ts';
import { DesiredStateStore } from '../../src/control-plane/store.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

let pgServer: TestPostgres;
let store: DesiredStateStore;
let url: string;

before(async () => {
  pgServer = await startPostgres();
  url = await pgServer.createDatabase('store_test');
  store = new DesiredStateStore({ url, check: (s) => snapshotProblems(s, 'test') });
});

after(async () => {
  await store.close();
  await pgServer.stop();
});

/**
 * A side pool for reading tables directly. Under load a connection it ended can still be open on the server when the
 * server stops after the last test; the server's goodbye then arrives as an 'error' on the pool, which must not become
 * an uncaught exception of the test process.
 */
function testPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: url });
  pool.on('error', () => undefined);
  return pool;
}

const refusedWith = (status: number, code: string) => (err: unknown) => {
  assert.ok(err instanceof ApiError, String(err));
  assert.equal(err.status, status, err.message);
  assert.equal(err.code, code);
  return true;
};

test('migrations apply once, in a transaction, and a second run applies nothing', async () => {
  assert.deepEqual(await store.migrate(), [1]);
  assert.deepEqual(await store.migrate(), []);
  const pool = testPool();
  try {
    const rows = (await pool.query<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id')).rows;
    assert.deepEqual(
      rows.map((r) => r.id),
      MIGRATIONS.map((m) => m.id),
    );
    // A failing migration leaves neither its tables nor its row behind.
    await assert.rejects(
      migrate(pool, [...MIGRATIONS, { id: 99, name: 'broken', sql: 'CREATE TABLE half_done (x int); SELECT no_such_function();' }]),
      /migration 99 \(broken\) failed/,
    );
    assert.equal((await pool.query<{ t: string | null }>("SELECT to_regclass('half_done') AS t")).rows[0]?.t, null);
    assert.equal((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations WHERE id = 99')).rows[0]?.n, 0);
  } finally {
    await pool.end();
  }
});

test('versions, stale writes (412), references and deletes', async () => {
  const m = await store.create('models', { id: 'chat-a', endpoints: ['chat'], responseModel: 'alias' });
  assert.equal(m.after?.version, 1);
  await assert.rejects(store.create('models', { id: 'chat-a', endpoints: ['chat'], responseModel: 'alias' }), refusedWith(409, 'already_exists'));
  const d = await store.create('deployments', {
    id: 'dep-1',
    model: 'chat-a',
    cluster: 'demo-upstream',
    provider: 'openai',
    upstreamModel: 'demo-model',
    address: '127.0.0.1:9000',
    weight: 1,
    priority: 0,
    labels: {},
  });
  assert.equal(d.after?.version, 1);
  assert.ok(d.revision > m.revision, 'every change bumps the revision');

  const r2 = await store.replace('models', 'chat-a', 1, { id: 'chat-a', endpoints: ['chat', 'completions'], responseModel: 'alias' });
  assert.equal(r2.after?.version, 2);
  // Someone still holding version 1 cannot overwrite version 2.
  await assert.rejects(
    store.replace('models', 'chat-a', 1, { id: 'chat-a', endpoints: ['chat'], responseModel: 'upstream' }),
    refusedWith(412, 'version_mismatch'),
  );
  assert.deepEqual((await store.get('models', 'chat-a')).spec.endpoints, ['chat', 'completions']);

  await assert.rejects(
    store.create('deployments', {
      id: 'dep-x',
      model: 'nope',
      cluster: 'c',
      provider: 'openai',
      upstreamModel: 'm',
      address: 'h:1',
      weight: 1,
      priority: 0,
      labels: {},
    }),
    refusedWith(422, 'invalid_reference'),
  );
  await assert.rejects(store.delete('models', 'chat-a', 2), refusedWith(409, 'in_use'));
  await assert.rejects(store.delete('deployments', 'dep-1', 7), refusedWith(412, 'version_mismatch'));
  await assert.rejects(store.get('models', 'missing'), refusedWith(404, 'not_found'));
});

test('a change that would make the snapshot invalid is rolled back with the field named', async () => {
  const before = await store.state();
  // An Anthropic deployment cannot serve the OpenAI completions endpoint the model lists.
  await assert.rejects(
    store.create('deployments', {
      id: 'dep-bad',
      model: 'chat-a',
      cluster: 'anthropic-api',
      provider: 'anthropic',
      upstreamModel: 'claude',
      address: 'api.example:443',
      weight: 1,
      priority: 0,
      labels: {},
    }),
    (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 422);
      assert.ok(
        err.details.some((p) => p.field.startsWith('models[chat-a].targets') && /does not serve/.test(p.message)),
        JSON.stringify(err.details),
      );
      return true;
    },
  );
  const afterState = await store.state();
  assert.equal(afterState.revision, before.revision, 'nothing committed');
  assert.deepEqual(
    afterState.deployments.map((d) => d.id),
    ['dep-1'],
  );
});

test('the snapshot and the backends of the state', async () => {
  await store.create('deployments', {
    id: 'dep-2',
    model: 'chat-a',
    cluster: 'demo-upstream',
    provider: 'openai',
    upstreamModel: 'demo-model',
    address: '127.0.0.2:9000',
    weight: 3,
    priority: 1,
    labels: {},
    healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 200, unhealthyThreshold: 2, healthyThreshold: 1 },
  });
  const state = await store.state();
  const doc = buildSnapshot(state, 'test');
  assert.equal(doc.version, `cp-${state.revision}`);
  assert.equal(doc.models.length, 1);
  const targets = doc.models[0]?.['targets'] as Array<{ cluster: string; weight: number }>;
  assert.deepEqual(
    targets.map((t) => [t.cluster, t.weight]),
    [['demo-upstream', 1]],
    'one target per cluster and model; only priority 0 weighs',
  );
  assert.deepEqual(backendsOf(state), [
    {
      cluster: 'demo-upstream',
      endpoints: [
        { host: '127.0.0.1', port: 9000, weight: 1, priority: 0, deployment: 'dep-1' },
        { host: '127.0.0.2', port: 9000, weight: 3, priority: 1, deployment: 'dep-2' },
      ],
      healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 200, unhealthyThreshold: 2, healthyThreshold: 1 },
    },
  ]);
});

test('model transforms reach the snapshot as written; one the sidecars would refuse is refused with its field', async () => {
  const m = await store.get('models', 'chat-a');
  const transforms = { defaults: { temperature: 0.2 }, forced: { max_tokens: 256 }, systemPrefix: 'Answer briefly.' };
  await store.replace('models', 'chat-a', m.version, { id: 'chat-a', endpoints: ['chat'], responseModel: 'alias', transforms });
  const doc = buildSnapshot(await store.state(), 'test');
  assert.deepEqual(doc.models[0]?.['transforms'], transforms);
  const again = await store.get('models', 'chat-a');
  await assert.rejects(
    store.replace('models', 'chat-a', again.version, { id: 'chat-a', endpoints: ['chat'], responseModel: 'alias', transforms: { forced: { top_k: 5 } } }),
    (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 422);
      assert.ok(
        err.details.some((p) => p.field.includes('transforms') && p.field.includes('top_k')),
        JSON.stringify(err.details),
      );
      return true;
    },
  );
});

test('deployment trust reaches the snapshot: the target has its id and trust, and the other hosts of its cluster as priorities', async () => {
  const hipaa = { hosting: 'on-prem', attestations: ['hipaa'] };
  const d1 = await store.get('deployments', 'dep-1');
  await store.replace('deployments', 'dep-1', d1.version, { ...(d1.spec as object), trust: hipaa });
  const doc = buildSnapshot(await store.state(), 'test');
  const target = (doc.models[0]?.['targets'] as Array<Record<string, unknown>>)[0];
  assert.equal(target?.['id'], 'dep-1');
  assert.deepEqual(target?.['trust'], { ...hipaa });
  // dep-2 (priority 1 on the same cluster) states no trust: the cluster is not authorized for a rule requiring hipaa.
  assert.deepEqual(target?.['priorities'], [{}]);
  const parsed = parseSnapshot(JSON.stringify(doc), 'cp');
  const rule = { name: 'phi-hipaa', match: {}, require: { attestations: ['hipaa'] }, forbid: {} };
  const deployment = parsed.models.get('chat-a')?.targets[0];
  assert.ok(deployment !== undefined);
  assert.equal(deploymentSatisfies(deployment, rule), false);
  const d2 = await store.get('deployments', 'dep-2');
  await store.replace('deployments', 'dep-2', d2.version, { ...(d2.spec as object), trust: hipaa });
  const both = parseSnapshot(JSON.stringify(buildSnapshot(await store.state(), 'test')), 'cp').models.get('chat-a')?.targets[0];
  assert.ok(both !== undefined);
  assert.equal(deploymentSatisfies(both, rule), true);
});

test('keys: only the hash is stored; revoke and rotate move versions; a tenant must exist', async () => {
  const grants = { principal: 'bob', org: 'acme', tenant: 'team-a', tier: 'standard', roles: [], models: ['*'], endpoints: ['*'] };
  await assert.rejects(store.createKey(grants, null), refusedWith(422, 'invalid_reference'));
  await store.create('plans', { name: 'gold', limits: [{ scope: 'key', rpm: 60 }] });
  await store.create('tenants', { id: 'team-a', org: 'acme', plan: 'gold', labels: {} });
  const c = await store.createKey(grants, null);
  assert.match(c.key, /^igw_/);
  const k = await store.getKey(c.after?.id ?? '');
  assert.equal(k.hash, hashApiKey(c.key));
  const pool = testPool();
  try {
    const dump = JSON.stringify((await pool.query('SELECT * FROM api_keys')).rows);
    assert.ok(!dump.includes(c.key), 'the key itself is stored nowhere');
  } finally {
    await pool.end();
  }
  await assert.rejects(store.revokeKey(k.id, 2), refusedWith(412, 'version_mismatch'));
  const rotated = await store.rotateKey(k.id, 1, 60_000, null);
  assert.equal(rotated.after?.replacedBy, rotated.created.id);
  assert.ok(rotated.after?.expiresAt !== null);
  const revoked = await store.revokeKey(k.id, 2);
  assert.equal(revoked.after?.version, 3);
  assert.ok(revoked.after?.revokedAt !== null);
  await assert.rejects(store.rotateKey(k.id, 3, 0, null), refusedWith(409, 'revoked'));
  await assert.rejects(store.delete('plans', 'gold', 1), refusedWith(409, 'in_use'));
});
