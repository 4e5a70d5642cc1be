/**
 * One error shape for every failure (issue #14): a model server that answers
 * outside its API — an HTML 500, an empty 502, a plain-text 429, a non-JSON
 * 200 — reaches the official clients as the gateway's JSON error, through
 * real Envoy; a server that already answers an API error passes unchanged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({
    models: [
      { id: 'gpt-demo', endpoints: ['chat', 'messages'], cluster: 'demo-upstream', model: 'demo-model' },
      { id: 'claude-demo', endpoints: ['messages'], cluster: 'demo-upstream', model: 'demo-claude', provider: 'anthropic' },
    ],
  });
});

after(async () => {
  await stack?.stop();
});

async function openaiError(headers: Record<string, string>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await stack.client('alice', headers).chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    return err;
  }
  assert.fail('expected an error');
}

test('an HTML 500 becomes a 502 upstream_error in OpenAI’s envelope, quoting the page’s start; audited failed', async () => {
  const err = await openaiError({ 'x-demo-status': '500', 'x-demo-raw-body': 'html' });
  assert.equal(err.status, 502);
  assert.equal(err.code, 'upstream_error');
  assert.match(err.message, /model server failed \(500: "<html> <head><title>500<\/title>/);
  const rec = readAudit(stack.files.auditFile).at(-1);
  assert.equal(rec?.outcome, 'failed');
  assert.equal(rec?.decision.code, 'upstream_error');
});

test('an empty 502 and a plain-text 503 and 504 keep 502, 503 and 504, in the envelope', async () => {
  for (const [status, kind] of [
    ['502', 'empty'],
    ['503', 'text'],
    ['504', 'text'],
  ] as const) {
    const err = await openaiError({ 'x-demo-status': status, 'x-demo-raw-body': kind });
    assert.equal(err.status, Number(status));
    assert.equal(err.code, 'upstream_error');
  }
});

test('a plain-text 429 stays a 429 (rate limit error class) with the server’s retry-after', async () => {
  const err = await openaiError({ 'x-demo-status': '429', 'x-demo-raw-body': 'text', 'x-demo-retry-after': '9' });
  assert.ok(err instanceof OpenAI.RateLimitError);
  assert.equal(err.code, 'upstream_rate_limited');
  assert.equal(err.headers?.get('retry-after'), '9');
});

test('a 200 whose body is not JSON is no answer: 502 upstream_response_invalid, audited failed', async () => {
  const err = await openaiError({ 'x-demo-raw-body': 'html' });
  assert.equal(err.status, 502);
  assert.equal(err.code, 'upstream_response_invalid');
  const rec = readAudit(stack.files.auditFile).at(-1);
  assert.equal(rec?.outcome, 'failed');
  assert.equal(rec?.status, 502);
});

test('an API error from the server passes unchanged, for OpenAI and Anthropic clients', async () => {
  const err = await openaiError({ 'x-demo-status': '500' });
  assert.equal(err.status, 500);
  assert.equal(err.code, 'demo_status_500');
  await assert.rejects(
    new Anthropic({
      baseURL: stack.url,
      apiKey: stack.files.keys['alice'] ?? '',
      maxRetries: 0,
      defaultHeaders: { 'x-demo-status': '500', 'x-demo-raw-body': 'html' },
    }).messages.create({ model: 'claude-demo', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof Anthropic.APIError && e.status === 502 && (e.error as { type?: string } | undefined)?.type === 'error',
  );
});

test('a stream the model server ends without [DONE]: the client got a cut answer, audited failed, never completed', async () => {
  const stream = await stack
    .client('alice', { 'x-demo-end-after': '3', 'x-demo-words': '20' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.ok(text.length > 0, 'the first events arrived');
  const rec = readAudit(stack.files.auditFile).at(-1);
  assert.equal(rec?.outcome, 'failed');
  assert.equal(rec?.status, 200);
  assert.equal(rec?.decision.code, 'upstream_response_invalid');
});
