/**
 * RedisQuotaStore as several sidecars see it: admission stays exact when two
 * stores race on the same limits, a dead or stalled Redis fails a decision
 * within commandTimeoutMs (never queued), the same store works again once
 * Redis is back (script reloaded after NOSCRIPT), one admit is one round
 * trip (the settlements of one turn one per tag), and the semantics hold on Redis' own clock (`TIME`, real waiting).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import type { Decision, LimitSpec } from '../../src/stores/quota/port.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { unusedPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

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

/** Redis' own clock (TIME), in epoch ms: the script decides on it, so waits are for it to reach a point. */
async function redisNow(): Promise<number> {
  const [sec, usec] = (await admin.time()) as [string | number, string | number];
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

/** Resolves once Redis' clock reads `epochMs` or later. */
async function untilRedisTime(epochMs: number, what: string): Promise<void> {
  await waitFor(async () => (await redisNow()) >= epochMs, { what: `Redis TIME to reach ${what}`, intervalMs: 5 });
}

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
    const remaining = decisions
      .filter((d) => d.admitted)
      .map((d) => d.states[0]?.remaining)
      .sort((x, y) => (x as number) - (y as number));
    assert.deepEqual(
      remaining,
      Array.from({ length: 50 }, (_, i) => i),
      'each admission saw a distinct count',
    );
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
    await Promise.all(held.slice(0, 10).map((id, i) => (i % 2 === 0 ? b : a).settle(id, tag, { tokenDelta: 0, costDelta: 0 })));
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
  // MONITOR reports commands in the order Redis ran them, so once a marker sent after the store's call shows up,
  // every command of that call has been reported: the commands seen before the marker are all of them.
  let marks = 0;
  const commandsUntilMarker = async (): Promise<string[]> => (await argsUntilMarker()).map((a) => a[0]?.toLowerCase() ?? '');
  const argsUntilMarker = async (): Promise<string[][]> => {
    const mark = `marker-${++marks}`;
    await admin.echo(mark);
    const at = await waitFor(
      () => {
        const i = seen.findIndex((a) => a[0]?.toLowerCase() === 'echo' && a[1] === mark);
        return i >= 0 ? i : undefined;
      },
      { what: `MONITOR to report ${mark}`, intervalMs: 5 },
    );
    const cmds = seen.slice(0, at).filter((a) => a[0]?.toLowerCase() !== 'monitor');
    seen.splice(0, at + 1);
    return cmds;
  };
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
    await commandsUntilMarker();

    await store.admit('r1', tag, limits);
    const admitCmds = await commandsUntilMarker();
    t.diagnostic(`admit with 5 limits → client commands: ${JSON.stringify(admitCmds)}`);
    assert.deepEqual(admitCmds, ['evalsha']);

    await store.settle('r1', tag, { tokenDelta: -200, costDelta: 0 });
    const settleCmds = await commandsUntilMarker();
    t.diagnostic(`settle → client commands: ${JSON.stringify(settleCmds)}`);
    assert.deepEqual(settleCmds, ['evalsha']);

    await admin.script('FLUSH');
    await commandsUntilMarker(); // the FLUSH itself
    await store.admit('r2', tag, limits);
    const afterFlush = await commandsUntilMarker();
    t.diagnostic(`after SCRIPT FLUSH → ${JSON.stringify(afterFlush)}`);
    assert.deepEqual(afterFlush, ['evalsha', 'eval']);
    await store.admit('r3', tag, limits);
    assert.deepEqual(await commandsUntilMarker(), ['evalsha']);

    // Settlements handed in during one turn of the event loop: one EVALSHA per tag, however many requests.
    const other = `org-${n++}`;
    for (let i = 0; i < 6; i++) await store.admit(`b${i}`, i < 4 ? tag : other, limits);
    await commandsUntilMarker();
    const before = await store.admit('probe-1', tag, limits);
    await store.settle('never-admitted', tag, { tokenDelta: 0, costDelta: 0 }); // loads the settle script again (flushed above)
    await commandsUntilMarker();
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => store.settle(`b${i}`, i < 4 ? tag : other, { tokenDelta: -500, costDelta: 0 })));
    const batched = await commandsUntilMarker();
    t.diagnostic(`six settlements of two tags in one turn → ${JSON.stringify(batched)}`);
    assert.deepEqual(batched, ['evalsha', 'evalsha']);
    // Each one took effect: four leases released and 4 × 500 tokens given back under `tag`.
    const after = await store.admit('probe-2', tag, limits);
    const state = (d: Decision, name: string): number => d.states.find((s) => s.name === name)?.remaining ?? -1;
    assert.equal(state(after, 'requests:concurrent'), state(before, 'requests:concurrent') + 4 - 1);
    assert.equal(state(after, 'tokens:tpm'), state(before, 'tokens:tpm') + 4 * 500 - 500);
    await commandsUntilMarker();

    // A settlement still waiting when the next admission is made goes out first, in the same write, and what it
    // releases counts for that admission: no round trip of its own.
    const settling = store.settle('probe-2', tag, { tokenDelta: 0, costDelta: 0 });
    const next = await store.admit('probe-3', tag, limits);
    await settling;
    const rode = await argsUntilMarker();
    assert.deepEqual(
      rode.map((a) => [a[0]?.toLowerCase(), a.find((x) => x.includes(':res:'))]),
      [
        ['evalsha', `qr:{${tag}}:res:probe-2`],
        ['evalsha', `qr:{${tag}}:res:probe-3`],
      ],
    );
    assert.equal(state(next, 'requests:concurrent'), state(after, 'requests:concurrent'), "probe-2's lease was free for probe-3");
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

test("Redis' own clock: rate refill, short window, lease expiry and day index, waiting for Redis TIME to get there", async () => {
  const store = sidecar();
  try {
    const tag = `org-${n++}`;
    const rate: LimitSpec[] = [{ kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 10, burst: 2 }];
    assert.equal((await store.admit('a', tag, rate)).admitted, true);
    assert.equal((await store.admit('b', tag, rate)).admitted, true);
    const d = await store.admit('c', tag, rate);
    assert.equal(d.admitted, false);
    if (!d.admitted) assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 100, `${d.retryAfterMs}`);
    // Redis' clock cannot be moved: wait until it is one refill interval (100 ms at 10/s) past the refusal.
    await untilRedisTime(d.now + 100, 'one refill interval after the refusal');
    assert.equal((await store.admit('d', tag, rate)).admitted, true);

    const win: LimitSpec[] = [{ kind: 'window', name: 'requests:rps', key: 'w', limit: 3, windowMs: 500, cost: 1 }];
    for (let i = 0; i < 3; i++) assert.equal((await store.admit(`w${i}`, tag, win)).admitted, true);
    const wd = await store.admit('w3', tag, win);
    assert.equal(wd.admitted, false);
    if (!wd.admitted) await untilRedisTime(wd.now + wd.retryAfterMs, 'retryAfterMs after the refusal');
    const w4 = await store.admit('w4', tag, win);
    assert.equal(w4.admitted, true, 'admitted after retryAfterMs');
    // Two windows later nothing counts: Redis' clock in the window after the next one.
    await untilRedisTime((Math.floor(w4.now / 500) + 2) * 500, 'two 500 ms windows later');
    const fresh = await store.admit('w5', tag, win);
    assert.equal(fresh.states[0]?.remaining, 2);

    const conc: LimitSpec[] = [{ kind: 'concurrency', name: 'requests:concurrent', key: 'c', limit: 1, leaseMs: 200 }];
    const l1 = await store.admit('l1', tag, conc);
    assert.equal(l1.admitted, true); // never settled: a dead sidecar
    assert.equal((await store.admit('l2', tag, conc)).admitted, false);
    await untilRedisTime(l1.now + 200, 'the end of the 200 ms lease');
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
    // At least three attempts, and on until one finds the store knowing Redis is down (waiting to reconnect),
    // so both the first calls after the crash and the calls during the outage are covered. Each attempt is
    // bounded by the command timeout.
    let attempts = 0;
    let sawUnreachable = false;
    await waitFor(
      async () => {
        const { ms, err } = await measure(() => store.admit(`down-${attempts++}`, tag, limits));
        t.diagnostic(`Redis down → admit threw in ${ms.toFixed(1)} ms (${err instanceof Error ? err.message : String(err)})`);
        assert.ok(err instanceof Error);
        assert.ok(ms <= TIMEOUT_MS + 100, `${ms} ms`);
        sawUnreachable ||= /unreachable/.test(err.message);
        return attempts >= 3 && sawUnreachable;
      },
      { what: 'the store to report Redis unreachable', intervalMs: 10 },
    );
    const s = await measure(() => store.settle('before', tag, { tokenDelta: 0, costDelta: 0 }));
    t.diagnostic(`Redis down → settle threw in ${s.ms.toFixed(1)} ms`);
    assert.ok(s.err instanceof Error && s.ms <= TIMEOUT_MS + 100);
    await redis.start();
    const started = performance.now();
    const d = await waitFor(() => store.admit('after', tag, limits).catch(() => undefined), {
      what: 'the store to admit again after the restart',
      intervalMs: 50,
    });
    assert.equal(d.admitted, true);
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
    // Works again once the pause is over (no waiting for it to end first: attempts fail until then).
    await waitFor(
      () =>
        store.admit('resumed', tag, limits).then(
          () => true,
          () => false,
        ),
      { what: 'the store to work again after CLIENT PAUSE', timeoutMs: 3800, intervalMs: 50 },
    );
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
  const closedPort = await unusedPort();
  const limits: LimitSpec[] = [{ kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 10, windowMs: 60_000, cost: 1 }];
  for (const [label, port] of [
    ['refused', closedPort],
    ['black hole', holePort],
  ] as const) {
    await t.test(label, async (st) => {
      const store = sidecar({ url: `redis://127.0.0.1:${port}` });
      try {
        for (let i = 0; i < 2; i++) {
          const { ms, err } = await measure(() => store.admit(`x${i}`, 'org', limits));
          st.diagnostic(`${label} → admit threw in ${ms.toFixed(1)} ms`);
          assert.ok(err instanceof Error);
          assert.ok(ms <= TIMEOUT_MS + 100, `${ms} ms`);
        }
      } finally {
        await store.close();
      }
    });
  }
  for (const s of sockets) s.destroy();
  await new Promise<void>((res) => hole.close(() => res()));
});
