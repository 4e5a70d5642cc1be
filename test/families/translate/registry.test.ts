import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ANTHROPIC_VERSION,
  AnthropicToOpenAISse,
  CLIENT_FAMILIES,
  OpenAIToAnthropicSse,
  PROVIDERS,
  TranslationError,
  translatorFor,
  type ClientFamily,
  type Provider,
} from '../../../src/families/translate/index.ts';
import { FAMILY_ENDPOINTS, providerServes } from '../../../src/families/endpoints.ts';

test('same-family pairs need no translation (null)', () => {
  assert.equal(translatorFor('openai', 'openai'), null);
  assert.equal(translatorFor('anthropic', 'anthropic'), null);
});

test('every pair of a client family and a different provider has its translator, named for the pair', () => {
  for (const client of CLIENT_FAMILIES) {
    for (const provider of PROVIDERS) {
      if ((client as string) === (provider as string)) continue;
      const t = translatorFor(client, provider);
      assert.ok(t !== null, `${client} → ${provider}`);
      assert.equal(t.client, client);
      assert.equal(t.provider, provider);
    }
  }
});

test('OpenAI client, Anthropic deployment: the request goes to /v1/messages with anthropic-version', () => {
  const t = translatorFor('openai', 'anthropic');
  assert.ok(t !== null);
  const up = t.request({ model: 'alias', messages: [{ role: 'user', content: 'hi' }] }, 'claude-x', { defaultMaxTokens: 4096 });
  assert.equal(up.path, '/v1/messages');
  assert.deepEqual(up.headers, [['anthropic-version', ANTHROPIC_VERSION]]);
  assert.deepEqual(up.body, { model: 'claude-x', max_tokens: 4096, messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(t.stream({ clientModel: 'alias', includeUsage: false }) instanceof AnthropicToOpenAISse);
  const { created, ...rest } = t.response({ id: 'msg_1', content: [{ type: 'text', text: 'x' }], stop_reason: 'end_turn' }, 'alias') as Record<string, unknown>;
  assert.equal(typeof created, 'number');
  assert.deepEqual(rest, {
    id: 'msg_1',
    object: 'chat.completion',
    model: 'alias',
    choices: [{ index: 0, message: { role: 'assistant', content: 'x', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  });
  assert.deepEqual(t.error(429, { type: 'error', error: { type: 'rate_limit_error', message: 'm' } }), {
    error: { message: 'm', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
  });
});

test('Anthropic client, OpenAI deployment: the request goes to /v1/chat/completions', () => {
  const t = translatorFor('anthropic', 'openai');
  assert.ok(t !== null);
  const up = t.request({ model: 'alias', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], stream: true }, 'gpt-x', { defaultMaxTokens: 4096 });
  assert.equal(up.path, '/v1/chat/completions');
  assert.deepEqual(up.headers, []);
  assert.deepEqual(up.removeHeaders, ['anthropic-version', 'anthropic-beta'], "an OpenAI server has no use for the Anthropic client's API headers");
  assert.deepEqual(up.body, {
    model: 'gpt-x',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 10,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.ok(t.stream({ clientModel: 'alias', includeUsage: false }) instanceof OpenAIToAnthropicSse);
  assert.deepEqual(t.response({ id: 'c1', choices: [{ index: 0, message: { content: 'x' }, finish_reason: 'stop' }] }, 'alias'), {
    id: 'c1',
    type: 'message',
    role: 'assistant',
    model: 'alias',
    content: [{ type: 'text', text: 'x' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  });
  assert.deepEqual(t.error(401, { error: { message: 'm', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }), {
    type: 'error',
    error: { type: 'authentication_error', message: 'm' },
  });
});

test('a request the upstream cannot express is a TranslationError through the registry too', () => {
  const t = translatorFor('openai', 'anthropic');
  assert.throws(() => t?.request({ model: 'a', messages: [{ role: 'user', content: 'hi' }], n: 3 }, 'c', { defaultMaxTokens: 1 }), TranslationError);
});

test('the translate folder imports only pipeline, shared and itself (and node builtins)', () => {
  const dir = join(import.meta.dirname, '../../../src/families/translate');
  for (const file of readdirSync(dir)) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1] as string;
      const ok = spec.startsWith('node:') || spec.startsWith('./') || spec.startsWith('../../pipeline/') || spec.startsWith('../../shared/');
      assert.ok(ok, `${file} imports ${spec}`);
    }
  }
});

test('what the snapshot accepts as translated (src/families/endpoints.ts) has a translator, and every translator serves some endpoint', () => {
  for (const [provider, own] of FAMILY_ENDPOINTS) {
    for (const [family, table] of FAMILY_ENDPOINTS) {
      if (family === provider) continue;
      const served = table.filter((e) => e.kind === 'inference' && !own.some((o) => o.name === e.name) && providerServes(provider, e.name));
      const translator = translatorFor(family as ClientFamily, provider as Provider);
      assert.equal(served.length > 0, translator !== null, `${family} clients on ${provider} deployments`);
    }
  }
});
