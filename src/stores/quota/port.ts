/**
 * The quota store port: one atomic decision per request over every limit
 * that applies to it, then one settlement when the request ends. Two
 * adapters implement it with the same semantics — Redis (a server-side
 * script, time from Redis) and memory (single process, injected clock) — and
 * one contract test suite runs against both.
 *
 * All keys of one decision share a Redis Cluster hash tag (the caller builds
 * keys as `{<tag>}:…`), so a decision is one script call on one slot.
 */

/** A limit as the store sees it: everything precomputed by the quota stage. */
export type LimitSpec =
  /** Token bucket: `burst` capacity, refilled at `ratePerSec`; costs one request. */
  | { readonly kind: 'rate'; readonly name: string; readonly key: string; readonly ratePerSec: number; readonly burst: number }
  /**
   * Sliding window of `windowMs` (60 sub-windows; see memory.ts): what was charged in any
   * windowMs span never exceeds `limit`; costs `cost` units (requests or tokens).
   */
  | { readonly kind: 'window'; readonly name: string; readonly key: string; readonly limit: number; readonly windowMs: number; readonly cost: number }
  /**
   * Calendar day in a time zone: the day index is floor((now + utcOffsetMs) / 86 400 000),
   * with the offset valid at the decision time; costs `cost` units.
   */
  | { readonly kind: 'day'; readonly name: string; readonly key: string; readonly limit: number; readonly utcOffsetMs: number; readonly cost: number }
  /**
   * Calendar month in a time zone: the month of the local date at (now + utcOffsetMs), with the offset valid at the
   * decision time (as for `day`); costs `cost` units.
   */
  | { readonly kind: 'month'; readonly name: string; readonly key: string; readonly limit: number; readonly utcOffsetMs: number; readonly cost: number }
  /** In-flight leases: at most `limit` unexpired leases; a lease expires after `leaseMs` unless released. */
  | { readonly kind: 'concurrency'; readonly name: string; readonly key: string; readonly limit: number; readonly leaseMs: number };

export interface LimitState {
  readonly name: string;
  readonly limit: number;
  /** What is left after this decision (0 when denied by this limit). */
  readonly remaining: number;
  /** Milliseconds until this limit has room again / fully resets (window end, day end, next token). */
  readonly resetMs: number;
}

export type Decision =
  | { readonly admitted: true; readonly now: number; readonly states: readonly LimitState[] }
  | {
      readonly admitted: false;
      readonly now: number;
      readonly states: readonly LimitState[];
      /** The first limit that refused. */
      readonly deniedBy: string;
      readonly retryAfterMs: number;
    };

export interface Settlement {
  /** Tokens actually used minus tokens reserved (negative gives tokens back): applied to `tokens:` limits. */
  readonly tokenDelta: number;
  /** Cost actually incurred minus cost reserved, in budget units (micro units of the currency): applied to `budget:` limits. */
  readonly costDelta: number;
}

export interface QuotaStore {
  /**
   * Either every limit admits and all are charged (leases taken under
   * `requestId`, token costs recorded as a reservation), or nothing is charged.
   * Throws when the store cannot decide (unreachable, timed out).
   */
  admit(requestId: string, tag: string, limits: readonly LimitSpec[]): Promise<Decision>;
  /**
   * Applies `tokenDelta` to the same token windows/days the reservation
   * charged and `costDelta` to the same budget days/months, and releases the
   * request's leases. Idempotent per request id: a
   * second settlement (or one after the reservation expired) changes nothing.
   */
  settle(requestId: string, tag: string, settlement: Settlement): Promise<void>;
  /**
   * The heartbeat of a live sidecar: moves each request's unexpired leases to
   * expire `leaseMs` from now (and keeps its reservation record at least that
   * long). One answer per request: false when it holds no live lease any more
   * (settled, expired, or never taken) — an expired lease is never revived.
   * All requests of one call share `tag` (one cluster slot).
   */
  renew(tag: string, requestIds: readonly string[], leaseMs: number): Promise<boolean[]>;
  close(): Promise<void>;
}
