/**
 * Token revocations in a real redis-server: two replicas see a revocation
 * at once (pub/sub), a replica started later reads what was revoked before,
 * one that lost its connection re-reads the set when it is back, and a list
 * that was never read refuses (503) rather than saying "not revoked". The
 * `tokens` CLI writes the same entries.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { RedisTokenRevocations } from '../../src/stores/tokens/revocations.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let redis: TestRedis;
const open: RedisTokenRevocations[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  for (const r of open) await r.close();
  await redis.stop();
});

function replica(prefix = 'igw:'): RedisTokenRevocations {
  const r = new RedisTokenRevocations({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 1000, log: createLogger('silent', process.stderr) });
  open.push(r);
  return r;
}

const ref = (over: Partial<{ subject: string; jti: string | null; tokenSha256: string }> = {}) => ({
  subject: 'app',
  jti: null,
  tokenSha256: '0'.repeat(64),
  ...over,
});

function cli(args: readonly string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'tokens', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

test('a revocation reaches every replica at once; a later replica reads it', async () => {
  const a = replica('t1:');
  const b = replica('t1:');
  assert.equal(await a.start(5000), true);
  assert.equal(await b.start(5000), true);
  assert.equal(b.isRevoked(ref({ subject: 'svc-1' })), false);
  await a.revoke({ kind: 'sub', value: 'svc-1' });
  await waitFor(() => b.isRevoked(ref({ subject: 'svc-1' })), { what: 'replica b to hear the revocation', timeoutMs: 5000 });
  await a.revoke({ kind: 'jti', value: 'j-9' });
  await waitFor(() => b.isRevoked(ref({ jti: 'j-9' })), { what: 'the jti revocation', timeoutMs: 5000 });
  assert.equal(b.isRevoked(ref({ jti: 'j-8' })), false);

  const late = replica('t1:');
  assert.equal(await late.start(5000), true);
  assert.equal(late.isRevoked(ref({ subject: 'svc-1' })), true);
  assert.equal(late.isRevoked(ref({ jti: 'j-9' })), true);
  assert.deepEqual((await late.list()).map((r) => `${r.kind}:${r.value}`).sort(), ['jti:j-9', 'sub:svc-1']);
});

test('a replica whose subscription dropped re-reads the set when it is back (an entry it never heard of is not lost)', async () => {
  const a = replica('t2:');
  assert.equal(await a.start(5000), true);
  const admin = await adminClient(redis.url);
  try {
    // Added without an announcement: only a re-read can find it.
    await admin.sadd('t2:tokens:revoked', 'sub:unheard');
    assert.equal(a.isRevoked(ref({ subject: 'unheard' })), false);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor(() => a.isRevoked(ref({ subject: 'unheard' })), { what: 'the re-read after resubscribing', timeoutMs: 15_000 });
  } finally {
    admin.disconnect();
  }
});

test('a list that was never read refuses with 503 rather than accepting', async () => {
  const unreachable = new RedisTokenRevocations({
    url: 'redis://127.0.0.1:1',
    keyPrefix: 'igw:',
    commandTimeoutMs: 200,
    log: createLogger('silent', process.stderr),
  });
  open.push(unreachable);
  assert.equal(await unreachable.start(300), false);
  assert.throws(
    () => unreachable.isRevoked(ref()),
    (e: unknown) => e instanceof GatewayError && e.code === 'authentication_unavailable',
  );
});

test('the CLI: revoke by subject, jti and a token from stdin (stored as its SHA-256), list; bad usage exits 2', async () => {
  const r = replica('t3:');
  assert.equal(await r.start(5000), true);
  const token = 'opaque-token-value-123';
  const digest = createHash('sha256').update(token).digest('hex');
  for (const args of [['--subject', 'svc-2'], ['--jti', 'j-1'], ['--token-stdin']]) {
    const res = await cli(['revoke', '--redis', redis.url, '--prefix', 't3:', ...args], `${token}\n`);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(!res.stderr.includes(token));
  }
  await waitFor(() => r.isRevoked(ref({ tokenSha256: digest })), { what: 'the token revocation', timeoutMs: 5000 });
  const listed = await cli(['list', '--redis', redis.url, '--prefix', 't3:']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(listed.stdout.trim().split('\n').sort(), [`jti:j-1`, `sha256:${digest}`, 'sub:svc-2']);
  assert.ok(!listed.stdout.includes(token));
  assert.equal((await cli(['revoke', '--redis', redis.url, '--subject', 'a', '--jti', 'b'])).code, 2);
  assert.equal((await cli(['revoke', '--subject', 'a'])).code, 2);
});

test('a withdrawn revocation reaches every replica at once; a re-read and a later replica agree; withdrawing nothing says so', async () => {
  const a = replica('t5:');
  const b = replica('t5:');
  assert.equal(await a.start(5000), true);
  assert.equal(await b.start(5000), true);
  await a.revoke({ kind: 'sub', value: 'reinstated' });
  await a.revoke({ kind: 'jti', value: 'still-revoked' });
  await waitFor(() => b.isRevoked(ref({ subject: 'reinstated' })), { what: 'the revocation at the second replica', timeoutMs: 5000 });
  assert.equal(await a.unrevoke({ kind: 'sub', value: 'reinstated' }), true);
  await waitFor(() => !b.isRevoked(ref({ subject: 'reinstated' })), { what: 'the withdrawal at the second replica', timeoutMs: 5000 });
  assert.equal(a.isRevoked(ref({ subject: 'reinstated' })), false);
  assert.equal(b.isRevoked(ref({ jti: 'still-revoked' })), true, 'only that entry was withdrawn');
  assert.equal(await a.unrevoke({ kind: 'sub', value: 'reinstated' }), false, 'nothing left to withdraw');
  assert.deepEqual(await a.list(), [{ kind: 'jti', value: 'still-revoked' }]);

  // A replica started afterwards, and one that re-reads after losing its subscription, see the same.
  const c = replica('t5:');
  assert.equal(await c.start(5000), true);
  assert.equal(c.isRevoked(ref({ subject: 'reinstated' })), false);
  assert.equal(c.isRevoked(ref({ jti: 'still-revoked' })), true);
  const admin = await adminClient(redis.url);
  try {
    // Removed without an announcement: only a re-read can notice.
    await admin.srem('t5:tokens:revoked', 'jti:still-revoked');
    assert.equal(b.isRevoked(ref({ jti: 'still-revoked' })), true);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor(() => !b.isRevoked(ref({ jti: 'still-revoked' })), { what: 'the re-read after resubscribing', timeoutMs: 15_000 });
  } finally {
    admin.disconnect();
  }
});

test('the CLI: unrevoke withdraws a revocation (exit 0) and says when there was none (exit 1)', async () => {
  const watcher = replica('t6:');
  assert.equal(await watcher.start(5000), true);
  const revoked = await cli(['revoke', '--redis', redis.url, '--prefix', 't6:', '--subject', 'ops-mistake']);
  assert.equal(revoked.code, 0, revoked.stderr);
  await waitFor(() => watcher.isRevoked(ref({ subject: 'ops-mistake' })), { what: 'the revocation', timeoutMs: 5000 });
  const undone = await cli(['unrevoke', '--redis', redis.url, '--prefix', 't6:', '--subject', 'ops-mistake']);
  assert.equal(undone.code, 0, undone.stderr);
  assert.match(undone.stderr, /Withdrew the revocation sub:ops-mistake/);
  await waitFor(() => !watcher.isRevoked(ref({ subject: 'ops-mistake' })), { what: 'the withdrawal', timeoutMs: 5000 });
  const again = await cli(['unrevoke', '--redis', redis.url, '--prefix', 't6:', '--subject', 'ops-mistake']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /No revocation sub:ops-mistake/);
  const usage = await cli(['unrevoke', '--redis', redis.url, '--prefix', 't6:']);
  assert.equal(usage.code, 2, usage.stderr);
});
