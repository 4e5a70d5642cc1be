import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdsFor, waitFor, withDeadline } from './wait.ts';

test('waitFor resolves with the first value the condition yields (0 and "" count as values)', async () => {
  let calls = 0;
  assert.equal(await waitFor(() => (++calls < 3 ? undefined : 'found'), { what: 'the third call', intervalMs: 1 }), 'found');
  assert.equal(calls, 3);
  assert.equal(await waitFor(() => 0, { what: 'zero' }), 0);
  assert.equal(await waitFor(async () => '', { what: 'empty string' }), '');
});

test('waitFor times out naming what it waited for (a function is evaluated only then)', async () => {
  let described = 0;
  await assert.rejects(
    waitFor(() => false, { what: () => `the moon (described ${++described}×)`, timeoutMs: 30, intervalMs: 5 }),
    /timed out after 30 ms waiting for the moon \(described 1×\)/,
  );
});

test('waitFor fails at once when the condition throws', async () => {
  let calls = 0;
  await assert.rejects(
    waitFor(
      () => {
        calls++;
        throw new Error('boom');
      },
      { what: 'anything', timeoutMs: 5000 },
    ),
    /boom/,
  );
  assert.equal(calls, 1);
});

test('holdsFor passes while the condition holds and fails as soon as it does not', async () => {
  await holdsFor(() => true, { forMs: 20, intervalMs: 5, what: 'always' });
  let calls = 0;
  await assert.rejects(
    holdsFor(() => ++calls < 2, { forMs: 5000, intervalMs: 1, what: 'the quiet' }),
    /the quiet: stopped holding/,
  );
  assert.equal(calls, 2);
});

test('withDeadline passes the outcome through, or fails naming what did not settle', async () => {
  assert.equal(await withDeadline(Promise.resolve(7), { what: 'seven' }), 7);
  await assert.rejects(withDeadline(Promise.reject(new Error('own failure')), { what: 'x' }), /own failure/);
  await assert.rejects(withDeadline(new Promise(() => undefined), { what: 'the answer', timeoutMs: 20 }), /the answer: not settled within 20 ms/);
});
