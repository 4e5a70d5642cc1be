/**
 * The sidecar is not there, dies, or drains: Envoy must fail closed with our
 * JSON error (never pass a request through unexamined), and recover without
 * a restart once a sidecar is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({ withoutSidecar: true });
});

after(async () => {
  await stack.stop();
});

const ask = (s: TestStack, headers: Record<string, string> = {}) =>
  s.client('alice', headers).chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });

async function expectGatewayUnavailable(s: TestStack): Promise<void> {
  try {
    await ask(s);
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 503);
    assert.equal(err.code, 'gateway_unavailable');
    assert.equal((err.error as { type?: string }).type, 'server_error');
    assert.ok((err.headers as Headers | undefined)?.get('x-request-id'));
    return;
  }
  assert.fail('the request passed without a sidecar');
}

test('no sidecar: Envoy fails closed with 503 gateway_unavailable, nothing reaches the model', async () => {
  await expectGatewayUnavailable(stack);
  assert.equal(stack.upstream.requests.length, 0);
});

test('a sidecar started later is used without restarting Envoy', async () => {
  await stack.startSidecar();
  const r = await ask(stack);
  assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
});

test('sidecar killed (SIGKILL): fail closed; a restarted sidecar serves again', async () => {
  await stack.sidecar?.kill();
  stack.upstream.clearRequests();
  await expectGatewayUnavailable(stack);
  assert.equal(stack.upstream.requests.length, 0);
  await stack.startSidecar();
  const r = await ask(stack);
  assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
});

test("thousands of requests on Envoy's one connection to the sidecar: none fails (streams are closed, not reset)", async () => {
  // Regression: when the sidecar left finished streams for Envoy to reset, Node's HTTP/2
  // rapid-reset guard closed the connection after ~1000 resets and in-flight requests got 503.
  const client = stack.client();
  let failures = 0;
  const worker = async (n: number) => {
    for (let i = 0; i < n; i++) {
      try {
        await client.embeddings.create({ model: 'embed-demo', input: 'x' });
      } catch (err) {
        failures++;
        if (failures <= 3) process.stderr.write(`request failed: ${err instanceof OpenAI.APIError ? `${err.status} ${err.code}` : String(err)}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, () => worker(160)));
  assert.equal(failures, 0);
  const stats = await (await fetch(`${stack.envoy.adminUrl}/stats?filter=inference-gateway-sidecar`)).text();
  assert.match(stats, /cluster\.inference-gateway-sidecar\.upstream_rq_tx_reset: 0\b/, 'Envoy reset no sidecar stream');
});

test('SIGTERM drains: an in-flight stream completes and is audited, the sidecar exits 0, new requests fail closed', async () => {
  const sidecar = stack.sidecar;
  assert.ok(sidecar);
  // ~12 chunks 60 ms apart: the stream is in flight when the drain starts.
  const stream = await stack
    .client('alice', { 'x-demo-chunk-delay-ms': '60' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'slow' }] })
    .withResponse();
  const id = stream.response.headers.get('x-request-id');
  const exit = sidecar.stop();
  let text = '';
  for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? '';
  assert.match(text, /^Demo reply to: slow/);
  assert.equal(await exit, 0);
  const rec = readAudit(stack.files.auditFile).find((r) => r.requestId === id);
  assert.equal(rec?.outcome, 'completed');
  await expectGatewayUnavailable(stack);
});
