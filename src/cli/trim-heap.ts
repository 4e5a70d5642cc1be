/**
 * One memory-reducing garbage collection once the sidecar is ready.
 *
 * Start-up (configuration, schemas, every module's top level) allocates
 * enough for V8 to grow its young generation to the maximum, and V8 keeps
 * those pages committed while the process then sits idle: an idle sidecar
 * held 11.3 MB of young generation with 0.2 MB in use (`new_space` of
 * `v8.getHeapSpaceStatistics()`, read 2.5 s after start-up through a
 * `--import` preload given to `npm run bench:idle-rss -- --sidecar-node-args`),
 * and the trim takes the idle RSS from 94.5 to 81.1 MB
 * (`npm run bench:idle-rss -- --rounds 3`, docs/benchmarks.md). A plain `gc()` frees
 * objects but keeps the pages; V8's "last resort" collection is the one that
 * also shrinks the young generation and releases what the old generation no
 * longer needs. Under load the young generation grows back as it grew
 * during start-up; only what start-up left behind is returned, at the cost
 * of one pause of a few tens of milliseconds right after `ready`
 * (docs/benchmarks.md). The V8 flags that keep the
 * young generation small for good (`--max-semi-space-size`,
 * `--optimize-for-size`) cost CPU per request instead (docs/benchmarks.md).
 *
 * V8 only offers this collection through the `gc` function of
 * `--expose-gc`. It is taken from a fresh `vm` context with the flag on for
 * that moment only, so the application's global scope never gets a `gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

interface GcOptions {
  type: 'major';
  execution: 'sync';
  flavor: 'last-resort';
}

/** Collects with V8's memory-reducing flavour; returns its duration in ms. */
export function trimHeapAfterStartup(): number {
  setFlagsFromString('--expose-gc');
  let gc: (opts: GcOptions) => void;
  try {
    gc = runInNewContext('gc') as (opts: GcOptions) => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  const t0 = performance.now();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - t0;
}
