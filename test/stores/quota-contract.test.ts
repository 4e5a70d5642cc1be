/**
 * One contract, both quota stores: MemoryQuotaStore (injected clock) and
 * RedisQuotaStore (a private redis-server) decide the same requests with the
 * same numbers. Time: both run on a stepped test clock — the Redis store via
 * its test-only `now` option, which makes the script use that time instead of
 * Redis `TIME` — so exact boundaries (next token, bucket end, local midnight,
 * lease expiry) are checked on both. The same behaviour on Redis' own clock,
 * with real waiting, is in quota-redis.test.ts.
 *
 * Also: the circuit breaker (src/stores/quota/breaker.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { MemoryQuotaStore } from '../../src/stores/quota/memory.ts';
import { RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import { CircuitBreaker, CircuitOpenError } from '../../src/stores/quota/breaker.ts';
import type { Decision, LimitSpec, QuotaStore } from '../../src/stores/quota/port.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const DAY = 86_400_000;
/** A multiple of 60 s (bucket starts line up with it). */
const T0 = Date.parse('2026-03-01T10:00:00.000Z');

let clock = T0;
let n = 0;
let redis: TestRedis;
let admin: Redis;
const PREFIX = 'qc:';

before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin.disconnect();
  await redis.stop();
});

interface Harness {
  readonly store: QuotaStore;
  /** Bucket fields of a window/day limit's hash (Redis only; null for memory). */
  fields(tag: string, key: string): Promise<string[] | null>;
}

const harnesses: Record<'memory' | 'redis', () => Harness> = {
  memory: () => ({ store: new MemoryQuotaStore({ now: () => clock }), fields: async () => null }),
  redis: () => ({
    store: new RedisQuotaStore({ url: redis.url, keyPrefix: PREFIX, commandTimeoutMs: 1000, log: pino({ level: 'silent' }), now: () => clock }),
    fields: async (tag, key) => (await admin.hkeys(`${PREFIX}{${tag}}:${key}`)).sort(),
  }),
};

const win = (name: string, key: string, limit: number, windowMs: number, cost = 1): LimitSpec => ({ kind: 'window', name, key, limit, windowMs, cost });
const day = (name: string, key: string, limit: number, utcOffsetMs: number, cost = 1): LimitSpec => ({ kind: 'day', name, key, limit, utcOffsetMs, cost });
const conc = (name: string, key: string, limit: number, leaseMs: number): LimitSpec => ({ kind: 'concurrency', name, key, limit, leaseMs });
const rate = (name: string, key: string, ratePerSec: number, burst: number): LimitSpec => ({ kind: 'rate', name, key, ratePerSec, burst });

function rem(d: Decision): number[] {
  return d.states.map((s) => s.remaining);
}
function denied(d: Decision): { deniedBy: string; retryAfterMs: number } {
  assert.equal(d.admitted, false, `expected a denial, got ${JSON.stringify(d)}`);
  if (d.admitted) throw new Error('unreachable');
  return { deniedBy: d.deniedBy, retryAfterMs: d.retryAfterMs };
}

for (const kind of ['memory', 'redis'] as const) {
  describe(`quota store contract: ${kind}`, () => {
    let h: Harness;
    let tag: string;
    let rid = 0;
    const id = (): string => `req-${rid++}`;
    before(() => {
      h = harnesses[kind]();
    });
    after(async () => {
      await h.store.close();
    });
    const fresh = (): void => {
      tag = `org-${kind}-${n++}`;
      clock = T0;
    };

    test('all-or-nothing: a denial by the 2nd limit charges nothing on the 1st', async () => {
      fresh();
      const limits = [win('requests:rpm', 'rpm', 10, 60_000), win('requests:burst', 'burst', 2, 60_000)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [9, 1]);
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [8, 0]);
      const d = await h.store.admit(id(), tag, limits);
      assert.deepEqual(denied(d).deniedBy, 'requests:burst');
      assert.deepEqual(rem(d), [8, 0], 'uncharged remaining on the first, 0 on the refusing one');
      assert.equal(d.now, T0);
      // The first limit alone still has 8 left: the denied request took nothing.
      assert.deepEqual(rem(await h.store.admit(id(), tag, [limits[0] as LimitSpec])), [7]);

      // Leases and token costs too: a concurrency lease is not taken when a later token limit refuses.
      const mixed = [conc('requests:concurrent', 'conc', 5, 60_000), day('tokens:tpd', 'tpd', 100, 0, 60)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, mixed)), [4, 40]);
      const d2 = await h.store.admit(id(), tag, mixed);
      assert.equal(denied(d2).deniedBy, 'tokens:tpd');
      assert.deepEqual(rem(d2), [4, 0]);
      assert.deepEqual(rem(await h.store.admit(id(), tag, [mixed[0] as LimitSpec])), [3]);
      // First refusing limit in the given order is named; retryAfter covers all refusing ones.
      const both = [win('requests:burst', 'burst', 2, 60_000), day('tokens:tpd', 'tpd', 100, 0, 60)];
      const d3 = await h.store.admit(id(), tag, both);
      assert.equal(denied(d3).deniedBy, 'requests:burst');
      assert.equal(denied(d3).retryAfterMs, 14 * 3_600_000, 'the day limit (14 h to UTC midnight) dominates');
    });

    test('rate: burst, then refill at ratePerSec', async () => {
      fresh();
      const limits = [rate('requests:rps', 'rps', 2, 3)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [2]);
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [1]);
      const third = await h.store.admit(id(), tag, limits);
      assert.deepEqual(rem(third), [0]);
      assert.equal(third.states[0]?.resetMs, 500, 'next token in 1/rate');
      assert.equal(third.states[0]?.limit, 3);
      const d = await h.store.admit(id(), tag, limits);
      assert.deepEqual(denied(d), { deniedBy: 'requests:rps', retryAfterMs: 500 });
      clock += 250;
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rps', retryAfterMs: 250 });
      clock += 250;
      const again = await h.store.admit(id(), tag, limits);
      assert.equal(again.admitted, true);
      assert.deepEqual(rem(again), [0]);
      assert.equal(denied(await h.store.admit(id(), tag, limits)).retryAfterMs, 500);
      clock += 60_000; // refills to burst, never beyond
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [2]);
    });

    test('window: limit per window, then the previous bucket weighs in by its overlap', async () => {
      fresh();
      const limits = [win('requests:rpm', 'rpm', 5, 10_000)];
      clock = T0 + 1000;
      for (let i = 4; i >= 0; i--) {
        const d = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(d), [i]);
        assert.equal(d.states[0]?.resetMs, 9000, 'until the current bucket ends');
      }
      // Full: 5 in this bucket; in the next one the estimate is 5 × (1 − e/10 s), ≤ 4 once e ≥ 2 s.
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rpm', retryAfterMs: 11_000 });
      clock = T0 + 10_000 + 1999;
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      clock = T0 + 10_000 + 5000; // previous bucket weighs 0.5 → estimate 2.5
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [1]);
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [0]); // 3.5 + 1 = 4.5 ≤ 5
      const d = await h.store.admit(id(), tag, limits); // 4.5 + 1 > 5
      // Still within this bucket: 5 × (1 − e/10 s) + 2 ≤ 4 once e ≥ 6 s.
      assert.deepEqual(denied(d), { deniedBy: 'requests:rpm', retryAfterMs: 1000 });
      clock = T0 + 10_000 + 6000;
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [0]);
      // Two buckets later the first one no longer counts: estimate = 3 × 1.0 at the bucket start.
      clock = T0 + 20_000;
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [1]);
      if (kind === 'redis')
        assert.deepEqual(await h.fields(tag, 'rpm'), [String((T0 + 10_000) / 10_000), String((T0 + 20_000) / 10_000)], 'older buckets pruned');
      // Cost > 1 (tokens): the estimate plus the whole cost must fit.
      const tpm = [win('tokens:tpm', 'tpm', 1000, 60_000, 600)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, tpm)), [400]);
      const dt = await h.store.admit(id(), tag, tpm);
      assert.equal(denied(dt).deniedBy, 'tokens:tpm');
      assert.deepEqual(rem(dt), [0]);
    });

    for (const [label, offset] of [
      ['+05:30', 5.5 * 3_600_000],
      ['-08:00', -8 * 3_600_000],
    ] as const) {
      test(`day: resets at local midnight (${label}), not at UTC midnight`, async () => {
        fresh();
        const limits = [day('requests:rpd', 'rpd', 3, offset)];
        // The local day that contains UTC midnight (Mar 2 00:00 UTC): 05:30 local in +05:30, 16:00 the day before in -08:00.
        const utcMidnight = Math.ceil(T0 / DAY) * DAY;
        const dayIdx = Math.floor((utcMidnight + offset) / DAY);
        const midnight = (dayIdx + 1) * DAY - offset; // its end: the next local midnight, in UTC ms
        clock = utcMidnight - 1;
        const first = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(first), [2]);
        assert.equal(first.states[0]?.resetMs, midnight - clock);
        clock = utcMidnight; // UTC midnight: no reset
        assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [1]);
        clock = midnight - 1;
        const last = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(last), [0]);
        assert.equal(last.states[0]?.resetMs, 1);
        assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rpd', retryAfterMs: 1 });
        if (kind === 'redis') assert.deepEqual(await h.fields(tag, 'rpd'), [String(dayIdx)]);
        clock = midnight;
        const next = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(next), [2], 'a new local day');
        assert.equal(next.states[0]?.resetMs, DAY);
        if (kind === 'redis') assert.deepEqual(await h.fields(tag, 'rpd'), [String(dayIdx), String(dayIdx + 1)].sort());
      });
    }

    test('day: the day index follows the offset (same instant, different local days)', async () => {
      fresh();
      clock = Date.parse('2026-03-01T20:00:00.000Z'); // 01:30 on Mar 2 in +05:30, 12:00 on Mar 1 in -08:00
      const east = day('requests:rpd', 'east', 10, 5.5 * 3_600_000);
      const west = day('requests:rpd', 'west', 10, -8 * 3_600_000);
      const d = await h.store.admit(id(), tag, [east, west]);
      assert.deepEqual(
        d.states.map((s) => s.resetMs),
        [Date.parse('2026-03-02T18:30:00.000Z') - clock, Date.parse('2026-03-02T08:00:00.000Z') - clock],
      );
      if (kind === 'redis') {
        const mar2 = String(Date.parse('2026-03-02T00:00:00.000Z') / DAY);
        const mar1 = String(Date.parse('2026-03-01T00:00:00.000Z') / DAY);
        assert.deepEqual(await h.fields(tag, 'east'), [mar2]);
        assert.deepEqual(await h.fields(tag, 'west'), [mar1]);
      }
    });

    test('concurrency: N leases then deny; settle releases; expired leases are reclaimed', async () => {
      fresh();
      const limits = [conc('requests:concurrent', 'conc', 3, 30_000)];
      const ids = [id(), id(), id()];
      assert.deepEqual(rem(await h.store.admit(ids[0] as string, tag, limits)), [2]);
      clock += 1000;
      assert.deepEqual(rem(await h.store.admit(ids[1] as string, tag, limits)), [1]);
      const full = await h.store.admit(ids[2] as string, tag, limits);
      assert.deepEqual(rem(full), [0]);
      assert.equal(full.states[0]?.resetMs, 29_000, 'the earliest lease expires in 29 s');
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:concurrent', retryAfterMs: 1000 });
      await h.store.settle(ids[1] as string, tag, { tokenDelta: 0 });
      const late = id();
      assert.deepEqual(rem(await h.store.admit(late, tag, limits)), [0], 'the released slot is taken again');
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      // ids[0] expires at T0 + 30 s (its sidecar died without settling): reclaimed then.
      clock = T0 + 29_500;
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:concurrent', retryAfterMs: 500 });
      clock = T0 + 30_000;
      const reclaimed = await h.store.admit(id(), tag, limits);
      assert.equal(reclaimed.admitted, true);
      assert.deepEqual(rem(reclaimed), [0]);
      // All leases of this time expire together later.
      clock = T0 + 120_000;
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [2]);
      // A short lease: reclaimed after leaseMs.
      const short = [conc('requests:concurrent', 'short', 1, 200)];
      assert.equal((await h.store.admit(id(), tag, short)).admitted, true);
      clock += 199;
      assert.equal((await h.store.admit(id(), tag, short)).admitted, false);
      clock += 1;
      assert.equal((await h.store.admit(id(), tag, short)).admitted, true);
    });

    test('settle: token delta (+/−) lands on the buckets charged at admission, never below 0; idempotent', async () => {
      fresh();
      const limits = (cost: number, c = 1): LimitSpec[] => [
        win('requests:rpm', 'rpm', 100, 60_000, c),
        win('tokens:tpm', 'tpm', 1000, 60_000, cost),
        day('tokens:tpd', 'tpd', 10_000, 5.5 * 3_600_000, cost),
      ];
      const probe = async (): Promise<number[]> => rem(await h.store.admit(id(), tag, limits(0, 0)));
      const r1 = id();
      assert.deepEqual(rem(await h.store.admit(r1, tag, limits(100))), [99, 900, 9900]);
      await h.store.settle(r1, tag, { tokenDelta: 50 });
      assert.deepEqual(await probe(), [99, 850, 9850], '+50 on both token limits, requests untouched');
      await h.store.settle(r1, tag, { tokenDelta: 50 });
      assert.deepEqual(await probe(), [99, 850, 9850], 'a second settlement changes nothing');
      const r2 = id();
      assert.deepEqual(rem(await h.store.admit(r2, tag, limits(100))), [98, 750, 9750]);
      await h.store.settle(r2, tag, { tokenDelta: -100 });
      assert.deepEqual(await probe(), [98, 850, 9850], '−100 gives the reservation back');
      await h.store.settle(r2, tag, { tokenDelta: -100 });
      assert.deepEqual(await probe(), [98, 850, 9850]);
      const r3 = id();
      await h.store.admit(r3, tag, limits(100));
      await h.store.settle(r3, tag, { tokenDelta: -1_000_000 });
      assert.deepEqual(await probe(), [97, 1000, 10_000], 'clamped at 0, not negative');
      // Unknown request: nothing happens.
      await h.store.settle('never-admitted', tag, { tokenDelta: 500 });
      assert.deepEqual(await probe(), [97, 1000, 10_000]);

      // The delta goes to the bucket of the admission even after the window moved on.
      const r4 = id();
      const tpm = [win('tokens:tpm', 'tpm2', 1000, 60_000, 100)];
      await h.store.admit(r4, tag, tpm);
      clock = T0 + 90_000; // next bucket, half way: previous weighs 0.5
      const p = async (): Promise<number[]> => rem(await h.store.admit(id(), tag, [win('tokens:tpm', 'tpm2', 1000, 60_000, 0)]));
      assert.deepEqual(await p(), [950]);
      await h.store.settle(r4, tag, { tokenDelta: 100 });
      assert.deepEqual(await p(), [900], 'previous bucket now 200 → estimate 100');
    });

    test('settle with a concurrency lease and tokens; the lease of another request is untouched', async () => {
      fresh();
      const limits = [conc('requests:concurrent', 'c', 2, 60_000), win('tokens:tpm', 'tpm', 1000, 60_000, 10)];
      const a = id();
      const b = id();
      await h.store.admit(a, tag, limits);
      await h.store.admit(b, tag, limits);
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      await h.store.settle(a, tag, { tokenDelta: 0 });
      await h.store.settle(a, tag, { tokenDelta: 0 });
      const c = await h.store.admit(id(), tag, limits);
      assert.equal(c.admitted, true, 'one slot back, not two');
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
    });

    test('keys of different tags are independent', async () => {
      fresh();
      const limits = [win('requests:rpm', 'rpm', 1, 60_000)];
      assert.equal((await h.store.admit(id(), `${tag}-a`, limits)).admitted, true);
      assert.equal((await h.store.admit(id(), `${tag}-a`, limits)).admitted, false);
      assert.equal((await h.store.admit(id(), `${tag}-b`, limits)).admitted, true);
    });
  });
}

test('memory: the reservation expires after max(leaseMs) + 60 s; a later settlement is a no-op', async () => {
  let now = T0;
  const store = new MemoryQuotaStore({ now: () => now });
  const limits: LimitSpec[] = [conc('requests:concurrent', 'c', 5, 1000), win('tokens:tpm', 'tpm', 1000, 3_600_000, 100)];
  await store.admit('r', 'org', limits);
  now += 61_000;
  await store.settle('r', 'org', { tokenDelta: 500 });
  const d = await store.admit('probe', 'org', [win('tokens:tpm', 'tpm', 1000, 3_600_000, 0)]);
  assert.deepEqual(rem(d), [900], 'the expired reservation did not apply its delta');
});

describe('circuit breaker', () => {
  const fail = async (): Promise<never> => {
    throw new Error('redis down');
  };
  const ok = async (): Promise<string> => 'ok';

  test('opens after failureThreshold consecutive failures, fails fast for openMs, then one probe', async () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, now: () => now });
    await assert.rejects(b.run(fail), /redis down/);
    await assert.rejects(b.run(fail), /redis down/);
    assert.equal(await b.run(ok), 'ok', 'a success resets the count');
    for (let i = 0; i < 3; i++) await assert.rejects(b.run(fail), /redis down/);
    assert.equal(b.state, 'open');
    assert.equal(b.isOpen(), true);
    let called = 0;
    await assert.rejects(
      b.run(async () => {
        called++;
        return 1;
      }),
      (err: unknown) => err instanceof CircuitOpenError && err.retryAt === 1000,
    );
    assert.equal(called, 0, 'open: fn is not called');
    now = 999;
    assert.equal(b.isOpen(), true);
    now = 1000;
    assert.equal(b.state, 'half-open');
    assert.equal(b.isOpen(), false);
    // One probe at a time; a concurrent call fails fast.
    let release: (v: string) => void = () => undefined;
    const probe = b.run(() => new Promise<string>((r) => (release = r)));
    assert.equal(b.isOpen(), true);
    await assert.rejects(b.run(ok), CircuitOpenError);
    release('probed');
    assert.equal(await probe, 'probed');
    assert.equal(b.state, 'closed');
    assert.equal(b.isOpen(), false);
  });

  test('a failed probe reopens for another openMs', async () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 500, now: () => now });
    await assert.rejects(b.run(fail));
    assert.equal(b.isOpen(), true);
    now = 500;
    await assert.rejects(b.run(fail), /redis down/);
    assert.equal(b.state, 'open');
    now = 999;
    await assert.rejects(b.run(ok), CircuitOpenError);
    now = 1000;
    assert.equal(await b.run(ok), 'ok');
    assert.equal(b.state, 'closed');
  });

  test('late results of calls started while closed do not flip an open breaker', async () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 1000, now: () => now });
    let release: (v: string) => void = () => undefined;
    const slow = b.run(() => new Promise<string>((r) => (release = r)));
    await assert.rejects(b.run(fail));
    assert.equal(b.isOpen(), true);
    release('late');
    assert.equal(await slow, 'late');
    assert.equal(b.isOpen(), true, 'still open');
    now = 1000;
    assert.equal(b.state, 'half-open');
  });
});
