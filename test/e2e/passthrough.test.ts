/**
 * A request the deployment takes exactly as the client sent it (the model's
 * name upstream is its alias, nothing redacted, capped or added) goes through
 * real Envoy with the client's own bytes: the sidecar asks for no body
 * replacement and no content-length change (issue #15). Anything that does
 * change the body still replaces it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { DEFAULT_MODELS, readAudit } from '../helpers/fixtures.ts';

let stack: TestStack;
let key: string;

before(async () => {
  stack = await startTestStack({
    // `demo-model` is served under its own name; `gpt-demo` is an alias for it (renamed on the way up).
    models: [...DEFAULT_MODELS, { id: 'demo-model', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model' }],
    config: { policy: { rules: [{ name: 'pii', classes: ['PII'], action: 'redact' }], defaultAction: 'permit' } },
  });
  key = stack.files.keys['alice'] ?? '';
});

after(async () => {
  await stack.stop();
});

function post(body: string): Promise<Response> {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  });
}

test("the official client's request reaches the model server byte for byte, and its answer comes back", async () => {
  stack.upstream.clearRequests();
  const client = new OpenAI({ apiKey: key, baseURL: `${stack.url}/v1`, maxRetries: 0 });
  const res = await client.chat.completions.create({ model: 'demo-model', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 16 });
  assert.equal(res.model, 'demo-model');
  assert.ok((res.choices[0]?.message.content ?? '').length > 0);
  const seen = stack.upstream.requests.at(-1);
  assert.ok(seen !== undefined, 'the model server saw the request');
  assert.deepEqual(seen.body, { model: 'demo-model', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 16 });
  assert.equal(seen.headers['content-length'], String(seen.rawBody.length));
  assert.equal(seen.headers['x-gateway-target-cluster'], undefined, 'the routing header stays in Envoy');
  assert.equal(seen.headers['authorization'], undefined, "the client's credential never reaches the model server");
});

test("the client's formatting survives (proof no one re-serialized it), a large body included", async () => {
  stack.upstream.clearRequests();
  const sent = `{ "model" : "demo-model",\n  "messages": [ { "role": "user", "content": "caf\\u00e9 ${'x'.repeat(512 * 1024)}" } ] }`;
  const res = await post(sent);
  assert.equal(res.status, 200, await res.clone().text());
  const seen = stack.upstream.requests.at(-1);
  assert.equal(seen?.rawBody.toString('utf8'), sent);
  const rec = readAudit(stack.files.auditFile).find((r) => r.requestId === res.headers.get('x-request-id'));
  assert.equal(rec?.outcome, 'completed');
  assert.equal(rec?.deployment?.model, 'demo-model');
});

test('a body sent in chunks (no content-length) also goes on as sent, and the model server reads all of it', async () => {
  stack.upstream.clearRequests();
  const sent = JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: `chunked ${'y'.repeat(64 * 1024)}` }] });
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `${stack.url}/v1/chat/completions`,
      { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    // Three writes, so the body arrives in several chunks.
    const third = Math.ceil(sent.length / 3);
    req.write(sent.slice(0, third));
    req.write(sent.slice(third, 2 * third));
    req.end(sent.slice(2 * third));
  });
  assert.equal(status, 200);
  const seen = stack.upstream.requests.at(-1);
  assert.equal(seen?.rawBody.toString('utf8'), sent);
});

test('what the gateway must change is still changed: the alias, a stream without usage, a redaction', async () => {
  stack.upstream.clearRequests();
  const alias = await post(JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(alias.status, 200);
  assert.equal((stack.upstream.requests.at(-1)?.body as { model: string }).model, 'demo-model');

  const stream = await post(JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'hi' }], stream: true }));
  assert.equal(stream.status, 200);
  await stream.text();
  assert.deepEqual((stack.upstream.requests.at(-1)?.body as { stream_options: unknown }).stream_options, { include_usage: true });

  const pii = await post(JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: 'mail me at jane.doe@example.com' }] }));
  assert.equal(pii.status, 200, await pii.clone().text());
  const seen = stack.upstream.requests.at(-1);
  const text = (seen?.body as { messages: Array<{ content: string }> }).messages[0]?.content ?? '';
  assert.ok(!text.includes('jane.doe@example.com'), `the address must not reach the model: ${text}`);
  assert.equal(seen?.headers['content-length'], String(seen?.rawBody.length));
});
