/**
 * Envoy upstream hygiene (issue #14): a model server closes an idle
 * keep-alive connection after 5 s (Node's default, like many servers); a
 * request Envoy sends on it at that moment fails. Envoy closes idle upstream
 * connections first (4 s, envoy/gateway.yaml), so the next request opens a
 * fresh one. Waits on Envoy's own counter, not on a fixed sleep.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({});
});

after(async () => {
  await stack?.stop();
});

async function counter(name: string): Promise<number> {
  const text = await (await fetch(`${stack.envoy.adminUrl}/stats?filter=${encodeURIComponent(`^cluster\\.demo-upstream\\.${name}$`)}`)).text();
  const m = /: (\d+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

test('Envoy closes an idle upstream connection before the model server’s 5 s keep-alive does, and the next request succeeds', async (t) => {
  const chat = () => stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
  await chat();
  const opened = await counter('upstream_cx_total');
  const t0 = Date.now();
  // Envoy's idle timer closes the connection (upstream_cx_idle_timeout), not the server (which would be a remote close).
  await waitFor(async () => (await counter('upstream_cx_idle_timeout')) >= 1, {
    what: "Envoy's idle timeout on the upstream connection",
    timeoutMs: 8000,
    intervalMs: 100,
  });
  const closedAfter = Date.now() - t0;
  t.diagnostic(`idle upstream connection closed by Envoy after ~${closedAfter} ms`);
  assert.ok(closedAfter < 5000, `closed after ${closedAfter} ms: not before the server's 5 s keep-alive`);
  assert.equal(await counter('upstream_cx_destroy_remote'), 0, 'the model server never had to close it');
  await chat();
  assert.equal(await counter('upstream_cx_total'), opened + 1, 'the next request opened a fresh connection');
});
