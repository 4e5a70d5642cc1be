/**
 * `inference-gateway admin` as a child process against a real control plane
 * (in-process, with a private PostgreSQL and Redis, JWT admin auth over
 * HTTP): every verb once per resource kind it applies to, --file (JSON and
 * YAML) and --set bodies, the ETag flow (update reads the ETag and sends
 * If-Match; a stale --if-match is a 412), `keys create`/`rotate` printing the
 * key alone on stdout, API refusals as exit 1 naming the field, the defaults
 * from INFERENCE_GATEWAY_ADMIN_URL / _TOKEN, and usage errors as exit 2.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { parseControlPlaneConfig } from '../../src/control-plane/config.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/main.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { makeKeyPair, mintFor, standardClaims, writeJwksFile, type TestKeyPair } from '../helpers/jwt.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const ISSUER = 'https://idp.test';
let dir: string;
let redis: TestRedis;
let postgres: TestPostgres;
let cp: RunningControlPlane;
let idp: TestKeyPair;
let url: string;
let writer: string;
let reader: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'igw-admin-cli-'));
  [redis, postgres, idp] = await Promise.all([startRedis(), startPostgres(), makeKeyPair('ES256')]);
  generateSigningKey(join(dir, 'cp.pem'));
  writeJwksFile(join(dir, 'jwks.json'), [idp]);
  const raw = {
    listen: { host: '127.0.0.1', port: 0 },
    postgres: { url: await postgres.createDatabase('cp_cli') },
    redis: { url: redis.url },
    routing: { signingKeyFile: 'cp.pem' },
    auth: { jwt: { issuers: [{ issuer: ISSUER, audiences: ['igw-admin'], jwksFile: 'jwks.json', algorithms: ['ES256'] }] } },
    audit: { file: 'admin-audit.jsonl', signingKeyFile: 'admin-audit.pem' },
  };
  cp = await startControlPlane(parseControlPlaneConfig(raw, 'test', dir), createLogger('silent'));
  url = `http://127.0.0.1:${cp.port}`;
  const mint = (sub: string, roles: string[]): Promise<string> =>
    mintFor(idp, standardClaims({ iss: ISSUER, aud: 'igw-admin', sub, nowMs: Date.now() }, { roles }));
  [writer, reader] = await Promise.all([mint('ops-alice', ['igw:admin:write']), mint('intern-bob', ['igw:admin:read'])]);
});

after(async () => {
  await cp.stop();
  await Promise.all([redis.stop(), postgres.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; the URL and the write token come from the environment unless `env` says otherwise. */
function admin(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'src/cli/main.ts'), 'admin', ...args],
      { encoding: 'utf8', env: { ...process.env, INFERENCE_GATEWAY_ADMIN_URL: url, INFERENCE_GATEWAY_ADMIN_TOKEN: writer, ...env } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

function json(r: Run): Record<string, unknown> {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('models, deployments, plans and tenants: create (--set, --file JSON/YAML), list, get, update with the ETag flow, delete', async () => {
  const m1 = json(await admin(['models', 'create', '--set', 'id=m1', '--set', 'endpoints=["chat"]']));
  assert.equal(m1['id'], 'm1');
  assert.equal(m1['version'], 1);
  writeFileSync(join(dir, 'model.yaml'), 'id: m2\nendpoints: [chat, embeddings]\nownedBy: ml-team\n');
  assert.deepEqual(json(await admin(['models', 'create', '--file', join(dir, 'model.yaml')]))['endpoints'], ['chat', 'embeddings']);
  writeFileSync(join(dir, 'dep.json'), JSON.stringify({ id: 'd1', model: 'm1', cluster: 'c1', upstreamModel: 'up', address: '127.0.0.1:9000' }));
  // --set after --file overrides and nests; a quoted JSON string stays a string (prices are decimal strings).
  const d1 = json(
    await admin([
      'deployments',
      'create',
      '--file',
      join(dir, 'dep.json'),
      '--set',
      'weight=5',
      '--set',
      'price.inputPerMillion="2.5"',
      '--set',
      'price.outputPerMillion="10"',
    ]),
  );
  assert.equal(d1['weight'], 5);
  assert.deepEqual(d1['price'], { currency: 'USD', inputPerMillion: '2.5', outputPerMillion: '10' });
  assert.equal(json(await admin(['plans', 'create', '--set', 'name=gold', '--set', 'limits=[{"scope":"key","rpm":60}]']))['name'], 'gold');
  assert.equal(json(await admin(['tenants', 'create', '--set', 'id=research', '--set', 'org=acme', '--set', 'plan=gold']))['plan'], 'gold');

  const listed = json(await admin(['models', 'list'], { INFERENCE_GATEWAY_ADMIN_TOKEN: reader })) as { items: Array<{ id: string }> };
  assert.deepEqual(listed.items.map((i) => i.id).sort(), ['m1', 'm2']);
  const got = await admin(['tenants', 'get', 'research']);
  assert.equal(json(got)['org'], 'acme');
  assert.match(got.stderr, /^ETag: "1"$/m);

  // update reads the ETag itself; twice in a row works because each reads the current one.
  assert.equal(json(await admin(['models', 'update', 'm1', '--set', 'ownedBy=team-a']))['version'], 2);
  const second = json(await admin(['models', 'update', 'm1', '--set', 'ownedBy=team-b']));
  assert.equal(second['version'], 3);
  assert.equal(second['ownedBy'], 'team-b');
  // A stale --if-match is refused by the API (412), bare or quoted.
  const stale = await admin(['models', 'update', 'm1', '--set', 'ownedBy=x', '--if-match', '1']);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /412 version_mismatch/);
  assert.equal(json(await admin(['models', 'update', 'm1', '--set', 'ownedBy=null', '--if-match', '"3"']))['ownedBy'], undefined);

  const deleted = await admin(['deployments', 'delete', 'd1']);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, '');
  const gone = await admin(['deployments', 'get', 'd1']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /404 not_found/);
});

test('keys: create prints the key alone on stdout, rotate likewise, revoke, list shows no key', async () => {
  const created = await admin(['keys', 'create', '--set', 'principal=carol', '--set', 'org=acme', '--set', 'tenant=research', '--set', 'models=["m1"]']);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^igw_\S+\n$/);
  const key = created.stdout.trim();
  const record = JSON.parse(created.stderr.slice(created.stderr.indexOf('{'))) as { id: string; principal: string; key?: string };
  assert.equal(record.principal, 'carol');
  assert.equal(record.key, undefined);
  assert.ok(!created.stderr.includes(key));

  const listed = await admin(['keys', 'list']);
  assert.equal(listed.code, 0);
  assert.ok(listed.stdout.includes(record.id));
  assert.ok(!listed.stdout.includes(key));

  const rotated = await admin(['keys', 'rotate', record.id, '--grace', '1h']);
  assert.equal(rotated.code, 0, rotated.stderr);
  const newKey = rotated.stdout.trim();
  assert.match(newKey, /^igw_/);
  assert.notEqual(newKey, key);
  const after = JSON.parse(rotated.stderr.slice(rotated.stderr.indexOf('{'))) as { replacedBy: string; created: { id: string } };
  assert.equal(after.replacedBy, after.created.id);

  assert.equal(json(await admin(['keys', 'revoke', record.id]))['status'], 'revoked');
  const again = await admin(['keys', 'update', after.created.id, '--set', 'tier=gold']);
  assert.equal(json(again)['tier'], 'gold');
});

test('refusals are exit 1 with the API message naming the field; credentials from flags, files and the environment', async () => {
  const bad = await admin([
    'deployments',
    'create',
    '--set',
    'id=d2',
    '--set',
    'model=m2',
    '--set',
    'cluster=c',
    '--set',
    'upstreamModel=u',
    '--set',
    'address=nohost',
  ]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /422 invalid_body/);
  assert.match(bad.stderr, /^ {2}address: must be host:port: an IPv4 address, an IPv6 address in brackets or a DNS name/m);

  const readOnly = await admin(['tenants', 'create', '--set', 'id=t2', '--set', 'org=acme'], { INFERENCE_GATEWAY_ADMIN_TOKEN: reader });
  assert.equal(readOnly.code, 1);
  assert.match(readOnly.stderr, /403 forbidden: .*igw:admin:write/);
  const anonymous = await admin(['models', 'list'], { INFERENCE_GATEWAY_ADMIN_TOKEN: '' });
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.stderr, /401 unauthenticated/);

  // --token and --token-file win over the environment; --url over INFERENCE_GATEWAY_ADMIN_URL.
  writeFileSync(join(dir, 'token'), `${writer}\n`);
  const env = { INFERENCE_GATEWAY_ADMIN_TOKEN: 'not-a-token', INFERENCE_GATEWAY_ADMIN_URL: 'http://127.0.0.1:1' };
  assert.equal((await admin(['--url', url, '--token-file', join(dir, 'token'), 'models', 'get', 'm2'], env)).code, 0);
  assert.equal((await admin(['--url', url, '--token', writer, 'models', 'get', 'm2'], env)).code, 0);
  const unreachable = await admin(['models', 'list'], env);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
});

test('usage errors are exit 2 and name the problem', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /name a resource/],
    [['widgets', 'list'], /unknown resource 'widgets'/],
    [['models'], /name a verb/],
    [['models', 'frob'], /unknown verb 'frob'/],
    [['models', 'get'], /models get needs an ID/],
    [['models', 'create'], /--file F or --set/],
    [['models', 'create', '--set', 'novalue'], /expected key=value/],
    [['models', 'revoke', 'm1'], /revoke is only for keys/],
    [['models', 'list', 'extra'], /unexpected argument 'extra'/],
    [['models', 'list', '--bogus'], /bogus/],
    [['models', 'create', '--file', join(dir, 'missing.json')], /--file/],
    [['keys', 'rotate', 'x', '--grace', 'soon'], /not a duration/],
    [['--url', 'ftp://x', 'models', 'list'], /http:\/\/ or https:\/\//],
    [['--cert', 'a.pem', 'models', 'list'], /--cert and --key go together/],
  ];
  for (const [args, message] of cases) {
    const r = await admin(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '');
  }
  const help = await admin(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: inference-gateway admin/);
});
