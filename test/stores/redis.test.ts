/**
 * RedisKeyStore as replicas see it: revocation reaches every replica through
 * pub/sub in well under a second, the cache bounds staleness when pub/sub is
 * lost, a dead or stalled Redis fails lookups within the command timeout
 * (→ 503, never acceptance), and the same store recovers when Redis returns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { ApiKeyVerifier, type ApiKeyCredential } from '../../src/stages/auth/api-keys.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { RedisKeyStore } from '../../src/stores/keys/redis.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { captureLog, eventually, makeKey, runKeysCli } from './keys-fixtures.ts';
import { unusedPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const TIMEOUT_MS = 250;
let redis: TestRedis;
let admin: Redis;
let n = 0;

before(async () => {
  redis = await startRedis();
  admin = await adminClient(redis.url);
});
after(async () => {
  admin.disconnect();
  await redis.stop();
});

async function outcome(p: Promise<ApiKeyCredential>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

function replica(prefix: string, opts: { cacheSeconds?: number; now?: () => number; url?: string } = {}) {
  const { log, lines } = captureLog();
  const store = new RedisKeyStore({
    url: opts.url ?? redis.url,
    keyPrefix: prefix,
    commandTimeoutMs: TIMEOUT_MS,
    cacheSeconds: opts.cacheSeconds ?? 30,
    log,
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  const verifier = new ApiKeyVerifier(store, {
    unknownKeyCache: { maxEntries: 1000, ttlSeconds: 30 },
    log,
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
  return { store, verifier, lines };
}

test('two replicas: a key revoked with the CLI is refused by both within 1 s (pub/sub, cache 30 s)', async (t) => {
  const prefix = `r${n++}:`;
  const created = await runKeysCli(['create', '--redis', redis.url, '--prefix', prefix, '--principal', 'alice', '--org', 'acme', '--tenant', 'research']);
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  const id = key.slice(4, 12);
  const a = replica(prefix);
  const b = replica(prefix);
  try {
    await Promise.all([a.store.whenSubscribed(), b.store.whenSubscribed()]);
    assert.equal(await outcome(a.verifier.verify(key)), 'accepted');
    assert.equal(await outcome(b.verifier.verify(key)), 'accepted');
    // Both now serve it from their cache (30 s): only the revocation message can make them refuse in time.

    const revoked = await runKeysCli(['revoke', id, '--redis', redis.url, '--prefix', prefix]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, '', 'revoke prints nothing on stdout');
    assert.match(revoked.stderr, new RegExp(`Revoked key ${id}`));
    const [ta, tb] = await Promise.all([
      eventually(async () => (await outcome(a.verifier.verify(key))) === 'invalid_api_key', 1000, 'replica A to refuse'),
      eventually(async () => (await outcome(b.verifier.verify(key))) === 'invalid_api_key', 1000, 'replica B to refuse'),
    ]);
    // Measured from the CLI's exit (the revocation was committed before it).
    const sinceExit = Date.now() - revoked.exitedAt;
    t.diagnostic(`refused by A after ${ta} ms, B after ${tb} ms of polling; ${sinceExit} ms after the CLI exited (CLI run: ${revoked.ms} ms)`);
    assert.ok(sinceExit < 1000, `${sinceExit} ms`);
    await assert.rejects(a.verifier.verify(key), /has been revoked/);
  } finally {
    await Promise.all([a.store.close(), b.store.close()]);
  }
});

test('a key created with the CLI after replicas saw its id as unknown is accepted within 1 s (negative cache 30 s; issue #14)', async () => {
  const prefix = `r${n++}:`;
  const a = replica(prefix);
  const b = replica(prefix);
  try {
    await Promise.all([a.store.whenSubscribed(), b.store.whenSubscribed()]);
    const made = makeKey();
    // Presented before it exists: both replicas remember the id as unknown (for 30 s without the announcement).
    assert.equal(await outcome(a.verifier.verify(made.key)), 'invalid_api_key');
    assert.equal(await outcome(b.verifier.verify(made.key)), 'invalid_api_key');
    const writer = new RedisKeyStore({
      url: redis.url,
      keyPrefix: prefix,
      commandTimeoutMs: TIMEOUT_MS,
      cacheSeconds: 0,
      subscribe: false,
      log: captureLog().log,
    });
    await writer.create(made.record);
    await writer.close();
    const t0 = Date.now();
    await Promise.all([
      eventually(async () => (await outcome(a.verifier.verify(made.key))) === 'accepted', 1000, 'replica A to accept'),
      eventually(async () => (await outcome(b.verifier.verify(made.key))) === 'accepted', 1000, 'replica B to accept'),
    ]);
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await Promise.all([a.store.close(), b.store.close()]);
  }
});

test('pub/sub lost: a cached record is refused once keyCacheSeconds have passed', async () => {
  const prefix = `r${n++}:`;
  let now = Date.now();
  const r = replica(prefix, { cacheSeconds: 5, now: () => now });
  const k = makeKey();
  try {
    await r.store.create(k.record);
    await r.store.whenSubscribed(); // subscribing drops the cache, so let it happen first
    assert.equal(await outcome(r.verifier.verify(k.key)), 'accepted');
    // Revoke behind the replica's back: written, never published.
    await admin.hset(`${prefix}key:${k.record.id}`, 'revokedAt', String(now));
    now += 4_000;
    assert.equal(await outcome(r.verifier.verify(k.key)), 'accepted', 'served from the cache within keyCacheSeconds');
    now += 1_000;
    assert.equal(await outcome(r.verifier.verify(k.key)), 'invalid_api_key', 'refused once the cache entry is 5 s old');
  } finally {
    await r.store.close();
  }
});

test('a subscriber that reconnects drops its whole cache (messages sent meanwhile are lost)', async () => {
  const prefix = `r${n++}:`;
  const r = replica(prefix, { cacheSeconds: 60 });
  const k = makeKey();
  try {
    await r.store.create(k.record);
    await r.store.whenSubscribed();
    assert.equal(await outcome(r.verifier.verify(k.key)), 'accepted');
    await admin.hset(`${prefix}key:${k.record.id}`, 'revokedAt', String(Date.now()));
    assert.equal(await outcome(r.verifier.verify(k.key)), 'accepted', 'still cached');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const ms = await eventually(async () => (await outcome(r.verifier.verify(k.key))) === 'invalid_api_key', 3000, 'the resubscribed replica to refuse');
    assert.ok(ms < 3000);
  } finally {
    await r.store.close();
  }
});

test('Redis killed: lookups fail with authentication_unavailable within the command timeout; the same store recovers on restart', async (t) => {
  const prefix = `r${n++}:`;
  let now = Date.now();
  const r = replica(prefix, { cacheSeconds: 5, now: () => now });
  const cached = makeKey();
  const fresh = makeKey();
  const later = makeKey();
  try {
    await r.store.create(cached.record);
    await r.store.create(fresh.record);
    await r.store.whenSubscribed();
    assert.equal(await outcome(r.verifier.verify(cached.key)), 'accepted');

    await redis.kill();
    // At least five lookups, and on until one finds the store knowing Redis is down (waiting to reconnect),
    // so both the first lookups after the crash and those during the outage are covered.
    const timings: number[] = [];
    const sawUnreachable = (): boolean => r.lines.some((l) => l['msg'] === 'API key store lookup failed' && /unreachable/.test(String(l['err'])));
    await waitFor(
      async () => {
        const started = performance.now();
        assert.equal(await outcome(r.verifier.verify(fresh.key)), 'authentication_unavailable');
        timings.push(Math.round(performance.now() - started));
        return timings.length >= 5 && sawUnreachable();
      },
      { what: 'the key store to report Redis unreachable', intervalMs: 10 },
    );
    t.diagnostic(`lookups while Redis is down took ${timings.join(', ')} ms (commandTimeout ${TIMEOUT_MS} ms)`);
    for (const ms of timings) assert.ok(ms <= TIMEOUT_MS + 150, `${ms} ms`);
    // A record cached before the outage is served until its cache entry expires, then refused with 503.
    assert.equal(await outcome(r.verifier.verify(cached.key)), 'accepted');
    now += 5_000;
    assert.equal(await outcome(r.verifier.verify(cached.key)), 'authentication_unavailable');
    assert.ok(r.lines.some((l) => l['msg'] === 'API key store lookup failed' && l['keyId'] === fresh.record.id));
    assert.ok(!JSON.stringify(r.lines).includes(fresh.key), 'the key is never logged');

    await redis.start(); // same port, empty (no persistence)
    const restarted = Date.now();
    await eventually(async () => (await outcome(r.verifier.verify(fresh.key))) !== 'authentication_unavailable', 5000, 'the store to reconnect');
    const recovery = Date.now() - restarted;
    t.diagnostic(`store answered again ${recovery} ms after Redis restarted`);
    assert.ok(recovery < 2500, `${recovery} ms`);
    // The data did not survive the restart: the key is now unknown, not accepted.
    assert.equal(await outcome(r.verifier.verify(fresh.key)), 'invalid_api_key');
    await r.store.create(later.record);
    assert.equal(await outcome(r.verifier.verify(later.key)), 'accepted');
    // Pub/sub works again on the same store.
    await r.store.whenSubscribed();
    const cli = await runKeysCli(['revoke', later.record.id, '--redis', redis.url, '--prefix', prefix]);
    assert.equal(cli.code, 0, cli.stderr);
    await eventually(async () => (await outcome(r.verifier.verify(later.key))) === 'invalid_api_key', 1000, 'the revocation after recovery');
  } finally {
    await redis.start();
    await r.store.close();
  }
});

test('Redis never reachable: the first lookup fails fast (lazy connect), never accepts', async (t) => {
  const port = await unusedPort();
  const r = replica('x:', { url: `redis://127.0.0.1:${port}` });
  try {
    const started = performance.now();
    assert.equal(await outcome(r.verifier.verify(makeKey().key)), 'authentication_unavailable');
    const ms = performance.now() - started;
    t.diagnostic(`refused connection → 503 in ${ms.toFixed(1)} ms`);
    assert.ok(ms <= TIMEOUT_MS + 150);
  } finally {
    await r.store.close();
  }
});

test('a Redis that accepts connections but never answers: 503 within the command timeout', async (t) => {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  const r = replica('x:', { url: `redis://127.0.0.1:${port}` });
  try {
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      assert.equal(await outcome(r.verifier.verify(makeKey().key)), 'authentication_unavailable');
      const ms = performance.now() - started;
      t.diagnostic(`black hole → 503 in ${ms.toFixed(1)} ms`);
      assert.ok(ms <= TIMEOUT_MS + 150, `${ms} ms`);
    }
  } finally {
    await r.store.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((res) => srv.close(() => res()));
  }
});

test('a stalled Redis (CLIENT PAUSE): the command times out at commandTimeoutMs → 503, then works again', async (t) => {
  const prefix = `r${n++}:`;
  const r = replica(prefix);
  const k = makeKey();
  try {
    await r.store.create(k.record);
    const other = makeKey();
    await r.store.create(other.record);
    await admin.call('CLIENT', 'PAUSE', '800', 'ALL');
    const started = performance.now();
    assert.equal(await outcome(r.verifier.verify(k.key)), 'authentication_unavailable');
    const ms = performance.now() - started;
    t.diagnostic(`stalled Redis → 503 in ${ms.toFixed(1)} ms`);
    assert.ok(ms >= TIMEOUT_MS - 10 && ms <= TIMEOUT_MS + 150, `${ms} ms`);
    await eventually(async () => (await outcome(r.verifier.verify(other.key))) === 'accepted', 3000, 'Redis to answer again');
  } finally {
    await r.store.close();
  }
});

test('a corrupt record is a store error (503), not a missing key and not an acceptance', async () => {
  const prefix = `r${n++}:`;
  const r = replica(prefix);
  const k = makeKey();
  try {
    await r.store.create(k.record);
    await admin.hset(`${prefix}key:${k.record.id}`, 'models', 'not json');
    assert.equal(await outcome(r.verifier.verify(k.key)), 'authentication_unavailable');
    assert.ok(r.lines.some((l) => typeof l['err'] === 'string' && l['err'].includes('models')));
  } finally {
    await r.store.close();
  }
});
