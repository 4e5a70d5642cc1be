import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../src/stores/audit/group-commit.ts';
import { waitFor } from '../helpers/wait.ts';

test('items added while a batch is written share the next batch, in order', async () => {
  const batches: number[][] = [];
  let release: () => void = () => undefined;
  const g = new GroupCommit<number>(async (batch) => {
    batches.push([...batch]);
    if (batches.length === 1) await new Promise<void>((r) => (release = r));
  });
  const first = g.add(1);
  const rest = [2, 3, 4, 5].map((n) => g.add(n));
  await waitFor(() => batches.length === 1, { what: 'the first batch to be in the writer' });
  release();
  await Promise.all([first, ...rest]);
  assert.deepEqual(batches, [[1], [2, 3, 4, 5]], 'one write for everything that queued behind the first');
  await g.drained();
});

test('a failed batch rejects exactly its items; the next batch is written', async () => {
  let fail = true;
  const g = new GroupCommit<string>(async () => {
    if (fail) {
      fail = false;
      throw new Error('disk full');
    }
  });
  // 'a' is written alone (nothing was queued yet); 'b' waits for the next batch.
  const results = await Promise.allSettled([g.add('a'), g.add('b')]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'fulfilled'],
  );
  await g.add('c');
  await g.drained();
});
