/** The quota plan the benchmarks apply (`npm run bench`, `bench:pipeline`, `bench:idle-rss`). */
import type { LimitSpec } from '../../src/stores/quota/port.ts';

/** Every limit checked and charged on every request, set high enough never to refuse. */
export const BENCH_PLAN = {
  name: 'bench',
  limits: [
    { scope: 'key', rps: 1_000_000, rpm: 100_000_000, concurrency: 100_000 },
    { scope: 'tenant', tpm: 1_000_000_000, tpd: 1_000_000_000 },
  ],
};

/**
 * The same five limits as the quota store sees them (`bench:quota-client`, `bench:quota-redis`): six keys, one
 * admission call, none ever reached.
 */
export const BENCH_STORE_LIMITS: readonly LimitSpec[] = [
  { kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 1e9, burst: 1e9 },
  { kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 1e12, windowMs: 60_000, cost: 1 },
  { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1e12, windowMs: 60_000, cost: 500 },
  { kind: 'day', name: 'tokens:tpd', key: 'tpd', limit: 1e12, utcOffsetMs: 0, cost: 500 },
  { kind: 'concurrency', name: 'requests:concurrent', key: 'conc', limit: 1e6, leaseMs: 60_000 },
];
