/**
 * CallDeadlines: one timer bounds many calls. A call's clock starts after the
 * turn that made it; an overdue call expires exactly once; a finished one
 * never does; and the queue does not grow without bound under steady load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallDeadlines } from '../../src/stores/call-deadlines.ts';
import { waitFor } from '../helpers/wait.ts';

test('an unfinished call expires once after the bound; a finished one never', async () => {
  const d = new CallDeadlines(30);
  let expired = 0;
  let finishedExpired = 0;
  const started = performance.now();
  d.track(() => expired++);
  d.track(() => finishedExpired++).done();
  await waitFor(() => expired === 1, { what: 'the unfinished call to expire' });
  assert.ok(performance.now() - started >= 29, 'not before its bound');
  await waitFor(() => d.size === 0, { what: 'the queue to drain' });
  assert.equal(expired, 1);
  assert.equal(finishedExpired, 0);
});

test("the clock starts after the turn that made the call: this process's own busy time does not count", async () => {
  let now = 0;
  const d = new CallDeadlines(100, () => now);
  let expired = false;
  d.track(() => (expired = true));
  now = 500; // the rest of this turn took 500 ms (e.g. a burst of requests)
  await new Promise((resolve) => setImmediate(resolve)); // armed now, at 500 + 100
  now = 599;
  assert.equal(expired, false);
  now = 600;
  await waitFor(() => expired, { what: 'expiry once the clock reached 600' });
});

test('many calls, most finishing: one timer, expiries in order, and a bounded queue', async () => {
  const d = new CallDeadlines(20);
  const order: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 1000; i++) {
      const id = round * 1000 + i;
      const dl = d.track(() => order.push(id));
      if (i % 100 !== 0) dl.done();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor(() => order.length === 50, { what: 'the 50 unfinished calls to expire' });
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
  );
  await waitFor(() => d.size === 0, { what: 'the queue to empty' });
});
