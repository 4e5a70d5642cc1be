/**
 * The quota store in one process: the exact semantics of the Redis adapter
 * (src/stores/quota/redis.ts), computed synchronously between two awaits, so
 * no other decision can interleave between the check and the charge. The
 * clock is injected (tests step it to exact boundaries).
 *
 * Semantics shared with the Redis script (kept arithmetic-for-arithmetic
 * identical, so both adapters give the same numbers):
 *
 *   rate         token bucket {tokens, ts}: refilled by elapsed × ratePerSec,
 *                capped at burst; admits when tokens ≥ 1; costs one token.
 *                remaining = whole tokens left; resetMs = time until the next
 *                whole token (0 when full).
 *   window       a sliding window of windowMs over SUB_WINDOWS (60) sub-windows
 *                of b = ceil(windowMs / 60) ms (index floor(now / b)); the
 *                count is the sum of every sub-window that holds a moment of
 *                (now − windowMs, now], the oldest one whole. Admits when
 *                count + cost ≤ limit. So what was charged in any windowMs span
 *                never exceeds the limit (the later admission of the span
 *                counted all of it); the price is admitting up to b ms late,
 *                since the oldest sub-window counts whole. resetMs = time until
 *                everything counted has left the window (0 when nothing is).
 *   day          one counter per local day, index floor((now + utcOffsetMs) /
 *                86 400 000); admits when count + cost ≤ limit. resetMs = time
 *                to the next local midnight.
 *   month        one counter per local calendar month, index year × 12 +
 *                month − 1 of the local date at now + utcOffsetMs; admits when
 *                count + cost ≤ limit. resetMs = time to the first local
 *                midnight of the next month (at the same offset).
 *   concurrency  leases (requestId → expiry); expired leases are dropped first
 *                (reclaims the leases of a dead sidecar); admits when the live
 *                leases < limit; takes a lease for leaseMs. resetMs = time to
 *                the earliest expiry when full, else 0. renew() moves the
 *                expiry of a live lease to now + leaseMs (the sidecar holding
 *                it is alive); an expired lease is never revived.
 *
 * All-or-nothing: every limit is checked against the state before the
 * decision; only when all admit is everything charged. A denial charges
 * nothing, names the first refusing limit (in the given order) and sets
 * retryAfterMs to the largest wait among the refusing limits (rate: next
 * token; window: when the estimate has dropped enough; day: local midnight;
 * concurrency: min(1000 ms, earliest lease expiry)). A refusing limit reports
 * remaining 0; the others report what is left without a charge.
 *
 * Reservation: an admitted request records the token buckets it charged
 * (window/day limits whose name starts with `tokens:`), the budget buckets it
 * charged (day/month limits whose name starts with `budget:`) and its leases,
 * for max(leaseMs) (10 min without leases) + 60 s, extended by renew().
 * settle() adds tokenDelta to those token buckets and costDelta to those
 * budget buckets (never below 0; skipped when the bucket is already gone),
 * releases the leases and deletes the record; without a record it does
 * nothing, so settling twice is harmless.
 *
 * Costs and deltas are whole numbers (costs are rounded up, deltas rounded).
 */
import type { Decision, LimitSpec, LimitState, QuotaStore, Settlement } from './port.ts';

export const DAY_MS = 86_400_000;
/** Reservation lifetime without leases, and the slack added to it. */
export const RESERVATION_DEFAULT_MS = 600_000;
export const RESERVATION_SLACK_MS = 60_000;
/** The retry hint when every lease is taken (or the earliest expiry, if sooner). */
export const CONCURRENCY_RETRY_MS = 1000;
/** Extra lifetime of bucket keys beyond the time they still count (garbage collection only). */
export const GC_SLACK_MS = 1000;
/** Sub-windows per sliding window: the window slides in steps of windowMs / 60 (1 s for a minute). */
export const SUB_WINDOWS = 60;

/** Sub-window length of a sliding window (ms). */
export function subWindowMs(windowMs: number): number {
  return Math.ceil(windowMs / SUB_WINDOWS);
}

/** The oldest sub-window that still holds a moment of (now − windowMs, now]. */
export function oldestSubWindow(now: number, windowMs: number): number {
  return Math.floor((now - windowMs + 1) / subWindowMs(windowMs));
}

/** When sub-window `idx` stops counting: its last millisecond is then windowMs old. */
export function subWindowLeavesAt(idx: number, windowMs: number): number {
  return (idx + 1) * subWindowMs(windowMs) + windowMs - 1;
}

/** Token limits are marked by the quota stage with this name prefix (`tokens:tpm`, `tokens:tpd`). */
export function isTokenLimit(spec: LimitSpec): boolean {
  return (spec.kind === 'window' || spec.kind === 'day') && spec.name.startsWith('tokens:');
}

/** Spend budgets are marked by the quota stage with this name prefix (`budget:daily`, `budget:monthly`); they count cost. */
export function isBudgetLimit(spec: LimitSpec): boolean {
  return (spec.kind === 'day' || spec.kind === 'month') && spec.name.startsWith('budget:');
}

/**
 * The calendar month of a local time (epoch ms shifted by the zone's offset): its index (year × 12 + month − 1) and
 * when the next month starts, in the same shifted ms. Mirrors the script's civil-date arithmetic.
 */
export function localMonth(localMs: number): { readonly idx: number; readonly nextStart: number } {
  const d = new Date(localMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { idx: y * 12 + m, nextStart: Date.UTC(y, m + 1, 1) };
}

/** The bucket of a calendar limit at `now`: the local day or month index, and the time until the next one starts. */
export function calendarBucket(kind: 'day' | 'month', now: number, utcOffsetMs: number): { readonly idx: number; readonly reset: number } {
  if (kind === 'day') {
    const idx = Math.floor((now + utcOffsetMs) / DAY_MS);
    return { idx, reset: (idx + 1) * DAY_MS - utcOffsetMs - now };
  }
  const { idx, nextStart } = localMonth(now + utcOffsetMs);
  return { idx, reset: nextStart - utcOffsetMs - now };
}

/** Rejects specs no store could decide on (a configuration bug, not a denial). */
export function validateLimits(limits: readonly LimitSpec[]): void {
  const bad = (spec: LimitSpec, what: string): never => {
    throw new RangeError(`quota limit ${spec.name}: ${what}`);
  };
  for (const s of limits) {
    if (s.kind === 'rate') {
      if (!(s.ratePerSec > 0) || !Number.isFinite(s.ratePerSec)) bad(s, 'ratePerSec must be > 0');
      if (!(s.burst >= 1) || !Number.isFinite(s.burst)) bad(s, 'burst must be ≥ 1');
    } else if (s.kind === 'window') {
      if (!Number.isSafeInteger(s.windowMs) || s.windowMs < 1) bad(s, 'windowMs must be a positive integer');
      if (!Number.isFinite(s.limit) || s.limit < 0) bad(s, 'limit must be ≥ 0');
      if (!Number.isFinite(s.cost) || s.cost < 0) bad(s, 'cost must be ≥ 0');
    } else if (s.kind === 'day' || s.kind === 'month') {
      if (!Number.isSafeInteger(s.utcOffsetMs) || Math.abs(s.utcOffsetMs) > DAY_MS) bad(s, 'utcOffsetMs must be an integer within a day');
      if (!Number.isFinite(s.limit) || s.limit < 0) bad(s, 'limit must be ≥ 0');
      if (!Number.isFinite(s.cost) || s.cost < 0) bad(s, 'cost must be ≥ 0');
    } else {
      if (!Number.isSafeInteger(s.leaseMs) || s.leaseMs < 1) bad(s, 'leaseMs must be a positive integer');
      if (!Number.isFinite(s.limit) || s.limit < 0) bad(s, 'limit must be ≥ 0');
    }
  }
}

/** Whole-unit cost, as charged by both adapters. */
export function wholeCost(cost: number): number {
  return Math.ceil(cost);
}

/** Time until the next whole token of a bucket holding `tokens` (0 when full). */
function nextTokenMs(tokens: number, burst: number, ratePerSec: number): number {
  if (tokens >= burst) return 0;
  return Math.ceil(((Math.floor(tokens) + 1 - tokens) * 1000) / ratePerSec);
}

/**
 * How long until a refused window limit could take `cost`: sub-windows leave
 * oldest first; the first moment the rest plus cost fits. `counted` is the
 * counted sub-windows in ascending index order.
 */
function windowRetryMs(limit: number, windowMs: number, cost: number, counted: ReadonlyArray<readonly [number, number]>, sum: number, now: number): number {
  const need = limit - cost;
  if (need < 0) return windowMs; // never fits: a hint, the request cannot be admitted by waiting
  let left = sum;
  for (const [idx, count] of counted) {
    left -= count;
    if (left <= need) return Math.max(1, subWindowLeavesAt(idx, windowMs) - now);
  }
  return windowMs;
}

interface RateEntry {
  readonly type: 'rate';
  tokens: number;
  ts: number;
  expiresAt: number;
}
interface BucketsEntry {
  readonly type: 'buckets';
  readonly counts: Map<number, number>;
  expiresAt: number;
}
interface LeasesEntry {
  readonly type: 'leases';
  readonly leases: Map<string, number>;
  expiresAt: number;
}
interface ReservationEntry {
  readonly type: 'reservation';
  readonly tokens: ReadonlyArray<{ readonly key: string; readonly bucket: number }>;
  readonly costs: ReadonlyArray<{ readonly key: string; readonly bucket: number }>;
  readonly leases: readonly string[];
  expiresAt: number;
}
type Entry = RateEntry | BucketsEntry | LeasesEntry | ReservationEntry;

/** One limit's check: its state if charged, its state if not, and how to charge it. */
interface Checked {
  readonly ok: boolean;
  readonly limit: number;
  readonly remainingIfCharged: number;
  readonly resetIfCharged: number;
  readonly remainingUncharged: number;
  readonly resetUncharged: number;
  readonly retryMs: number;
  readonly charge: () => void;
}

const SWEEP_EVERY = 1024;

export class MemoryQuotaStore implements QuotaStore {
  readonly #now: () => number;
  readonly #data = new Map<string, Entry>();
  #ops = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  async admit(requestId: string, tag: string, limits: readonly LimitSpec[]): Promise<Decision> {
    validateLimits(limits);
    const now = this.#now();
    this.#maybeSweep(now);
    const checks = limits.map((spec) => this.#check(spec, `{${tag}}:${spec.key}`, requestId, now));
    const refused = checks.findIndex((c) => !c.ok);
    if (refused >= 0) {
      let retryAfterMs = 0;
      const states: LimitState[] = limits.map((spec, i) => {
        const c = checks[i] as Checked;
        if (!c.ok) retryAfterMs = Math.max(retryAfterMs, c.retryMs);
        return { name: spec.name, limit: c.limit, remaining: c.ok ? c.remainingUncharged : 0, resetMs: c.resetUncharged };
      });
      return { admitted: false, now, states, deniedBy: (limits[refused] as LimitSpec).name, retryAfterMs };
    }
    for (const c of checks) c.charge();
    this.#record(requestId, tag, limits, now);
    const states: LimitState[] = limits.map((spec, i) => {
      const c = checks[i] as Checked;
      return { name: spec.name, limit: c.limit, remaining: c.remainingIfCharged, resetMs: c.resetIfCharged };
    });
    return { admitted: true, now, states };
  }

  async settle(requestId: string, tag: string, settlement: Settlement): Promise<void> {
    const now = this.#now();
    const resKey = `{${tag}}:res:${requestId}`;
    const res = this.#get(resKey, now);
    if (res === undefined || res.type !== 'reservation') return;
    const apply = (buckets: ReservationEntry['tokens'], delta: number): void => {
      if (delta === 0) return;
      for (const { key, bucket } of buckets) {
        const e = this.#get(key, now);
        if (e === undefined || e.type !== 'buckets') continue;
        const v = e.counts.get(bucket);
        if (v === undefined) continue;
        e.counts.set(bucket, Math.max(0, v + delta));
      }
    };
    apply(res.tokens, Math.round(settlement.tokenDelta));
    apply(res.costs, Math.round(settlement.costDelta));
    for (const key of res.leases) {
      const e = this.#get(key, now);
      if (e !== undefined && e.type === 'leases') e.leases.delete(requestId);
    }
    this.#data.delete(resKey);
  }

  async renew(tag: string, requestIds: readonly string[], leaseMs: number): Promise<boolean[]> {
    const now = this.#now();
    return requestIds.map((requestId) => {
      const resKey = `{${tag}}:res:${requestId}`;
      const res = this.#get(resKey, now);
      if (res === undefined || res.type !== 'reservation') return false;
      let renewed = false;
      for (const key of res.leases) {
        const e = this.#get(key, now);
        if (e === undefined || e.type !== 'leases') continue;
        const exp = e.leases.get(requestId);
        // An expired lease stays expired: its slot may already have been given to another request.
        if (exp === undefined || exp <= now) continue;
        e.leases.set(requestId, Math.max(exp, now + leaseMs));
        e.expiresAt = Math.max(e.expiresAt, now + leaseMs + GC_SLACK_MS);
        renewed = true;
      }
      if (renewed) res.expiresAt = Math.max(res.expiresAt, now + leaseMs + RESERVATION_SLACK_MS);
      return renewed;
    });
  }

  async close(): Promise<void> {
    this.#data.clear();
  }

  /** Live entry under `key`, dropping it when expired. */
  #get(key: string, now: number): Entry | undefined {
    const e = this.#data.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.#data.delete(key);
      return undefined;
    }
    return e;
  }

  #maybeSweep(now: number): void {
    if (++this.#ops % SWEEP_EVERY !== 0) return;
    for (const [k, e] of this.#data) if (e.expiresAt <= now) this.#data.delete(k);
  }

  #check(spec: LimitSpec, key: string, requestId: string, now: number): Checked {
    const e = this.#get(key, now);
    switch (spec.kind) {
      case 'rate': {
        const { ratePerSec: rate, burst } = spec;
        let tokens = burst;
        let ts = now;
        if (e !== undefined && e.type === 'rate') {
          tokens = e.tokens;
          ts = e.ts;
          const el = now - e.ts;
          if (el > 0) tokens = Math.min(burst, tokens + (el * rate) / 1000);
        }
        const ok = tokens >= 1;
        const after = tokens - 1;
        return {
          ok,
          limit: burst,
          remainingIfCharged: Math.max(0, Math.floor(after)),
          resetIfCharged: nextTokenMs(after, burst, rate),
          remainingUncharged: Math.floor(tokens),
          resetUncharged: nextTokenMs(tokens, burst, rate),
          retryMs: nextTokenMs(tokens, burst, rate),
          charge: () => {
            const ttl = Math.ceil((burst * 1000) / rate) + GC_SLACK_MS;
            this.#data.set(key, { type: 'rate', tokens: after, ts: Math.max(now, ts), expiresAt: now + ttl });
          },
        };
      }
      case 'window': {
        const { limit, windowMs: w } = spec;
        const cost = wholeCost(spec.cost);
        const idx = Math.floor(now / subWindowMs(w));
        const oldest = oldestSubWindow(now, w);
        const counted: Array<[number, number]> = [];
        let sum = 0;
        if (e !== undefined && e.type === 'buckets') {
          for (const [i, c] of e.counts) {
            if (i < oldest || c === 0) continue;
            counted.push([i, c]);
            sum += c;
          }
        }
        counted.sort((x, y) => x[0] - y[0]);
        const newest = counted.length === 0 ? null : (counted[counted.length - 1] as [number, number])[0];
        const ok = sum + cost <= limit;
        return {
          ok,
          limit,
          remainingIfCharged: Math.max(0, Math.floor(limit - sum - cost)),
          resetIfCharged: subWindowLeavesAt(Math.max(idx, newest ?? idx), w) - now,
          remainingUncharged: Math.max(0, Math.floor(limit - sum)),
          resetUncharged: newest === null ? 0 : subWindowLeavesAt(newest, w) - now,
          retryMs: ok ? 0 : windowRetryMs(limit, w, cost, counted, sum, now),
          charge: () => this.#chargeBucket(key, idx, cost, subWindowLeavesAt(idx, w) - now + GC_SLACK_MS, now, oldest),
        };
      }
      case 'day':
      case 'month': {
        const { limit, utcOffsetMs: off } = spec;
        const cost = wholeCost(spec.cost);
        const { idx, reset } = calendarBucket(spec.kind, now, off);
        const count = e !== undefined && e.type === 'buckets' ? (e.counts.get(idx) ?? 0) : 0;
        const ok = count + cost <= limit;
        return {
          ok,
          limit,
          remainingIfCharged: Math.max(0, Math.floor(limit - count - cost)),
          resetIfCharged: reset,
          remainingUncharged: Math.max(0, Math.floor(limit - count)),
          resetUncharged: reset,
          retryMs: reset,
          charge: () => this.#chargeBucket(key, idx, cost, reset + DAY_MS + GC_SLACK_MS, now, idx - 1),
        };
      }
      case 'concurrency': {
        const { limit, leaseMs } = spec;
        const leases = e !== undefined && e.type === 'leases' ? e.leases : new Map<string, number>();
        for (const [id, exp] of leases) if (exp <= now) leases.delete(id);
        const count = leases.size;
        const ok = count < limit;
        const earliest = (extra: number | undefined): number | undefined => {
          let m = extra;
          for (const exp of leases.values()) if (m === undefined || exp < m) m = exp;
          return m;
        };
        const earliestNow = earliest(undefined);
        const earliestCharged = earliest(now + leaseMs);
        return {
          ok,
          limit,
          remainingIfCharged: Math.max(0, Math.floor(limit - count - 1)),
          resetIfCharged: limit - count - 1 > 0 ? 0 : (earliestCharged as number) - now,
          remainingUncharged: Math.max(0, Math.floor(limit - count)),
          resetUncharged: count < limit || earliestNow === undefined ? 0 : earliestNow - now,
          retryMs: earliestNow === undefined ? CONCURRENCY_RETRY_MS : Math.max(1, Math.min(CONCURRENCY_RETRY_MS, earliestNow - now)),
          charge: () => {
            leases.set(requestId, now + leaseMs);
            const prevExpiry = e !== undefined && e.type === 'leases' ? e.expiresAt : 0;
            this.#data.set(key, { type: 'leases', leases, expiresAt: Math.max(prevExpiry, now + leaseMs + GC_SLACK_MS) });
          },
        };
      }
    }
  }

  /** Adds `cost` to bucket `idx`, drops buckets below `keepFrom` (they no longer count), sets the key lifetime. */
  #chargeBucket(key: string, idx: number, cost: number, ttl: number, now: number, keepFrom: number): void {
    const e = this.#get(key, now);
    const counts = e !== undefined && e.type === 'buckets' ? e.counts : new Map<number, number>();
    counts.set(idx, (counts.get(idx) ?? 0) + cost);
    for (const k of counts.keys()) if (k < keepFrom) counts.delete(k);
    this.#data.set(key, { type: 'buckets', counts, expiresAt: Math.max(e?.expiresAt ?? 0, now + ttl) });
  }

  #record(requestId: string, tag: string, limits: readonly LimitSpec[], now: number): void {
    const tokens: Array<{ key: string; bucket: number }> = [];
    const costs: Array<{ key: string; bucket: number }> = [];
    const leases: string[] = [];
    let maxLease = 0;
    for (const spec of limits) {
      const key = `{${tag}}:${spec.key}`;
      if (spec.kind === 'concurrency') {
        leases.push(key);
        maxLease = Math.max(maxLease, spec.leaseMs);
      } else if (isTokenLimit(spec)) {
        const bucket =
          spec.kind === 'window' ? Math.floor(now / subWindowMs(spec.windowMs)) : spec.kind === 'day' ? Math.floor((now + spec.utcOffsetMs) / DAY_MS) : 0;
        tokens.push({ key, bucket });
      } else if (isBudgetLimit(spec) && (spec.kind === 'day' || spec.kind === 'month')) {
        costs.push({ key, bucket: calendarBucket(spec.kind, now, spec.utcOffsetMs).idx });
      }
    }
    const resKey = `{${tag}}:res:${requestId}`;
    this.#data.delete(resKey);
    if (tokens.length === 0 && costs.length === 0 && leases.length === 0) return;
    const ttl = (maxLease > 0 ? maxLease : RESERVATION_DEFAULT_MS) + RESERVATION_SLACK_MS;
    this.#data.set(resKey, { type: 'reservation', tokens, costs, leases, expiresAt: now + ttl });
  }
}
