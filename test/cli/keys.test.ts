/**
 * `inference-gateway keys …` run as operators run it: a child process
 * (`node src/cli/main.ts keys …`), key on stdout alone, everything else on
 * stderr, against a key file and a private Redis.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { hashApiKey, parseApiKey } from '../../src/crypto/api-key-format.ts';
import { ApiKeyVerifier } from '../../src/stages/auth/api-keys.ts';
import { ApiKeyEntrySchema } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { FileKeyStore } from '../../src/stores/keys/file.ts';
import { RedisKeyStore } from '../../src/stores/keys/redis.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { captureLog, runKeysCli } from '../stores/keys-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'igw-keys-cli-'));
let redis: TestRedis;
let n = 0;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

const GRANTS = ['--principal', 'alice', '--org', 'acme', '--tenant', 'research'];

/** The one stdout line a key-printing command must produce. */
function onlyKey(stdout: string): string {
  const lines = stdout.split('\n');
  assert.equal(lines.length, 2, `stdout must be the key alone on one line: ${JSON.stringify(stdout)}`);
  assert.equal(lines[1], '');
  const key = lines[0] ?? '';
  assert.ok(parseApiKey(key).ok, key);
  return key;
}

async function outcome(v: ApiKeyVerifier, key: string): Promise<string> {
  try {
    await v.verify(key);
    return 'accepted';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

test('create without a store prints the key once and an auth.apiKeys entry that validates', async () => {
  const r = await runKeysCli([
    'create',
    ...GRANTS,
    '--tier',
    'premium',
    '--role',
    'batch',
    '--model',
    'gpt-demo',
    '--endpoint',
    'chat',
    '--expires',
    '2030-01-01T00:00:00Z',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const key = onlyKey(r.stdout);
  assert.ok(!r.stderr.includes(key), 'the key is not repeated on stderr');
  const yamlPart = r.stderr.slice(r.stderr.indexOf('- id:'));
  const [entry] = parse(yamlPart) as unknown[];
  const parsed = ApiKeyEntrySchema.parse(entry);
  assert.equal(parsed.hash, hashApiKey(key));
  assert.equal(parsed.id, key.slice(4, 12));
  assert.deepEqual(
    [parsed.tier, parsed.roles, parsed.models, parsed.endpoints, parsed.expiresAt],
    ['premium', ['batch'], ['gpt-demo'], ['chat'], '2030-01-01T00:00:00.000Z'],
  );
});

test('usage errors exit 2 with a message on stderr; operational errors exit 1', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['create', '--principal', 'alice'], 2, /--principal, --org and --tenant are required/],
    [['create', ...GRANTS, '--endpoint', 'images'], 2, /--endpoint/],
    [['create', '--principal', 'has space', '--org', 'a', '--tenant', 'b'], 2, /--principal: must be 1-64 characters/],
    [['create', ...GRANTS, '--expires', 'tomorrow'], 2, /--expires/],
    [['list'], 2, /--redis URL or --file PATH/],
    [['list', '--redis', redis.url, '--file', 'x.yaml'], 2, /either --redis or --file/],
    [['revoke', 'not-an-id', '--file', 'x.yaml'], 2, /is not a key id/],
    [['rotate', 'AAAAAAAA', '--file', 'x.yaml', '--grace', 'soon'], 2, /not a duration/],
    [['create', ...GRANTS, '--bogus'], 2, /bogus/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [['revoke', 'AAAAAAAA', '--file', join(dir, 'missing.yaml')], 1, /cannot be read/],
  ];
  for (const [args, exit, message] of cases) {
    await t.test(`keys ${args.join(' ').replace(dir, '<dir>')}`, async () => {
      const r = await runKeysCli(args);
      assert.equal(r.code, exit, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    });
  }
});

test('--file: create, list, rotate, revoke edit the key file atomically; a FileKeyStore serves the result', async () => {
  const path = join(dir, `keys-${n++}.yaml`);
  const c1 = await runKeysCli(['create', ...GRANTS, '--file', path]);
  assert.equal(c1.code, 0, c1.stderr);
  const key1 = onlyKey(c1.stdout);
  const id1 = key1.slice(4, 12);
  assert.match(c1.stderr, new RegExp(`Created key ${id1} for alice`));
  const c2 = await runKeysCli(['create', '--principal', 'bob', '--org', 'acme', '--tenant', 'ops', '--file', path]);
  const key2 = onlyKey(c2.stdout);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const text = readFileSync(path, 'utf8');
  assert.ok(!text.includes(key1) && !text.includes(key1.slice(12, 44)), 'only hashes are stored');
  assert.ok(text.includes(hashApiKey(key1)));

  const { log } = captureLog();
  const store = new FileKeyStore(path, { log, pollMs: 50 });
  let now = Date.now();
  const v = new ApiKeyVerifier(store, { unknownKeyCache: { maxEntries: 100, ttlSeconds: 1 }, now: () => now });
  try {
    assert.equal(await outcome(v, key1), 'accepted');
    assert.equal(await outcome(v, key2), 'accepted');

    const listed = await runKeysCli(['list', '--file', path]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^ID\s+PRINCIPAL\s+ORG\s+TENANT\s+TIER\s+STATUS/);
    assert.match(listed.stdout, new RegExp(`^${id1}\\s+alice\\s+acme\\s+research\\s+standard\\s+active`, 'm'));
    assert.ok(!listed.stdout.includes('sha256:'), 'no hashes unless asked');
    const withHashes = await runKeysCli(['list', '--file', path, '--show-hashes']);
    assert.ok(withHashes.stdout.includes(hashApiKey(key1)));

    const rotated = await runKeysCli(['rotate', id1, '--file', path, '--grace', '1h']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const key3 = onlyKey(rotated.stdout);
    const id3 = key3.slice(4, 12);
    assert.match(rotated.stderr, new RegExp(`Rotated key ${id1} → ${id3}`));
    const entries = parse(readFileSync(path, 'utf8')) as Array<Record<string, unknown>>;
    const old = entries.find((e) => e['id'] === id1);
    const fresh = entries.find((e) => e['id'] === id3);
    assert.equal(old?.['replacedBy'], id3);
    const graceEnd = Date.parse(String(old?.['expiresAt']));
    assert.ok(Math.abs(graceEnd - (Date.now() + 3_600_000)) < 10_000, String(old?.['expiresAt']));
    assert.deepEqual([fresh?.['principal'], fresh?.['org'], fresh?.['tenant']], ['alice', 'acme', 'research']);

    await store.refresh();
    assert.equal(await outcome(v, key1), 'accepted', 'old key during grace');
    assert.equal(await outcome(v, key3), 'accepted', 'new key');
    now = graceEnd;
    assert.equal(await outcome(v, key1), 'invalid_api_key', 'old key after grace');
    assert.equal(await outcome(v, key3), 'accepted');

    const inode = statSync(path).ino;
    const revoked = await runKeysCli(['revoke', key2.slice(4, 12), '--file', path]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.notEqual(statSync(path).ino, inode, 'replaced by rename, not rewritten in place');
    assert.equal(revoked.stdout, '');
    await store.refresh();
    assert.equal(await outcome(v, key2), 'invalid_api_key');
    const after = await runKeysCli(['list', '--file', path, '--json']);
    const rows = JSON.parse(after.stdout) as Array<{ id: string; status: string; hash?: string }>;
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id, r.status])), { [id1]: 'active', [key2.slice(4, 12)]: 'revoked', [id3]: 'active' });
    assert.ok(rows.every((r) => r.hash === undefined));
    const again = await runKeysCli(['revoke', key2.slice(4, 12), '--file', path]);
    assert.equal(again.code, 0);
    assert.match(again.stderr, /already revoked/);
    const rotateRevoked = await runKeysCli(['rotate', key2.slice(4, 12), '--file', path]);
    assert.equal(rotateRevoked.code, 1);
    assert.match(rotateRevoked.stderr, /is revoked/);
  } finally {
    await store.close();
  }
});

test('--file keeps a JSON file JSON', async () => {
  const path = join(dir, `keys-${n++}.json`);
  writeFileSync(path, '[]');
  const r = await runKeysCli(['create', ...GRANTS, '--file', path]);
  assert.equal(r.code, 0, r.stderr);
  const key = onlyKey(r.stdout);
  const data = JSON.parse(readFileSync(path, 'utf8')) as Array<{ hash: string }>;
  assert.equal(data[0]?.hash, hashApiKey(key));
});

test('--redis: create, list, rotate, revoke; a replica sees each change', async () => {
  const prefix = `cli${n++}:`;
  const at = ['--redis', redis.url, '--prefix', prefix];
  const { log } = captureLog();
  const store = new RedisKeyStore({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 500, cacheSeconds: 30, log });
  const v = new ApiKeyVerifier(store, { unknownKeyCache: { maxEntries: 100, ttlSeconds: 30 } });
  try {
    await store.whenSubscribed();
    const c = await runKeysCli(['create', ...GRANTS, '--model', 'gpt-demo', ...at]);
    assert.equal(c.code, 0, c.stderr);
    const key = onlyKey(c.stdout);
    const id = key.slice(4, 12);
    assert.match(c.stderr, new RegExp(`Created key ${id} .* in redis://127\\.0\\.0\\.1:${redis.port}`));
    const cred = await v.verify(key);
    assert.deepEqual(cred.models, new Set(['gpt-demo']));

    const listed = await runKeysCli(['list', ...at]);
    assert.match(listed.stdout, new RegExp(`^${id}\\s+alice\\s+acme\\s+research\\s+standard\\s+active\\s+-`, 'm'));
    assert.ok(!listed.stdout.includes('sha256:'));

    const rotated = await runKeysCli(['rotate', id, ...at, '--grace', '0']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const next = onlyKey(rotated.stdout);
    // Grace 0: the old key is refused at once, even though the replica had it cached for 30 s.
    await waitFor(async () => (await outcome(v, key)) === 'invalid_api_key', { what: 'the rotation to reach the replica', timeoutMs: 1000, intervalMs: 10 });
    assert.equal(await outcome(v, next), 'accepted');
    const listed2 = await runKeysCli(['list', ...at, '--show-hashes']);
    assert.match(listed2.stdout, new RegExp(`^${id}\\s+alice.*expired.*${next.slice(4, 12)}\\s+sha256:`, 'm'));

    const revoked = await runKeysCli(['revoke', next.slice(4, 12), ...at]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stderr, /within a second/);
    await waitFor(async () => (await outcome(v, next)) === 'invalid_api_key', { what: 'the revocation to reach the replica', timeoutMs: 1000, intervalMs: 10 });
    const unknown = await runKeysCli(['revoke', 'AAAAAAAA', ...at]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /key AAAAAAAA not found/);
  } finally {
    await store.close();
  }
});

test('--redis with nothing listening fails quickly with exit 1', async () => {
  const r = await runKeysCli(['list', '--redis', 'redis://127.0.0.1:1', '--timeout-ms', '500']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unreachable|connect/);
  assert.ok(r.ms < 3000, `${r.ms} ms`);
});

test('hash reads a key on stdin', async () => {
  const made = await runKeysCli(['create', ...GRANTS]);
  const key = onlyKey(made.stdout);
  const r = await runKeysCli(['hash'], { stdin: `${key}\n` });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${hashApiKey(key)}\n`);
  const bad = await runKeysCli(['hash'], { stdin: 'igw_nope\n' });
  assert.equal(bad.code, 1);
});
