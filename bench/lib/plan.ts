/** The quota plan the benchmarks apply (`npm run bench`, `bench:pipeline`, `bench:idle-rss`). */

/** Every limit checked and charged on every request, set high enough never to refuse. */
export const BENCH_PLAN = {
  name: 'bench',
  limits: [
    { scope: 'key', rps: 1_000_000, rpm: 100_000_000, concurrency: 100_000 },
    { scope: 'tenant', tpm: 1_000_000_000, tpd: 1_000_000_000 },
  ],
};
