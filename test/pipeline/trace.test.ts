import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continueTrace } from '../../src/pipeline/trace.ts';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('a valid incoming trace id is kept with a new span id', () => {
  const t = continueTrace(VALID);
  assert.equal(t.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(t.spanId, '00f067aa0ba902b7');
  assert.match(t.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
});

test('malformed, all-zero or version ff trace contexts start a new trace', async (t) => {
  for (const bad of [
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
  ]) {
    await t.test(String(bad), () => {
      const trace = continueTrace(bad);
      assert.notEqual(trace.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
      assert.match(trace.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    });
  }
});

test('new ids never repeat across pool refills', () => {
  // 2,000 requests draw 48 kB of ids: the 4 kB pool is refilled about a dozen times.
  const traces = new Set<string>();
  const spans = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = continueTrace(undefined);
    traces.add(t.traceId);
    spans.add(t.spanId);
  }
  assert.equal(traces.size, 2000);
  assert.equal(spans.size, 2000);
});
