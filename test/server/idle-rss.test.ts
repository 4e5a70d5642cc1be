/**
 * The sidecar's idle memory stays within a budget: `npm run bench:idle-rss`
 * with the default configuration (a real `inference-gateway serve` through
 * the launcher, VmRSS once ready) must report a median under 90 MB. It
 * measured ~150 MB before the compile cache and the lazy loading of
 * docs/benchmarks.md ("2026-12-06: idle RSS"), ~94 MB after, and ~81 MB with
 * the start-up heap trim of `serve` (src/cli/trim-heap.ts); the bound leaves
 * room for noise, yet fails if the trim is lost or a heavy module comes back
 * into the default graph, or the type stripper is loaded again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';

const BUDGET_MB = 90;

test(`idle RSS of a sidecar with the default configuration is under ${BUDGET_MB} MB`, () => {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bench', 'idle-rss.ts'), '--rounds', '3', '--max-mb', String(BUDGET_MB)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.match(r.stdout, /median \d+\.\d MB/, r.stdout + r.stderr);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
