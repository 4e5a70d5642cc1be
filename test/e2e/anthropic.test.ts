/**
 * The Anthropic Messages API through the real thing: the official
 * @anthropic-ai/sdk client → Envoy → sidecar (own process) → the demo server
 * speaking Anthropic's API. Identity, the data policy, metering, the audit
 * record and errors work as for OpenAI's clients, in Anthropic's shapes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

let stack: TestStack;
const UPSTREAM_KEY = 'sk-ant-upstream-secret';

before(async () => {
  const credentialsDir = join(process.env['TMPDIR'] ?? '/tmp', `igw-anthropic-creds-${process.pid}`);
  mkdirSync(credentialsDir, { recursive: true });
  writeFileSync(join(credentialsDir, 'anthropic-key'), `${UPSTREAM_KEY}\n`);
  stack = await startTestStack({
    keys: [
      { principal: 'alice', org: 'acme', tenant: 'research' },
      { principal: 'carol', models: ['gpt-demo'] },
    ],
    models: [
      {
        id: 'claude-demo',
        endpoints: ['messages', 'count_tokens'],
        cluster: 'demo-upstream',
        model: 'demo-claude',
        provider: 'anthropic',
        credential: 'anthropic-key',
      },
      { id: 'gpt-demo', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model' },
      { id: 'claude-down', endpoints: ['messages'], cluster: 'dead-upstream', model: 'x', provider: 'anthropic' },
    ],
    extraClusters: [{ name: 'dead-upstream', host: '127.0.0.1', port: 1 }],
    config: {
      routing: { credentialsDir },
      policy: {
        rules: [
          { name: 'cards', classes: ['PCI'], action: 'redact' },
          { name: 'secrets', classes: ['SECRET'], action: 'deny' },
        ],
      },
    },
  });
});

after(async () => {
  await stack?.stop();
});

function client(principal = 'alice', headers: Record<string, string> = {}): Anthropic {
  return new Anthropic({ baseURL: stack.url, apiKey: stack.files.keys[principal] ?? 'igw_not-a-key', maxRetries: 0, timeout: 20_000, defaultHeaders: headers });
}

function lastUpstream(): RecordedRequest {
  const r = stack.upstream.requests.at(-1);
  assert.ok(r !== undefined, 'the model server saw no request');
  return r;
}

async function rejects<T extends InstanceType<typeof Anthropic.APIError>>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => T,
  status: number,
  type: string,
): Promise<T> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.deepEqual((err.error as { type: string; error: { type: string } }).type, 'error');
    assert.equal((err.error as { error: { type: string } }).error.type, type);
    return err;
  }
  throw new Error(`expected ${cls.name}`);
}

test('messages.create: routed to the Anthropic deployment with its own key; the client sees its alias and the usage', async () => {
  stack.upstream.clearRequests();
  const msg = await client().messages.create({
    model: 'claude-demo',
    max_tokens: 64,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'Hello there' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.model, 'claude-demo', "the alias, not the deployment's name");
  assert.ok(msg.content.some((b) => b.type === 'text' && b.text.length > 0));
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
  const up = lastUpstream();
  assert.equal(up.path, '/v1/messages');
  assert.equal((up.body as { model: string }).model, 'demo-claude');
  assert.equal(up.headers['x-api-key'], UPSTREAM_KEY, "the deployment's key, never the client's");
  assert.equal(up.headers['authorization'], undefined);
  assert.equal(up.headers['x-gateway-endpoint'], 'messages');
  assert.equal(up.headers['anthropic-version'] !== undefined, true, "the client's API version reaches the upstream");
});

test('messages.stream: text deltas and the final usage arrive; the record counts the streamed tokens', async () => {
  const stream = client().messages.stream({ model: 'claude-demo', max_tokens: 64, messages: [{ role: 'user', content: 'Tell me something' }] });
  let text = '';
  stream.on('text', (t) => {
    text += t;
  });
  const final = await stream.finalMessage();
  assert.ok(text.length > 0);
  assert.equal(final.model, 'claude-demo');
  const records = readAudit(stack.files.auditFile).filter((r) => (r as unknown as { endpoint: string }).endpoint === 'messages');
  const rec = records.at(-1) as unknown as { outcome: string; usage: { promptTokens: number; completionTokens: number; source: string } };
  assert.equal(rec.outcome, 'completed');
  assert.deepEqual(rec.usage, {
    promptTokens: final.usage.input_tokens,
    completionTokens: final.usage.output_tokens,
    cachedPromptTokens: 0,
    source: 'counted',
  });
});

test("tool use: the model's tool_use block comes back as the SDK expects", async () => {
  const msg = await client().messages.create({
    model: 'claude-demo',
    max_tokens: 64,
    tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  });
  assert.equal(msg.stop_reason, 'tool_use');
  assert.ok(msg.content.some((b) => b.type === 'tool_use' && b.name === 'get_weather'));
});

test("count_tokens and models.list answer in Anthropic's shapes; OpenAI's clients still get theirs", async () => {
  const counted = await client().messages.countTokens({ model: 'claude-demo', messages: [{ role: 'user', content: 'count these words please' }] });
  assert.ok(counted.input_tokens > 0);
  const page = await client().models.list();
  const ids = page.data.map((m) => m.id);
  assert.ok(ids.includes('claude-demo') && ids.includes('gpt-demo'));
  assert.equal(page.data[0]?.type, 'model');
  const openai = await stack.client('alice').models.list();
  assert.equal(openai.data[0]?.object, 'model');
});

test("the data policy reads Anthropic's text: a card in a text block is redacted before the model sees it; a secret is refused", async () => {
  await client().messages.create({
    model: 'claude-demo',
    max_tokens: 16,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'my card is 4111 1111 1111 1111' }] }],
  });
  const sent = JSON.stringify(lastUpstream().body);
  assert.ok(!sent.includes('4111 1111 1111 1111'), sent);
  assert.ok(sent.includes('[REDACTED:CREDIT_CARD]'), sent);
  await rejects(
    client().messages.create({ model: 'claude-demo', max_tokens: 16, system: 'key AKIAIOSFODNN7EXAMPLE', messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.PermissionDeniedError,
    403,
    'permission_error',
  );
});

test("errors reach the SDK as its own error classes, in Anthropic's envelope", async () => {
  await rejects(
    new Anthropic({ baseURL: stack.url, apiKey: 'igw_not-a-key', maxRetries: 0 }).messages.create({
      model: 'claude-demo',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    Anthropic.AuthenticationError,
    401,
    'authentication_error',
  );
  await rejects(
    client().messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.NotFoundError,
    404,
    'not_found_error',
  );
  await rejects(
    client('carol').messages.create({ model: 'claude-demo', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.PermissionDeniedError,
    403,
    'permission_error',
  );
  const noMax = { model: 'claude-demo', messages: [{ role: 'user', content: 'hi' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming;
  const bad = await rejects(client().messages.create(noMax), Anthropic.BadRequestError, 400, 'invalid_request_error');
  assert.match(bad.message, /max_tokens/);
  // The upstream's own error (here a scripted 429) passes through in its envelope.
  await rejects(
    client('alice', { 'x-demo-status': '429' }).messages.create({ model: 'claude-demo', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.RateLimitError,
    429,
    'rate_limit_error',
  );
  // Envoy's own error (the deployment is down) in Anthropic's envelope too.
  await rejects(
    client().messages.create({ model: 'claude-down', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    Anthropic.InternalServerError,
    503,
    'api_error',
  );
});
