/**
 * The start-up heap trim of `serve` (src/cli/trim-heap.ts): it releases the
 * young generation that start-up grew, and it leaves no `gc` behind in the
 * application's global scope nor `--expose-gc` on for later contexts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimHeapAfterStartup } from '../../src/cli/trim-heap.ts';

function newSpaceMb(): number {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  assert.ok(s !== undefined);
  return s.physical_space_size / 1048576;
}

test('the trim shrinks the young generation that allocation grew', () => {
  // Short-lived garbage with some survivors, as a start-up makes: enough for V8 to grow the young generation.
  let keep: unknown[] = [];
  for (let i = 0; i < 200_000; i++) {
    const o = { i, s: `x${i}`, a: [i, i + 1] };
    if (i % 10 === 0) keep.push(o);
    if (keep.length > 5_000) keep = [];
  }
  const before = newSpaceMb();
  assert.ok(before > 2, `young generation grown to ${before.toFixed(1)} MB`);
  const ms = trimHeapAfterStartup();
  assert.ok(ms >= 0);
  const after = newSpaceMb();
  assert.ok(after < before / 2, `young generation ${before.toFixed(1)} MB before the trim, ${after.toFixed(1)} MB after`);
});

test('the trim exposes no gc function, now or to contexts made later', () => {
  trimHeapAfterStartup();
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});
