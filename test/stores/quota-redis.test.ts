/**
 * RedisQuotaStore as several sidecars see it: admission stays exact when two
 * stores race on the same limits, a dead or stalled Redis fails a decision
 * within commandTimeoutMs (never queued), the same store works again once
 * Redis is back (script reloaded after NOSCRIPT), one admit is one round
 * trip, and the semantics hold on Redis' own clock (`TIME`, real waiting).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import type { Decision, LimitSpec } from '../../src/stores/quota/port.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';

const TIMEOUT_MS = 250;
const DAY = 86_400_000;
/** A window so long that the test never crosses a bucket boundary. */
const FOREVER = 1_000_000_000_000;
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

function sidecar(opts: { url?: string; prefix?: string } = {}): RedisQuotaStore {
  return new RedisQuotaStore({ url: opts.url ?? redis.url, keyPrefix: opts.prefix ?? 'qr:', commandTimeoutMs: TIMEOUT_MS, log: pino({ level: 'silent' }) });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure<T>(p: () => Promise<T>): Promise<{ ms: number; err: unknown }> {
  const started = performance.now();
  try {
    await p();
    return { ms: performance.now() - started, err: null };
  } catch (err) {
    return { ms: performance.now() - started, err };
  }
}

async function race(stores: readonly RedisQuotaStore[], tag: string, limits: readonly LimitSpec[], count: number): Promise<Decision[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => (stores[i % stores.length] as RedisQuotaStore).admit(`race-${n++}`, tag, limits)));
}

test('two sidecars, 51 concurrent admits against a window limit of 50 → exactly 50', async (t) => {
  const a = sidecar();
  const b = sidecar();
  try {
    const tag = `org-${n++}`;
    const limits: LimitSpec[] = [
      { kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 50, windowMs: FOREVER, cost: 1 },
      { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1_000_000, windowMs: FOREVER, cost: 100 },
    ];
    const started = performance.now();
    const decisions = await race([a, b], tag, limits, 51);
    t.diagnostic(`51 concurrent admits through 2 stores in ${(performance.now() - started).toFixed(1)} ms`);
    assert.equal(decisions.filter((d) => d.admitted).length, 50);
    const remaining = decisions.filter((d) => d.admitted).map((d) => d.states[0]?.remaining).sort((x, y) => (x as number) - (y as number));
    assert.deepEqual(remaining, Array.from({ length: 50 }, (_, i) => i), 'each admission saw a distinct count');
    // The denied one charged nothing: 50 × 100 tokens.
    const probe = await a.admit('probe', tag, [{ kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1_000_000, windowMs: FOREVER, cost: 0 }]);
    assert.equal(probe.states[0]?.remaining, 1_000_000 - 5000);
    // And again, many more than the limit at once: still none beyond it.
    const more = await race([a, b], tag, limits, 40);
    assert.equal(more.filter((d) => d.admitted).length, 0);
  } finally {
    await a.close();
    await b.close();
  }
});

test('two sidecars, 51 concurrent admits against a concurrency limit of 50 → exactly 50; settling frees slots', async () => {
  const a = sidecar();
  const b = sidecar();
  try {
    const tag = `org-${n++}`;
    const limits: LimitSpec[] = [{ kind: 'concurrency', name: 'requests:concurrent', key: 'conc', limit: 50, leaseMs: 60_000 }];
    const ids = Array.from({ length: 51 }, () => `c-${n++}`);
    const decisions = await Promise.all(ids.map((id, i) => (i % 2 === 0 ? a : b).admit(id, tag, limits)));
    assert.equal(decisions.filter((d) => d.admitted).length, 50);
    const held = ids.filter((_, i) => decisions[i]?.admitted === true);
    assert.equal(await admin.zcard(`qr:{${tag}}:conc`), 50);
    // Settle 10 through the other sidecar, then 11 race for the 10 free slots.
    await Promise.all(held.slice(0, 10).map((id, i) => (i % 2 === 0 ? b : a).settle(id, tag, { tokenDelta: 0 })));
    const second = await race([a, b], tag, limits, 11);
    assert.equal(second.filter((d) => d.admitted).length, 10);
    assert.equal(await admin.zcard(`qr:{${tag}}:conc`), 50);
  } finally {
    await a.close();
    await b.close();
  }
});

test('one admit = one round trip (a single EVALSHA); EVAL only after NOSCRIPT', async (t) => {
  const store = sidecar();
  const mon = await admin.duplicate().monitor();
  const seen: string[][] = [];
  mon.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') seen.push(args);
  });
  try {
    const tag = `org-${n++}`;
    const limits: LimitSpec[] = [
      { kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 100, burst: 100 },
      { kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 100, windowMs: 60_000, cost: 1 },
      { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 100_000, windowMs: 60_000, cost: 500 },
      { kind: 'day', name: 'tokens:tpd', key: 'tpd', limit: 1_000_000, utcOffsetMs: 19_800_000, cost: 500 },
      { kind: 'concurrency', name: 'requests:concurrent', key: 'conc', limit: 10, leaseMs: 30_000 },
    ];
    await store.admit('warm-up', tag, limits); // connection setup (CLIENT SETNAME, INFO) is not part of a decision
    await sleep(50);
    const own = (): string[][] => seen.filter((a) => a[0]?.toLowerCase() !== 'monitor');

    seen.length = 0;
    await store.admit('r1', tag, limits);
    await sleep(50);
    const admitCmds = own().map((a) => a[0]?.toLowerCase());
    t.diagnostic(`admit with 5 limits → client commands: ${JSON.stringify(admitCmds)}`);
    assert.deepEqual(admitCmds, ['evalsha']);

    seen.length = 0;
    await store.settle('r1', tag, { tokenDelta: -200 });
    await sleep(50);
    const settleCmds = own().map((a) => a[0]?.toLowerCase());
    t.diagnostic(`settle → client commands: ${JSON.stringify(settleCmds)}`);
    assert.deepEqual(settleCmds, ['evalsha']);

    await admin.script('FLUSH');
    seen.length = 0;
    await store.admit('r2', tag, limits);
    await sleep(50);
    const afterFlush = own().map((a) => a[0]?.toLowerCase());
    t.diagnostic(`after SCRIPT FLUSH → ${JSON.stringify(afterFlush)}`);
    assert.deepEqual(afterFlush, ['evalsha', 'eval']);
    seen.length = 0;
    await store.admit('r3', tag, limits);
    await sleep(50);
    assert.deepEqual(
      own().map((a) => a[0]?.toLowerCase()),
      ['evalsha'],
    );
  } finally {
    mon.disconnect();
    await store.close();
  }
});

test('every key of a decision carries the {tag} hash tag under the prefix', async () => {
  const store = sidecar({ prefix: 'tagcheck:' });
  try {
    const limits: LimitSpec[] = [
      { kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 1, burst: 5 },
      { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1000, windowMs: 60_000, cost: 10 },
      { kind: 'day', name: 'requests:rpd', key: 'rpd', limit: 1000, utcOffsetMs: 0, cost: 1 },
      { kind: 'concurrency', name: 'requests:concurrent', key: 'conc', limit: 5, leaseMs: 1000 },
    ];
    await store.admit('req-1', 'acme', limits);
    const keys = (await admin.keys('tagcheck:*')).sort();
    assert.deepEqual(keys, ['tagcheck:{acme}:conc', 'tagcheck:{acme}:rpd', 'tagcheck:{acme}:rps', 'tagcheck:{acme}:tpm', 'tagcheck:{acme}:res:req-1'].sort());
    const res = await admin.hgetall('tagcheck:{acme}:res:req-1');
    assert.deepEqual(Object.keys(res).sort(), ['l:tagcheck:{acme}:conc', 't:tagcheck:{acme}:tpm']);
    const ttl = await admin.pttl('tagcheck:{acme}:res:req-1');
    assert.ok(ttl > 60_000 && ttl <= 61_000, `reservation TTL = leaseMs + 60 s (${ttl})`);
    // Braces in a tag are encoded, so they cannot end the hash tag early; an empty tag still gets one.
    await store.admit('y', 'od}d{', limits);
    await store.admit('z', '', limits);
    const odd = (await admin.keys('tagcheck:{od*')).sort();
    assert.ok(odd.length === 5 && odd.every((k) => k.startsWith('tagcheck:{od%7dd%7b}:')), JSON.stringify(odd));
    assert.equal((await admin.keys('tagcheck:{%}:*')).length, 5);
  } finally {
    await store.close();
  }
});

test("Redis' own clock: rate refill, short window, lease expiry and day index with real waiting", async () => {
  const store = sidecar();
  try {
    const tag = `org-${n++}`;
    const rate: LimitSpec[] = [{ kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 10, burst: 2 }];
    assert.equal((await store.admit('a', tag, rate)).admitted, true);
    assert.equal((await store.admit('b', tag, rate)).admitted, true);
    const d = await store.admit('c', tag, rate);
    assert.equal(d.admitted, false);
    if (!d.admitted) assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 100, `${d.retryAfterMs}`);
    await sleep(120);
    assert.equal((await store.admit('d', tag, rate)).admitted, true);

    const win: LimitSpec[] = [{ kind: 'window', name: 'requests:rps', key: 'w', limit: 3, windowMs: 500, cost: 1 }];
    for (let i = 0; i < 3; i++) assert.equal((await store.admit(`w${i}`, tag, win)).admitted, true);
    const wd = await store.admit('w3', tag, win);
    assert.equal(wd.admitted, false);
    if (!wd.admitted) await sleep(wd.retryAfterMs + 20);
    assert.equal((await store.admit('w4', tag, win)).admitted, true, 'admitted after retryAfterMs');
    await sleep(1100); // two windows later nothing counts
    const fresh = await store.admit('w5', tag, win);
    assert.equal(fresh.states[0]?.remaining, 2);

    const conc: LimitSpec[] = [{ kind: 'concurrency', name: 'requests:concurrent', key: 'c', limit: 1, leaseMs: 200 }];
    assert.equal((await store.admit('l1', tag, conc)).admitted, true); // never settled: a dead sidecar
    assert.equal((await store.admit('l2', tag, conc)).admitted, false);
    await sleep(250);
    assert.equal((await store.admit('l3', tag, conc)).admitted, true, 'the expired lease was reclaimed');

    for (const off of [5.5 * 3_600_000, -8 * 3_600_000]) {
      const key = `day${off}`;
      const dd = await store.admit(`d${off}`, tag, [{ kind: 'day', name: 'requests:rpd', key, limit: 10, utcOffsetMs: off, cost: 1 }]);
      const idx = Math.floor((dd.now + off) / DAY);
      assert.deepEqual(await admin.hkeys(`qr:{${tag}}:${key}`), [String(idx)]);
      assert.equal(dd.states[0]?.resetMs, (idx + 1) * DAY - off - dd.now);
      assert.ok(Math.abs(dd.now - Date.now()) < 1000, 'now comes from Redis TIME');
    }
  } finally {
    await store.close();
  }
});

test('Redis killed: admit/settle throw within commandTimeoutMs; restarted on the same port: the same store works again', async (t) => {
  const store = sidecar();
  const tag = `org-${n++}`;
  const limits: LimitSpec[] = [{ kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 1000, windowMs: 60_000, cost: 1 }];
  try {
    assert.equal((await store.admit('before', tag, limits)).admitted, true);
    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const { ms, err } = await measure(() => store.admit(`down-${i}`, tag, limits));
      t.diagnostic(`Redis down → admit threw in ${ms.toFixed(1)} ms (${err instanceof Error ? err.message : String(err)})`);
      assert.ok(err instanceof Error);
      assert.ok(ms <= TIMEOUT_MS + 100, `${ms} ms`);
      await sleep(100);
    }
    const s = await measure(() => store.settle('before', tag, { tokenDelta: 0 }));
    t.diagnostic(`Redis down → settle threw in ${s.ms.toFixed(1)} ms`);
    assert.ok(s.err instanceof Error && s.ms <= TIMEOUT_MS + 100);
    await redis.start();
    const started = performance.now();
    for (;;) {
      try {
        const d = await store.admit('after', tag, limits);
        assert.equal(d.admitted, true);
        break;
      } catch {
        if (performance.now() - started > 5000) throw new Error('the store did not recover within 5 s');
        await sleep(50);
      }
    }
    t.diagnostic(`restarted Redis → the same store admits again after ${(performance.now() - started).toFixed(0)} ms (script reloaded via NOSCRIPT → EVAL)`);
  } finally {
    await redis.start();
    await store.close();
  }
});

test('a stalled Redis (CLIENT PAUSE): admit throws at ~commandTimeoutMs, then works again', async (t) => {
  const store = sidecar();
  const tag = `org-${n++}`;
  const limits: LimitSpec[] = [{ kind: 'concurrency', name: 'requests:concurrent', key: 'c', limit: 100, leaseMs: 60_000 }];
  try {
    await store.admit('warm', tag, limits);
    await admin.call('CLIENT', 'PAUSE', '800', 'ALL');
    const { ms, err } = await measure(() => store.admit('stalled', tag, limits));
    t.diagnostic(`stalled Redis → admit threw in ${ms.toFixed(1)} ms (${err instanceof Error ? err.message : String(err)})`);
    assert.ok(err instanceof Error);
    assert.ok(ms >= TIMEOUT_MS - 10 && ms <= TIMEOUT_MS + 100, `${ms} ms`);
    await sleep(800);
    const started = performance.now();
    for (;;) {
      try {
        await store.admit('resumed', tag, limits);
        break;
      } catch {
        if (performance.now() - started > 3000) throw new Error('no recovery within 3 s');
        await sleep(50);
      }
    }
  } finally {
    await store.close();
  }
});

test('Redis never reachable or a black hole: the first admit fails within commandTimeoutMs', async (t) => {
  const sockets = new Set<Socket>();
  const hole = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => hole.listen(0, '127.0.0.1', res));
  const addr = hole.address();
  const holePort = typeof addr === 'object' && addr !== null ? addr.port : 0;
  const closed = createServer();
  await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
  const caddr = closed.address();
  const closedPort = typeof caddr === 'object' && caddr !== null ? caddr.port : 0;
  await new Promise<void>((res) => closed.close(() => res()));
  const limits: LimitSpec[] = [{ kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 10, windowMs: 60_000, cost: 1 }];
  for (const [label, port] of [
    ['refused', closedPort],
    ['black hole', holePort],
  ] as const) {
    const store = sidecar({ url: `redis://127.0.0.1:${port}` });
    try {
      for (let i = 0; i < 2; i++) {
        const { ms, err } = await measure(() => store.admit(`x${i}`, 'org', limits));
        t.diagnostic(`${label} → admit threw in ${ms.toFixed(1)} ms`);
        assert.ok(err instanceof Error);
        assert.ok(ms <= TIMEOUT_MS + 100, `${ms} ms`);
      }
    } finally {
      await store.close();
    }
  }
  for (const s of sockets) s.destroy();
  await new Promise<void>((res) => hole.close(() => res()));
});
