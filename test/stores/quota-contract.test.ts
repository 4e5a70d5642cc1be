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
  /** Bucket fields of a window/day limit's hash (Redis only; null for memory), without a window's running total (fields -1…-3). */
  fields(tag: string, key: string): Promise<string[] | null>;
}

const harnesses: Record<'memory' | 'redis', () => Harness> = {
  memory: () => ({ store: new MemoryQuotaStore({ now: () => clock }), fields: async () => null }),
  redis: () => ({
    store: new RedisQuotaStore({ url: redis.url, keyPrefix: PREFIX, commandTimeoutMs: 1000, log: pino({ level: 'silent' }), now: () => clock }),
    fields: async (tag, key) => (await admin.hkeys(`${PREFIX}{${tag}}:${key}`)).filter((f) => !f.startsWith('-')).sort(),
  }),
};

const win = (name: string, key: string, limit: number, windowMs: number, cost = 1): LimitSpec => ({ kind: 'window', name, key, limit, windowMs, cost });
const day = (name: string, key: string, limit: number, utcOffsetMs: number, cost = 1): LimitSpec => ({ kind: 'day', name, key, limit, utcOffsetMs, cost });
const month = (name: string, key: string, limit: number, utcOffsetMs: number, cost = 1): LimitSpec => ({ kind: 'month', name, key, limit, utcOffsetMs, cost });
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

    test('window: a sliding 60 s of 1 s sub-windows; the oldest counts whole, so a refusal lasts until it has left', async () => {
      fresh();
      const limits = [win('requests:rpm', 'rpm', 5, 60_000)];
      // Five at the very end of one fixed minute: two weighted fixed windows would let more in early in the next one.
      clock = T0 + 59_500;
      for (let i = 4; i >= 0; i--) {
        const d = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(d), [i]);
        // Everything counted leaves once its sub-window [59 s, 60 s) is a whole window old: at 119.999 s.
        assert.equal(d.states[0]?.resetMs, 119_999 - 59_500);
      }
      clock = T0 + 60_000;
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rpm', retryAfterMs: 59_999 });
      clock = T0 + 90_000; // the old estimate (5 × 0.5) would admit 2 here, 7 within 30.5 s
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rpm', retryAfterMs: 29_999 });
      clock = T0 + 119_998;
      const last = await h.store.admit(id(), tag, limits);
      assert.deepEqual(denied(last), { deniedBy: 'requests:rpm', retryAfterMs: 1 });
      assert.deepEqual(rem(last), [0]);
      assert.equal(last.states[0]?.resetMs, 1, 'uncharged: the counted sub-window leaves in 1 ms');
      // Exactly 60 s after the end of their sub-window: the five no longer count (0.499 s later than a per-request log would).
      clock = T0 + 119_999;
      const next = await h.store.admit(id(), tag, limits);
      assert.deepEqual(rem(next), [4]);
      assert.equal(next.states[0]?.resetMs, 179_999 - 119_999);
      // Sub-windows leave one by one: 2 more at 120.5 s, then the refusal waits only for the one at 119.999 s.
      clock = T0 + 120_500;
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [3]);
      assert.deepEqual(rem(await h.store.admit(id(), tag, [win('requests:rpm', 'rpm', 5, 60_000, 3)])), [0]);
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rpm', retryAfterMs: 179_999 - 120_500 });
      if (kind === 'redis')
        assert.deepEqual(await h.fields(tag, 'rpm'), [String((T0 + 119_000) / 1000), String((T0 + 120_000) / 1000)], 'older sub-windows pruned');
      // Cost > 1 (tokens): the count plus the whole cost must fit; a cost above the limit never fits.
      const tpm = [win('tokens:tpm', 'tpm', 1000, 60_000, 600)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, tpm)), [400]);
      const dt = await h.store.admit(id(), tag, tpm);
      assert.equal(denied(dt).deniedBy, 'tokens:tpm');
      assert.deepEqual(rem(dt), [0]);
      assert.equal(denied(await h.store.admit(id(), tag, [win('tokens:tpm', 'tpm', 1000, 60_000, 1001)])).retryAfterMs, 60_000);
    });

    test('window: a window that is not a multiple of 60 sub-windows (10 s → 167 ms sub-windows)', async () => {
      fresh();
      const limits = [win('requests:rps', 'w10', 3, 10_000)];
      clock = T0 + 100; // sub-window [T0, T0 + 167)
      for (let i = 0; i < 3; i++) assert.equal((await h.store.admit(id(), tag, limits)).admitted, true);
      // Leaves at (i + 1) × 167 + 10 000 − 1 with i = floor((T0 + 100) / 167).
      const i0 = Math.floor((T0 + 100) / 167);
      const leaves = (i0 + 1) * 167 + 9_999;
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'requests:rps', retryAfterMs: leaves - clock });
      clock = leaves - 1;
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      clock = leaves;
      assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [2]);
    });

    test('window: in any 60 s span what was charged stays within the limit (random traffic, settlements, sub-window boundaries)', async (t) => {
      fresh();
      const W = 60_000;
      const LIMIT = 1000;
      const key = 'tpm-prop';
      // A deterministic stream: a request every 0–2.5 s for 5 minutes, reserving 20–200 tokens, most settled lower
      // (what the model really used), some higher (a prompt estimate that was short), some never (still running).
      let seed = 42;
      const rnd = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
      interface Charge {
        readonly at: number;
        amount: number;
        readonly rid: string;
        readonly settleAt: number;
        readonly delta: number;
        settled: boolean;
      }
      const charges: Charge[] = [];
      const spanSum = (from: number, to: number): number => charges.filter((c) => c.at > from && c.at <= to).reduce((a, c) => a + c.amount, 0);
      let refusedFairly = 0;
      let refusals = 0;
      let positive = 0;
      for (let at = T0 + 1; at < T0 + 5 * W; at += Math.floor(rnd() * 2500)) {
        // Settlements due by now, in time order, before the next decision.
        for (const c of charges.filter((x) => !x.settled && x.settleAt <= at).sort((x, y) => x.settleAt - y.settleAt)) {
          clock = c.settleAt;
          await h.store.settle(c.rid, tag, { tokenDelta: c.delta, costDelta: 0 });
          // Settled within the window (≤ 20.5 s later), so on the sub-window it was charged to; clamped at 0.
          c.amount = Math.max(0, c.amount + c.delta);
          c.settled = true;
        }
        clock = at;
        const cost = 20 + Math.floor(rnd() * 180);
        const rid = id();
        const d = await h.store.admit(rid, tag, [win('tokens:tpm', key, LIMIT, W, cost)]);
        if (d.admitted) {
          const r = rnd();
          const delta = r < 0.7 ? -Math.floor(cost * rnd()) : r < 0.8 ? Math.floor(cost * 0.2 * rnd()) : 0;
          if (delta > 0) positive += delta;
          charges.push({ at, amount: cost, rid, settleAt: at + 500 + Math.floor(rnd() * 20_000), delta, settled: r >= 0.8 });
        } else {
          refusals++;
          // Refused only for what was charged within the window widened by one sub-window (the oldest counts whole).
          if (spanSum(at - W - 1000, at) + cost > LIMIT) refusedFairly++;
        }
      }
      let worst = 0;
      for (const c of charges) worst = Math.max(worst, spanSum(c.at - W, c.at));
      const upperBound = LIMIT + positive;
      // Without the positive settlements (usage above the reservation, charged after the fact) no span exceeds the limit.
      let worstReserved = 0;
      const asReserved = (c: Charge): number => (c.settled && c.delta > 0 ? c.amount - c.delta : c.amount);
      for (const c of charges)
        worstReserved = Math.max(
          worstReserved,
          charges.filter((x) => x.at > c.at - W && x.at <= c.at).reduce((a, x) => a + asReserved(x), 0),
        );
      t.diagnostic(
        `${kind}: ${charges.length} admitted, ${refusals} refused; the fullest 60 s span held ${worst} tokens = ${((worst / LIMIT) * 100).toFixed(1)}% of the limit ` +
          `(${worstReserved} = ${((worstReserved / LIMIT) * 100).toFixed(1)}% without usage reported above a reservation, which added ${positive} tokens in all)`,
      );
      assert.ok(charges.length > 50 && refusals > 20, 'the stream both filled the limit and was refused');
      assert.equal(refusedFairly, refusals, 'every refusal is explained by the window plus one sub-window');
      assert.ok(worst <= upperBound, `worst span ${worst} > ${upperBound}`);
      // Without the positive settlements (usage above the reservation, charged after the fact) no span exceeds the limit.
      assert.ok(worstReserved <= LIMIT, `worst span without after-the-fact usage ${worstReserved} > ${LIMIT}`);
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

    // Month ends in a zone east and west of UTC, a leap February and the turn of a year (the script's civil-calendar
    // arithmetic against the memory store's Date).
    for (const [label, offset, monthStartUtc] of [
      ['UTC+01:00, Dec → Jan', 3_600_000, '2026-12-31T23:00:00.000Z'],
      ['UTC-08:00, leap Feb → Mar', -8 * 3_600_000, '2028-03-01T08:00:00.000Z'],
      ['UTC, Jan → Feb', 0, '2027-02-01T00:00:00.000Z'],
      ['UTC+05:30, Feb → Mar (not leap)', 5.5 * 3_600_000, '2027-02-28T18:30:00.000Z'],
    ] as const) {
      test(`month: resets at the local start of the next calendar month (${label})`, async () => {
        fresh();
        const next = Date.parse(monthStartUtc);
        const limits = [month('budget:monthly:org', 'bpm', 1000, offset, 400)];
        clock = next - 20 * DAY; // well inside the month before
        const first = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(first), [600]);
        assert.equal(first.states[0]?.resetMs, next - clock);
        clock = next - 1;
        const second = await h.store.admit(id(), tag, limits);
        assert.deepEqual(rem(second), [200]);
        assert.equal(second.states[0]?.resetMs, 1);
        assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'budget:monthly:org', retryAfterMs: 1 });
        clock = next; // the new month: everything back
        assert.deepEqual(rem(await h.store.admit(id(), tag, limits)), [600]);
      });
    }

    test('settle: the cost delta lands on budget buckets, the token delta on token buckets, never the other way', async () => {
      fresh();
      const limits = [
        day('tokens:tpd:org', 'tpd', 1000, 0, 100),
        day('budget:daily:org', 'bpd', 5000, 0, 2000),
        month('budget:monthly:org', 'bpm', 9000, 0, 2000),
      ];
      assert.deepEqual(rem(await h.store.admit('r1', tag, limits)), [900, 3000, 7000]);
      await h.store.settle('r1', tag, { tokenDelta: -60, costDelta: -1500 }); // used 40 tokens, cost 500 of the 2000 reserved
      const probe = [day('tokens:tpd:org', 'tpd', 1000, 0, 0), day('budget:daily:org', 'bpd', 5000, 0, 0), month('budget:monthly:org', 'bpm', 9000, 0, 0)];
      assert.deepEqual(rem(await h.store.admit(id(), tag, probe)), [960, 4500, 8500]);
      await h.store.settle('r1', tag, { tokenDelta: -60, costDelta: -1500 }); // twice: nothing more
      assert.deepEqual(rem(await h.store.admit(id(), tag, probe)), [960, 4500, 8500]);
      // More than reserved (a reservation is an estimate): charged afterwards.
      await h.store.admit('r2', tag, limits);
      await h.store.settle('r2', tag, { tokenDelta: 0, costDelta: 700 });
      assert.deepEqual(rem(await h.store.admit(id(), tag, probe)), [860, 1800, 5800]);
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
      await h.store.settle(ids[1] as string, tag, { tokenDelta: 0, costDelta: 0 });
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

    test('renew: a live lease moves to now + leaseMs; an expired, settled or unknown one is not revived', async () => {
      fresh();
      const limits = [conc('concurrency:key', 'conc', 1, 15_000), win('tokens:tpm', 'tpm', 100_000, 60_000, 10)];
      const a = id();
      assert.equal((await h.store.admit(a, tag, limits)).admitted, true);
      clock = T0 + 10_000;
      assert.deepEqual(await h.store.renew(tag, [a, 'never-admitted'], 15_000), [true, false]);
      clock = T0 + 20_000; // past the first expiry (15 s): the renewed lease still holds the slot
      assert.deepEqual(denied(await h.store.admit(id(), tag, limits)), { deniedBy: 'concurrency:key', retryAfterMs: 1000 });
      clock = T0 + 24_999;
      assert.deepEqual(await h.store.renew(tag, [a], 15_000), [true]);
      const full = await h.store.admit(id(), tag, limits);
      assert.equal(full.states[0]?.resetMs, 15_000, 'the earliest expiry is the renewed one');
      // The sidecar died after its last beat: the slot is free 15 s later, not at a long fixed lease.
      clock = T0 + 39_998;
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      clock = T0 + 39_999;
      assert.deepEqual(await h.store.renew(tag, [a], 15_000), [false], 'expired: not revived (its slot may be taken)');
      const b = id();
      assert.equal((await h.store.admit(b, tag, limits)).admitted, true);
      // Renewal never shortens; a settled lease is gone.
      assert.deepEqual(await h.store.renew(tag, [b], 1000), [true]);
      clock = T0 + 39_999 + 14_999;
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false, 'still held: a shorter renewal did not shorten it');
      await h.store.settle(b, tag, { tokenDelta: 0, costDelta: 0 });
      assert.deepEqual(await h.store.renew(tag, [b], 15_000), [false]);
      assert.deepEqual(await h.store.renew(tag, [], 15_000), []);
      // A request without a concurrency limit holds no lease to renew.
      const c = id();
      await h.store.admit(c, tag, [win('tokens:tpm', 'tpm', 100_000, 60_000, 10)]);
      assert.deepEqual(await h.store.renew(tag, [c], 15_000), [false]);
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
      await h.store.settle(r1, tag, { tokenDelta: 50, costDelta: 0 });
      assert.deepEqual(await probe(), [99, 850, 9850], '+50 on both token limits, requests untouched');
      await h.store.settle(r1, tag, { tokenDelta: 50, costDelta: 0 });
      assert.deepEqual(await probe(), [99, 850, 9850], 'a second settlement changes nothing');
      const r2 = id();
      assert.deepEqual(rem(await h.store.admit(r2, tag, limits(100))), [98, 750, 9750]);
      await h.store.settle(r2, tag, { tokenDelta: -100, costDelta: 0 });
      assert.deepEqual(await probe(), [98, 850, 9850], '−100 gives the reservation back');
      await h.store.settle(r2, tag, { tokenDelta: -100, costDelta: 0 });
      assert.deepEqual(await probe(), [98, 850, 9850]);
      const r3 = id();
      await h.store.admit(r3, tag, limits(100));
      await h.store.settle(r3, tag, { tokenDelta: -1_000_000, costDelta: 0 });
      assert.deepEqual(await probe(), [97, 1000, 10_000], 'clamped at 0, not negative');
      // Unknown request: nothing happens.
      await h.store.settle('never-admitted', tag, { tokenDelta: 500, costDelta: 0 });
      assert.deepEqual(await probe(), [97, 1000, 10_000]);

      // The delta goes to the sub-window of the admission, even after the window moved on (and across a fixed-minute boundary).
      const r4 = id();
      const tpm = [win('tokens:tpm', 'tpm2', 1000, 60_000, 600)];
      clock = T0 + 59_900;
      await h.store.admit(r4, tag, tpm);
      const p = async (): Promise<number[]> => rem(await h.store.admit(id(), tag, [win('tokens:tpm', 'tpm2', 1000, 60_000, 0)]));
      clock = T0 + 60_100;
      assert.equal(denied(await h.store.admit(id(), tag, tpm)).retryAfterMs, 119_999 - 60_100, 'the reservation holds the window');
      await h.store.settle(r4, tag, { tokenDelta: -500, costDelta: 0 }); // used 100 of 600
      assert.deepEqual(await p(), [900]);
      const r5 = id();
      assert.deepEqual(rem(await h.store.admit(r5, tag, tpm)), [300], 'the settled-down reservation made room');
      clock = T0 + 90_000;
      await h.store.settle(r5, tag, { tokenDelta: 100, costDelta: 0 }); // used 700 of 600
      assert.deepEqual(await p(), [200], 'charged to the sub-window of its admission');
      clock = T0 + 119_999; // r4's sub-window has left; r5's (60.1 s) has not
      assert.deepEqual(await p(), [300]);
      clock = T0 + 120_999;
      assert.deepEqual(await p(), [1000]);
    });

    test('settle with a concurrency lease and tokens; the lease of another request is untouched', async () => {
      fresh();
      const limits = [conc('requests:concurrent', 'c', 2, 60_000), win('tokens:tpm', 'tpm', 1000, 60_000, 10)];
      const a = id();
      const b = id();
      await h.store.admit(a, tag, limits);
      await h.store.admit(b, tag, limits);
      assert.equal((await h.store.admit(id(), tag, limits)).admitted, false);
      await h.store.settle(a, tag, { tokenDelta: 0, costDelta: 0 });
      await h.store.settle(a, tag, { tokenDelta: 0, costDelta: 0 });
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
  await store.settle('r', 'org', { tokenDelta: 500, costDelta: 0 });
  const d = await store.admit('probe', 'org', [win('tokens:tpm', 'tpm', 1000, 3_600_000, 0)]);
  assert.deepEqual(rem(d), [900], 'the expired reservation did not apply its delta');
});

test('memory: renewal keeps the reservation record past max(leaseMs) + 60 s, so the late settlement still applies', async () => {
  let now = T0;
  const store = new MemoryQuotaStore({ now: () => now });
  const limits: LimitSpec[] = [conc('requests:concurrent', 'c', 5, 15_000), win('tokens:tpm', 'tpm', 100_000, 3_600_000, 100)];
  await store.admit('r', 'org', limits);
  for (let beat = 0; beat < 20; beat++) {
    now += 5000;
    assert.deepEqual(await store.renew('org', ['r'], 15_000), [true]);
  }
  now += 5000; // 105 s after admission: without renewals the record would be gone (75 s)
  await store.settle('r', 'org', { tokenDelta: 400, costDelta: 0 });
  const d = await store.admit('probe', 'org', [win('tokens:tpm', 'tpm', 100_000, 3_600_000, 0)]);
  assert.deepEqual(rem(d), [99_500], 'reservation 100 + 400 used beyond it');
});

describe('circuit breaker', () => {
  const fail = async (): Promise<never> => {
    throw new Error('redis down');
  };
  const ok = async (): Promise<string> => 'ok';
  const opts = { failureRate: 0.5, minimumCalls: 6, windowMs: 2000, openMs: 1000, halfOpenProbes: 2 };
  /** A call the test finishes when it wants: `settle(true)` succeeds it, `settle(false)` fails it. */
  function pending(b: CircuitBreaker): { done: Promise<unknown>; settle: (success: boolean) => void } {
    let finish: (success: boolean) => void = () => undefined;
    const done = b.run(() => new Promise<string>((res, rej) => (finish = (success) => (success ? res('late') : rej(new Error('timeout'))))));
    done.catch(() => undefined);
    return { done, settle: (success) => finish(success) };
  }

  test('consecutive failures alone do not open it: a failure rate over the window, with a minimum of calls', async () => {
    let now = 0;
    const b = new CircuitBreaker({ ...opts, now: () => now });
    // Five failures in a row: below minimumCalls (6), still closed — the old breaker opened at 5.
    for (let i = 0; i < 5; i++) {
      now += 10;
      await assert.rejects(b.run(fail), /redis down/);
    }
    assert.equal(b.state, 'closed');
    // Enough successes in the window keep the rate below 50% however the failures fall.
    for (let i = 0; i < 6; i++) {
      now += 10;
      assert.equal(await b.run(ok), 'ok');
    }
    now += 10;
    await assert.rejects(b.run(fail));
    assert.deepEqual(b.window(), { calls: 12, successes: 6, failures: 6 });
    assert.equal(b.state, 'open', '6 of 12 failed (50%), 12 calls ≥ 6');
  });

  test('old successes leave the window: a sustained outage opens it once failures dominate the last windowMs', async () => {
    let now = 0;
    const b = new CircuitBreaker({ ...opts, now: () => now });
    for (let i = 0; i < 100; i++) {
      now += 10;
      await b.run(ok);
    }
    let openedAfter = -1;
    for (let i = 1; i <= 400 && openedAfter < 0; i++) {
      now += 10;
      await assert.rejects(b.run(fail));
      if (b.isOpen()) openedAfter = i * 10;
    }
    // 100 successes over the last second, then failures every 10 ms: opens when the failures are half of the window.
    assert.ok(openedAfter > 0 && openedAfter <= 1100, `opened ${openedAfter} ms into the outage`);
  });

  test('calls in flight together when a stall hits fail as one; calls contradicted by a later success do not count', async () => {
    let now = 0;
    const b = new CircuitBreaker({ ...opts, now: () => now });
    for (let i = 0; i < 10; i++) {
      now += 10;
      await b.run(ok);
    }
    // A stall: 40 calls start, then all time out together.
    const stalled = Array.from({ length: 40 }, () => pending(b));
    now += 250;
    for (const c of stalled) c.settle(false);
    await Promise.allSettled(stalled.map((c) => c.done));
    assert.deepEqual(b.window(), { calls: 50, successes: 10, failures: 1 });
    assert.equal(b.state, 'closed', 'counted one by one, 40 of 50 would have opened it');

    // …and a burst: 200 calls start together, 194 succeed, 6 time out after them. Redis answered calls that
    // started with the 6, so those 6 are not evidence that it is down: nothing counted.
    let later = 0;
    const c = new CircuitBreaker({ ...opts, minimumCalls: 1, now: () => later });
    const burst = Array.from({ length: 200 }, () => pending(c));
    later += 5;
    burst.slice(6).forEach((x) => x.settle(true));
    later += 250;
    burst.slice(0, 6).forEach((x) => x.settle(false));
    await Promise.allSettled(burst.map((x) => x.done));
    assert.deepEqual(c.window(), { calls: 200, successes: 194, failures: 0 });
    assert.equal(c.state, 'closed');
  });

  test('open: calls fail fast for openMs; half-open lets halfOpenProbes through, the others take the degraded path; a probe success closes', async () => {
    let now = 0;
    const b = new CircuitBreaker({ ...opts, minimumCalls: 1, now: () => now });
    await assert.rejects(b.run(fail), /redis down/);
    assert.equal(b.state, 'open');
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
    const p1 = pending(b);
    const p2 = pending(b);
    assert.equal(b.isOpen(), true, 'both probe slots taken');
    await assert.rejects(b.run(ok), CircuitOpenError);
    p1.settle(true);
    assert.equal(await p1.done, 'late');
    assert.equal(b.state, 'closed');
    assert.equal(await b.run(ok), 'ok');
    // The other probe failing after the breaker closed belongs to the old episode: the breaker stays closed.
    p2.settle(false);
    await assert.rejects(p2.done);
    assert.equal(b.state, 'closed');
    assert.deepEqual(b.window(), { calls: 1, successes: 1, failures: 0 });
  });

  test('a failed probe reopens for another openMs', async () => {
    let now = 0;
    const b = new CircuitBreaker({ ...opts, minimumCalls: 1, openMs: 500, now: () => now });
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
    const b = new CircuitBreaker({ ...opts, minimumCalls: 1, now: () => now });
    const slow = pending(b);
    now = 10;
    await assert.rejects(b.run(fail));
    assert.equal(b.isOpen(), true);
    slow.settle(true);
    assert.equal(await slow.done, 'late');
    assert.equal(b.isOpen(), true, 'still open');
    now = 1010;
    assert.equal(b.state, 'half-open');
  });
});
