/**
 * Any client, any provider, through real Envoy: the official openai client
 * served by a deployment that speaks Anthropic's Messages API, and the
 * official @anthropic-ai/sdk client served by an OpenAI-compatible one. The
 * sidecar translates the request (body, path, credential style), the answer
 * (buffered, streamed, tool calls) and the errors; the demo server checks
 * each API's rules as the real ones would.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

let stack: TestStack;
const ANTHROPIC_KEY = 'sk-ant-translated-upstream';

before(async () => {
  const credentialsDir = join(process.env['TMPDIR'] ?? '/tmp', `igw-translate-creds-${process.pid}`);
  mkdirSync(credentialsDir, { recursive: true });
  writeFileSync(join(credentialsDir, 'anthropic-key'), `${ANTHROPIC_KEY}\n`);
  stack = await startTestStack({
    keys: [{ principal: 'alice' }],
    models: [
      { id: 'claude-for-openai', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-claude', provider: 'anthropic', credential: 'anthropic-key' },
      { id: 'gpt-for-anthropic', endpoints: ['messages'], cluster: 'demo-upstream', model: 'demo-model' },
    ],
    config: { routing: { credentialsDir } },
  });
});

after(async () => {
  await stack?.stop();
});

function anthropic(headers: Record<string, string> = {}): Anthropic {
  return new Anthropic({ baseURL: stack.url, apiKey: stack.files.keys['alice'] ?? '', maxRetries: 0, timeout: 20_000, defaultHeaders: headers });
}

function lastUpstream(): RecordedRequest {
  const r = stack.upstream.requests.at(-1);
  assert.ok(r !== undefined, 'the model server saw no request');
  return r;
}

function lastRecord(): { usage: { promptTokens: number; completionTokens: number; source: string } | null; outcome: string; status: number } {
  return readAudit(stack.files.auditFile).at(-1) as unknown as ReturnType<typeof lastRecord>;
}

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test("OpenAI client → Anthropic deployment: the request goes out as a Messages call with the deployment's key; the answer comes back as a chat completion", async () => {
  stack.upstream.clearRequests();
  const res = await stack.client().chat.completions.create({
    model: 'claude-for-openai',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there' },
    ],
  });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'claude-for-openai');
  assert.ok((res.choices[0]?.message.content ?? '').length > 0);
  assert.equal(res.choices[0]?.finish_reason, 'stop');
  assert.ok((res.usage?.prompt_tokens ?? 0) > 0 && (res.usage?.completion_tokens ?? 0) > 0);
  const up = lastUpstream();
  assert.equal(up.path, '/v1/messages');
  const body = up.body as { model: string; system: unknown; max_tokens: number; messages: unknown[] };
  assert.equal(body.model, 'demo-claude');
  assert.ok(body.max_tokens > 0, 'Anthropic requires max_tokens: the gateway sets one');
  assert.ok(JSON.stringify(body.system).includes('Be brief.'));
  assert.equal(up.headers['x-api-key'], ANTHROPIC_KEY);
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(up.headers['authorization'], undefined);
  assert.deepEqual(lastRecord().usage, {
    promptTokens: res.usage?.prompt_tokens,
    completionTokens: res.usage?.completion_tokens,
    cachedPromptTokens: 0,
    source: 'counted',
  });
});

test('OpenAI client → Anthropic deployment, streaming: chunks with the alias, then the usage the client asked for', async () => {
  const stream = await stack.client().chat.completions.create({
    model: 'claude-for-openai',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Tell me something' }],
  });
  let text = '';
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  for await (const chunk of stream) {
    assert.equal(chunk.model, 'claude-for-openai');
    text += chunk.choices[0]?.delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(text.length > 0);
  assert.ok(usage !== null && usage !== undefined && usage.completion_tokens > 0);
  assert.equal(lastUpstream().path, '/v1/messages');
  const rec = lastRecord();
  assert.equal(rec.outcome, 'completed');
  assert.deepEqual(rec.usage, { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, cachedPromptTokens: 0, source: 'counted' });
});

test('OpenAI client → Anthropic deployment: tools go out as Anthropic tools and the tool_use comes back as tool_calls', async () => {
  const res = await stack.client().chat.completions.create({
    model: 'claude-for-openai',
    tools: [{ type: 'function', function: WEATHER_TOOL }],
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  });
  const call = res.choices[0]?.message.tool_calls?.[0];
  assert.equal(res.choices[0]?.finish_reason, 'tool_calls');
  assert.ok(call !== undefined && call.type === 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof JSON.parse(call.function.arguments), 'object');
  assert.deepEqual(
    (lastUpstream().body as { tools: Array<{ name: string }> }).tools.map((t) => t.name),
    ['get_weather'],
  );
});

test('Anthropic client → OpenAI deployment: the request goes out as a chat completion; the answer comes back as a message', async () => {
  const msg = await anthropic().messages.create({
    model: 'gpt-for-anthropic',
    max_tokens: 64,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'Hello there' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.model, 'gpt-for-anthropic');
  assert.ok(msg.content.some((b) => b.type === 'text' && b.text.length > 0));
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
  const up = lastUpstream();
  assert.equal(up.path, '/v1/chat/completions');
  const body = up.body as { model: string; messages: Array<{ role: string }> };
  assert.equal(body.model, 'demo-model');
  assert.equal(body.messages[0]?.role, 'system');
  assert.equal(up.headers['anthropic-version'], undefined, 'no Anthropic headers to an OpenAI server');
});

test("Anthropic client → OpenAI deployment, streaming: Anthropic's events, text and the final usage", async () => {
  const stream = anthropic().messages.stream({ model: 'gpt-for-anthropic', max_tokens: 64, messages: [{ role: 'user', content: 'Tell me something' }] });
  let text = '';
  stream.on('text', (t) => {
    text += t;
  });
  const final = await stream.finalMessage();
  assert.ok(text.length > 0);
  assert.equal(final.model, 'gpt-for-anthropic');
  assert.ok(final.usage.output_tokens > 0);
  assert.equal((lastUpstream().body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage, true);
  assert.deepEqual(lastRecord().usage, {
    promptTokens: final.usage.input_tokens,
    completionTokens: final.usage.output_tokens,
    cachedPromptTokens: 0,
    source: 'counted',
  });
});

test("errors cross over in the client's envelope: an upstream 429 is the SDK's RateLimitError; a parameter the provider cannot express is a 400 naming it", async () => {
  await assert.rejects(
    stack.client('alice', { 'x-demo-status': '429' }).chat.completions.create({ model: 'claude-for-openai', messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof OpenAI.RateLimitError && err.status === 429 && typeof (err.error as { message?: unknown }).message === 'string',
  );
  await assert.rejects(
    anthropic({ 'x-demo-status': '503' }).messages.create({ model: 'gpt-for-anthropic', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof Anthropic.InternalServerError && err.status === 503 && (err.error as { type?: string }).type === 'error',
  );
  await assert.rejects(
    stack.client().chat.completions.create({ model: 'claude-for-openai', n: 2, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'n',
  );
});
