import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';

function write(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'igw-config-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, text);
  return file;
}

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test('an empty config is the embedded defaults, with paths relative to the file', () => {
  const file = write('');
  const c = loadConfig(file, {});
  assert.equal(c.server.admin.port, 9464);
  assert.equal(c.limits.maxBodyBytes, 2 * 1024 * 1024);
  assert.equal(c.audit.file, join(file, '..', 'audit.jsonl'));
  assert.equal(c.routing.snapshotFile, join(file, '..', 'routing.yaml'));
});

test('errors name the path of each bad value', () => {
  const file = write(
    [
      'server:',
      '  admin: { port: 70000 }',
      'auth:',
      '  apiKeys:',
      '    - id: short',
      '      hash: nope',
      '      principal: a',
      '      org: o',
      '      tenant: t',
      'bogus: 1',
    ].join('\n'),
  );
  const p = problems(() => loadConfig(file, {}));
  assert.ok(p.includes('server.admin.port: must be a port number'), p.join('\n'));
  assert.ok(p.includes('auth.apiKeys[0].id: must be the 8-character key id'), p.join('\n'));
  assert.ok(p.includes('auth.apiKeys[0].hash: must be sha256:<64 lower-case hex digits>'), p.join('\n'));
  assert.ok(p.includes('bogus: is not a known setting'), p.join('\n'));
});

test('environment overrides win and are validated too', () => {
  const file = write('server:\n  admin:\n    port: 9000\n');
  const c = loadConfig(file, { INFERENCE_GATEWAY_SERVER__ADMIN__PORT: '9100', INFERENCE_GATEWAY_SERVER__SHUTDOWN_GRACE_MS: '1500' });
  assert.equal(c.server.admin.port, 9100);
  assert.equal(c.server.shutdownGraceMs, 1500);
  const p = problems(() => loadConfig(file, { INFERENCE_GATEWAY_LIMITS__MAX_BODY_BYTES: '-1' }));
  assert.deepEqual(p, ['limits.maxBodyBytes: must be a positive integer']);
});

test('snapshots: valid ones load, bad ones name the path', () => {
  const s = parseSnapshot('version: v1\nmodels:\n  - id: m\n    endpoints: [chat]\n    target: { cluster: c, model: up }\n', 'snap');
  assert.equal(s.version, 'v1');
  assert.equal(s.models.get('m')?.targets[0]?.upstreamModel, 'up');
  const p = problems(() =>
    parseSnapshot(
      'version: v1\nmodels:\n  - id: m\n    endpoints: [chat]\n    target: { cluster: c, model: up }\n  - id: m\n    endpoints: [talk]\n    target: { cluster: "bad cluster", model: up }\n',
      'snap',
    ),
  );
  assert.ok(p.includes('models[1].id: duplicate model id "m"') || p.some((x) => x.startsWith('models[1].endpoints[0]')), p.join('\n'));
  assert.ok(
    p.some((x) => x.startsWith('models[1].target.cluster: must be an Envoy cluster name')),
    p.join('\n'),
  );
});

test('redis.url next to redis.clusterNodes: only when something besides quotas uses it', () => {
  const cluster = 'redis:\n  url: redis://127.0.0.1:6379\n  clusterNodes: ["127.0.0.1:7000"]\n';
  assert.deepEqual(
    problems(() => loadConfig(write(cluster), {})),
    [
      'redis: redis.url is unused: with redis.clusterNodes the quotas use the cluster; keep redis.url only for auth.redisKeys, auth.tokenRevocation, routing.redis or the redis_stream audit sink',
    ],
  );
  assert.equal(loadConfig(write(`${cluster}auth:\n  redisKeys: true\n`), {}).auth.redisKeys, true);
  assert.equal(loadConfig(write(`${cluster}auth:\n  tokenRevocation: true\n`), {}).auth.tokenRevocation, true);
  assert.equal(loadConfig(write(`${cluster}audit:\n  sink: redis_stream\n`), {}).audit.sink, 'redis_stream');
  const pub = write(`${cluster}routing:\n  redis: {}\n  publicKeys: [cp.pem.pub]\n`);
  assert.deepEqual(loadConfig(pub, {}).routing.redis, { key: 'igw:routing:snapshot', channel: 'igw:routing:snapshot:published' });
});

test('audit.durability: the strongest the sink offers by default; combinations the sink cannot keep, and the removed audit.fsync, are refused by name', () => {
  const redis = 'redis:\n  url: redis://127.0.0.1:6379\n';
  assert.equal(loadConfig(write(''), {}).audit.durability, 'fsync');
  assert.equal(loadConfig(write('audit:\n  durability: write\n'), {}).audit.durability, 'write');
  assert.equal(loadConfig(write(`${redis}audit:\n  sink: redis_stream\n`), {}).audit.durability, 'replicated');
  assert.equal(loadConfig(write(`${redis}audit:\n  sink: redis_stream\n  durability: write\n`), {}).audit.durability, 'write');
  const c = loadConfig(write(''), { INFERENCE_GATEWAY_AUDIT__DURABILITY: 'write', INFERENCE_GATEWAY_AUDIT__SYNC_INTERVAL_MS: '0' });
  assert.equal(c.audit.durability, 'write');
  assert.equal(c.audit.syncIntervalMs, 0);
  assert.equal(c.audit.replicas, 1);
  assert.equal(c.audit.replicaWaitMs, 500);
  assert.ok(!('fsync' in c.audit));

  assert.deepEqual(
    problems(() => loadConfig(write('audit:\n  durability: replicated\n'), {})),
    ['audit.durability: replicated needs sink: redis_stream (XADD, then WAIT for audit.replicas replicas); the file sink offers fsync or write'],
  );
  assert.deepEqual(
    problems(() => loadConfig(write(`${redis}audit:\n  sink: redis_stream\n  durability: fsync\n`), {})),
    [
      'audit.durability: fsync applies to the file sink; with sink: redis_stream use replicated (WAIT for audit.replicas replicas) or write (acknowledged by the primary alone)',
    ],
  );
  assert.deepEqual(
    problems(() => loadConfig(write('audit:\n  durability: paranoid\n'), {})),
    ['audit.durability: must be fsync, write or replicated'],
  );
  const removed = 'audit.fsync: was replaced by audit.durability: `fsync` (fdatasync per batch, what fsync: true did) or `write` (what fsync: false did)';
  for (const value of ['true', 'false'])
    assert.deepEqual(
      problems(() => loadConfig(write(`audit:\n  fsync: ${value}\n`), {})),
      [removed],
    );
  assert.deepEqual(
    problems(() => loadConfig(write(''), { INFERENCE_GATEWAY_AUDIT__FSYNC: 'false' })),
    [removed],
  );
});
