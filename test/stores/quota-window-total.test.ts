/**
 * The Redis store's running total per window limit (src/stores/quota/redis-script.ts, TOTAL): an admission reads the
 * window's total instead of its 61 sub-windows, and charges and settlements keep that total right. Checked against
 * the memory store, which adds the sub-windows up on every decision: both stores go through the same random stream of
 * admissions and settlements (many per sub-window, settlements that empty or grow the newest sub-window, gaps longer
 * than the window) and must give the same decision, numbers included, every time. Plus what an earlier release's
 * script does to the same hash during a rolling upgrade (charges and settlements that do not follow the total).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { MemoryQuotaStore } from '../../src/stores/quota/memory.ts';
import { RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import type { LimitSpec } from '../../src/stores/quota/port.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const PREFIX = 'wt:';
let clock = T0;
let redis: TestRedis;
let admin: Redis;

before(async () => {
  redis = await startRedis();
  admin = await adminClient(redis.url);
});
after(async () => {
  admin.disconnect();
  await redis.stop();
});

const stores = (): { memory: MemoryQuotaStore; redis: RedisQuotaStore } => ({
  memory: new MemoryQuotaStore({ now: () => clock }),
  redis: new RedisQuotaStore({ url: redis.url, keyPrefix: PREFIX, commandTimeoutMs: 2000, log: pino({ level: 'silent' }), now: () => clock }),
});

test('memory and Redis decide a random stream of window admissions and settlements the same, number for number', async () => {
  const { memory, redis: red } = stores();
  try {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const tag = 'org-random';
    const limits = (cost: number): LimitSpec[] => [
      { kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 40, windowMs: 60_000, cost: 1 },
      { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 3000, windowMs: 60_000, cost },
      // 167 ms sub-windows: the total is rebuilt far more often than it is trusted.
      { kind: 'window', name: 'tokens:t10s', key: 't10s', limit: 900, windowMs: 10_000, cost },
    ];
    const open: Array<{ id: string; cost: number }> = [];
    let admitted = 0;
    let refused = 0;
    let settled = 0;
    for (let i = 0; i < 1500; i++) {
      // Mostly several requests per sub-window (the total trusted), sometimes across sub-windows, rarely past the window.
      const r = rnd();
      clock += r < 0.6 ? Math.floor(rnd() * 40) : r < 0.98 ? Math.floor(rnd() * 1500) : 61_000 + Math.floor(rnd() * 30_000);
      if (open.length > 0 && rnd() < 0.5) {
        // Settle one open request: give all of it back (empties its sub-window when it was alone there), some, or more.
        // Often the latest one (the newest sub-window's), so settlements empty the newest sub-window often.
        const k = rnd() < 0.5 ? open.length - 1 : Math.floor(rnd() * open.length);
        const [o] = open.splice(k, 1);
        const s = rnd();
        const tokenDelta = s < 0.3 ? -o!.cost : s < 0.8 ? -Math.floor(o!.cost * rnd()) : Math.floor(200 * rnd());
        await memory.settle(o!.id, tag, { tokenDelta, costDelta: 0 });
        await red.settle(o!.id, tag, { tokenDelta, costDelta: 0 });
        settled++;
        continue;
      }
      const id = `req-${i}`;
      // Some requests reserve no tokens (a charge that leaves its sub-window empty).
      const cost = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * 150);
      const m = await memory.admit(id, tag, limits(cost));
      const d = await red.admit(id, tag, limits(cost));
      assert.deepEqual(d, m, `decision ${i} at +${clock - T0} ms`);
      if (m.admitted) {
        admitted++;
        open.push({ id, cost });
      } else refused++;
    }
    assert.ok(admitted > 300 && refused > 100 && settled > 300, `the stream both admitted (${admitted}), refused (${refused}) and settled (${settled})`);
  } finally {
    await memory.close();
    await red.close();
  }
});

test('a settlement that gives an empty, later sub-window tokens makes it the newest (the reset a refusal reports)', async () => {
  const { memory, redis: red } = stores();
  const tag = 'org-newest';
  const tpm = (cost: number): LimitSpec[] => [{ kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1000, windowMs: 60_000, cost }];
  const both = async (step: (s: MemoryQuotaStore | RedisQuotaStore) => Promise<unknown>): Promise<[unknown, unknown]> => [await step(memory), await step(red)];
  try {
    clock = T0 + 100;
    await both((s) => s.admit('x', tag, tpm(100)));
    // The window moves on (the total rebuilt); y reserves nothing, so its sub-window stays empty and x's is the newest.
    clock = T0 + 1100;
    await both((s) => s.admit('y', tag, tpm(0)));
    // y used 30 tokens after all: its sub-window now counts, and is the newest.
    clock = T0 + 1200;
    await both((s) => s.settle('y', tag, { tokenDelta: 30, costDelta: 0 }));
    clock = T0 + 1300;
    const [m, d] = await both((s) => s.admit('z', tag, tpm(900)));
    assert.equal((m as { admitted: boolean }).admitted, false);
    assert.deepEqual(d, m, 'the refusal reports the same remaining and reset on both stores');
  } finally {
    await memory.close();
    await red.close();
  }
});

test('an earlier release charging or settling the same window (rolling upgrade): counted at once or by the next sub-window', async () => {
  const { redis: red } = stores();
  const key = `${PREFIX}{org-upgrade}:tpm`;
  const tpm = (cost: number): LimitSpec[] => [{ kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1000, windowMs: 60_000, cost }];
  const remaining = async (id: string, cost: number): Promise<number> => {
    const d = await red.admit(id, 'org-upgrade', tpm(cost));
    assert.ok(d.admitted);
    return d.states[0]!.remaining;
  };
  try {
    clock = T0 + 100;
    assert.equal(await remaining('a', 100), 900);
    assert.ok((await admin.hexists(key, '-1')) === 1, 'the total is kept in the hash');
    // An earlier release charges 50 in this sub-window and, taking the total's fields for expired sub-windows, deletes them.
    await admin.hincrby(key, String(Math.floor((T0 + 100) / 1000)), 50);
    await admin.hdel(key, '-1', '-2', '-3');
    clock = T0 + 200;
    assert.equal(await remaining('b', 100), 750, 'its charge is counted by the very next admission (the total rebuilt)');
    // Its settlement of `b`'s sub-window by 200 tokens back, not following the total: trusted until the window moves on.
    await admin.hincrby(key, String(Math.floor((T0 + 200) / 1000)), -200);
    clock = T0 + 300;
    assert.equal(await remaining('c', 10), 740, 'within the same sub-window the total does not see it');
    clock = T0 + 1000;
    assert.equal(await remaining('d', 10), 930, 'one sub-window later it does (the total rebuilt from the sub-windows)');
  } finally {
    await red.close();
  }
});

test("a day's expired buckets go when a new day's bucket is first charged; later charges that day do not read its fields", async () => {
  const { redis: red } = stores();
  const DAY = 86_400_000;
  const key = `${PREFIX}{org-days}:tpd`;
  const tpd: LimitSpec[] = [{ kind: 'day', name: 'tokens:tpd', key: 'tpd', limit: 1e9, utcOffsetMs: 0, cost: 10 }];
  const hkeysCalls = async (): Promise<number> => Number(/cmdstat_hkeys:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
  try {
    const d0 = Math.floor(T0 / DAY);
    clock = T0;
    assert.ok((await red.admit('d0', 'org-days', tpd)).admitted);
    clock = T0 + 2 * DAY;
    assert.ok((await red.admit('d2', 'org-days', tpd)).admitted);
    assert.deepEqual(await admin.hkeys(key), [String(d0 + 2)], 'the bucket of two days before is gone (yesterday would be kept)');
    const before = await hkeysCalls();
    clock = T0 + 2 * DAY + 1000;
    assert.ok((await red.admit('d2b', 'org-days', tpd)).admitted);
    assert.equal(await hkeysCalls(), before, 'a second charge of the same day reads no field names');
    assert.equal(await admin.hget(key, String(d0 + 2)), '20');
  } finally {
    await red.close();
  }
});

test('window and day keys expire after their newest bucket (extended by a new bucket only; a second charge of a bucket leaves the expiry alone)', async () => {
  const { redis: red } = stores();
  const DAY = 86_400_000;
  const GC = 1000;
  const tag = 'org-ttl';
  const limits: LimitSpec[] = [
    { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1e9, windowMs: 60_000, cost: 5 },
    { kind: 'day', name: 'tokens:tpd', key: 'tpd', limit: 1e9, utcOffsetMs: 0, cost: 5 },
  ];
  const pttl = async (key: string): Promise<number> => admin.pttl(`${PREFIX}{${tag}}:${key}`);
  const calls = async (cmd: 'pttl' | 'pexpire'): Promise<number> =>
    Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await admin.info('commandstats'))?.[1] ?? 0);
  try {
    // Expiries are relative to the test clock (Redis' own clock does not move with it): a window bucket of 1 s keeps
    // its key until 60 s after the bucket ends, plus GC; a day bucket until the end of the next day, plus GC.
    clock = T0 + 200;
    assert.ok((await red.admit('a', tag, limits)).admitted);
    const w1 = await pttl('tpm');
    const d1 = await pttl('tpd');
    assert.ok(w1 > 60_000 && w1 <= 60_800 + GC, `window key expires in ${w1} ms`);
    assert.ok(d1 > DAY && d1 <= 2 * DAY + GC, `day key expires in ${d1} ms`);
    // The same buckets again, later in the same second: the expiry is neither read nor set.
    const [t0, e0] = [await calls('pttl'), await calls('pexpire')];
    clock = T0 + 700;
    assert.ok((await red.admit('b', tag, limits)).admitted);
    // (Each admission sets its reservation record's expiry: one PEXPIRE.)
    assert.deepEqual([await calls('pttl'), await calls('pexpire')], [t0, e0 + 1], 'a charge of an existing bucket leaves the expiry alone');
    // A new sub-window (the day's bucket is the same): its key's expiry is read and moved to the new bucket's.
    clock = T0 + 1200;
    assert.ok((await red.admit('c', tag, limits)).admitted);
    assert.deepEqual([await calls('pttl'), await calls('pexpire')], [t0 + 1, e0 + 3], "only the new sub-window's key has its expiry moved");
    assert.ok((await pttl('tpm')) > 60_000);
  } finally {
    await red.close();
  }
});
