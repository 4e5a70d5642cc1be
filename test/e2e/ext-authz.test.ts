/**
 * The ext_authz path through real Envoy (envoy/ext-authz.yaml): the same
 * identity, model and routing decisions as ext_proc, the same errors; no
 * body rewrite and no token counting, by the protocol's nature.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({ filter: 'ext_authz', keys: [{ principal: 'alice' }, { principal: 'bob', models: ['embed-demo'] }] });
});

after(async () => {
  await stack.stop();
});

async function refusal(fn: () => Promise<unknown>): Promise<[number | undefined, string | null | undefined]> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    return [err.status, err.code];
  }
  return [200, 'accepted'];
}

test('an allowed request is routed by the sidecar and enriched; credentials and client x-gateway-* dropped', async () => {
  stack.upstream.clearRequests();
  const r = await stack
    .client('alice', { 'x-gateway-tenant': 'evil' })
    .chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
  const up = stack.upstream.requests.at(-1);
  assert.ok(up);
  assert.equal(up.headers['x-gateway-tenant'], 'research');
  assert.equal(up.headers['x-gateway-model'], 'gpt-demo');
  assert.equal(up.headers['authorization'], undefined);
  assert.equal((up.body as { model: string }).model, 'gpt-demo', 'ext_authz cannot rewrite the body');
});

test('refusals are the same JSON errors as with ext_proc, and nothing reaches the model', async () => {
  stack.upstream.clearRequests();
  const anon = new OpenAI({ baseURL: stack.baseURL, apiKey: 'x', maxRetries: 0, defaultHeaders: { authorization: null } });
  assert.deepEqual(await refusal(() => anon.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })), [
    401,
    'missing_api_key',
  ]);
  assert.deepEqual(await refusal(() => stack.client('bob').chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })), [
    403,
    'model_not_allowed',
  ]);
  assert.deepEqual(await refusal(() => stack.client().chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] })), [
    404,
    'model_not_found',
  ]);
  assert.equal(stack.upstream.requests.length, 0);
});

test('every check is audited', async () => {
  const records = readAudit(stack.files.auditFile);
  assert.ok(records.length >= 4);
  assert.ok(records.some((r) => r.outcome === 'denied' && r.decision.code === 'model_not_allowed'));
  assert.ok(records.some((r) => r.outcome === 'completed' && r.model === 'gpt-demo'));
});

test('sidecar down: fail closed with 503 gateway_unavailable', async () => {
  await stack.sidecar?.kill();
  stack.upstream.clearRequests();
  assert.deepEqual(await refusal(() => stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })), [
    503,
    'gateway_unavailable',
  ]);
  assert.equal(stack.upstream.requests.length, 0);
});
