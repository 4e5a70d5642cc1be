/**
 * FastHistogram exposes exactly what prom-client's own Histogram would for
 * the same observations (same buckets, labels, sums, counts), so swapping it
 * in on the hot path changes no series a dashboard or alert reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../src/telemetry/fast-histogram.ts';

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

test('the same exposition as prom-client for the same observations, labelled and not', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('request_headers', 'request_body', 'response_body'), fc.double({ min: 0, max: 0.2, noNaN: true })), { maxLength: 60 }),
      async (obs) => {
        const ours = new Registry();
        const theirs = new Registry();
        const fast = new FastHistogram({ name: 'h_seconds', help: 'h', labelName: 'phase', buckets: BUCKETS, registers: [ours] });
        const plain = new FastHistogram({ name: 'u_seconds', help: 'u', buckets: BUCKETS, registers: [ours] });
        const ref = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['phase'], buckets: BUCKETS, registers: [theirs] });
        const refPlain = new Histogram({ name: 'u_seconds', help: 'u', buckets: BUCKETS, registers: [theirs] });
        for (const [phase, v] of obs) {
          fast.series(phase).observe(v);
          ref.observe({ phase }, v);
          plain.series().observe(v);
          refPlain.observe(v);
        }
        assert.equal(await ours.metrics(), await theirs.metrics());
      },
    ),
    { numRuns: 200 },
  );
});
