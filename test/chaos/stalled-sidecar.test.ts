/**
 * Truthful outcomes (issue #14): a sidecar stalled past Envoy's per-message
 * timeout in the middle of a stream (a GC pause, CPU throttling; here
 * SIGSTOP) makes Envoy give up on the client's stream. When the sidecar
 * resumes it must record what the client actually got — an aborted request
 * with the tokens delivered before the stall — never `completed` with the
 * full count.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({ messageTimeoutMs: 300 });
});

after(async () => {
  await stack?.stop();
});

test('a sidecar stalled mid-stream past the message timeout: the client is cut off, and the record says aborted with the tokens it got', async (t) => {
  const sidecar = stack.sidecar;
  assert.ok(sidecar !== null);
  const stream = await stack
    .client('alice', { 'x-demo-words': '60', 'x-demo-chunk-delay-ms': '20' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'a long answer please' }] });
  let received = '';
  let chunks = 0;
  let stalled = false;
  const consumed = (async () => {
    for await (const c of stream) {
      received += c.choices[0]?.delta.content ?? '';
      chunks++;
      if (chunks === 5 && !stalled) {
        stalled = true;
        process.kill(sidecar.pid, 'SIGSTOP');
        // Longer than the 300 ms message timeout, and long enough for the model server to finish its 60 words.
        setTimeout(() => process.kill(sidecar.pid, 'SIGCONT'), 2000);
      }
    }
  })();
  await consumed.catch(() => undefined);
  assert.ok(stalled, 'the stall happened mid-stream');
  const record = await waitFor(() => readAudit(stack.files.auditFile).find((r) => (r as unknown as { endpoint: string }).endpoint === 'chat'), {
    what: 'the stream audited once the sidecar resumed',
    timeoutMs: 10_000,
  });
  const rec = record as unknown as { outcome: string; status: number; usage: { completionTokens: number; source: string } | null };
  const words = received
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '').length;
  t.diagnostic(`client got ${chunks} chunks (${words} words) of 60; record: ${JSON.stringify({ outcome: rec.outcome, status: rec.status, usage: rec.usage })}`);
  assert.ok(words < 60, 'the client was cut off');
  assert.notEqual(rec.outcome, 'completed', 'a cut stream is never audited as completed');
  assert.equal(rec.outcome, 'aborted');
  assert.ok((rec.usage?.completionTokens ?? 0) < 60, `charged ${rec.usage?.completionTokens} of 60 tokens`);
});
