/**
 * A batch the sink cannot commit: its requests are refused, the chain goes on
 * under a new id, and the whole file still verifies — no gap, no reused
 * sequence number, the interrupted chain merely unsealed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AuditChain } from '../../src/stores/audit/chain.ts';
import { JsonlFileSink } from '../../src/stores/audit/file-sink.ts';
import type { AuditLineSink } from '../../src/stores/audit/port.ts';
import { fileSources, verifyAudit } from '../../src/audit/verify.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { keyMap, tempDir } from './chain-helper.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
after(() => tmp.remove());

/** The real file sink, with an outage switch in front of it. */
class FlakySink implements AuditLineSink {
  down = false;
  readonly inner: JsonlFileSink;
  constructor(inner: JsonlFileSink) {
    this.inner = inner;
  }
  append(lines: readonly string[]): Promise<void> {
    return this.down ? Promise.reject(new Error('ENOSPC: no space left on device')) : this.inner.append(lines);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

test('after a failed batch the chain restarts under a new id and everything verifies', async () => {
  const key = tmp.key('k.pem');
  const file = tmp.path('audit.jsonl');
  const sink = new FlakySink(new JsonlFileSink(file, { durability: 'write' }));
  const chain = new AuditChain({ sink, key, checkpointEvery: 3, checkpointMs: 60_000, log: createLogger('silent') });
  await Promise.all([1, 2, 3, 4].map((i) => chain.append({ n: i })));
  const firstId = chain.id;
  sink.down = true;
  const refused = await Promise.allSettled([5, 6].map((i) => chain.append({ n: i })));
  assert.deepEqual(
    refused.map((r) => r.status),
    ['rejected', 'rejected'],
    'their requests fail closed',
  );
  sink.down = false;
  await Promise.all([7, 8].map((i) => chain.append({ n: i })));
  assert.notEqual(chain.id, firstId);
  await chain.close();

  const report = await verifyAudit(fileSources([file]), keyMap(key));
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  assert.equal(report.counts.records, 6);
  const chains = new Map(report.chains.map((c) => [c.id, c]));
  assert.equal(chains.get(firstId)?.lastSeq, 4);
  assert.equal(chains.get(firstId)?.sealed, false);
  assert.equal(chains.get(chain.id)?.lastSeq, 2);
  assert.equal(chains.get(chain.id)?.sealed, true);
  const strict = await verifyAudit(fileSources([file]), keyMap(key), { requireSealed: true });
  assert.equal(strict.ok, false, 'the interrupted chain is reported when sealing is required');
});

test('one chain batch is one sink call: records queued behind a write share the next write', async () => {
  const calls: number[] = [];
  let release: () => void = () => undefined;
  const inner = new JsonlFileSink(tmp.path('batched.jsonl'), { durability: 'write' });
  const sink: AuditLineSink = {
    append: async (lines) => {
      calls.push(lines.length);
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
      await inner.append(lines);
    },
    close: () => inner.close(),
  };
  const chain = new AuditChain({ sink, key: tmp.key('b.pem'), checkpointEvery: 1000, checkpointMs: 60_000, log: createLogger('silent') });
  const first = chain.append({ n: 0 });
  const rest = Array.from({ length: 9 }, (_, i) => chain.append({ n: i + 1 }));
  await waitFor(() => calls.length === 1, { what: 'the first batch to be in the sink' });
  release();
  await Promise.all([first, ...rest]);
  await chain.close();
  // [1 record], [9 records] and the final checkpoint: never one write per record.
  assert.deepEqual(calls, [1, 9, 1]);
});
