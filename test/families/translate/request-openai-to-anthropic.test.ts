import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openAIChatToAnthropic } from '../../../src/families/translate/request-openai-to-anthropic.ts';
import type { OpenAIChatRequest } from '../../../src/families/translate/openai-types.ts';
import { TranslationError } from '../../../src/families/translate/translation-error.ts';

const OPTS = { defaultMaxTokens: 1024 };
const base = (over: Partial<OpenAIChatRequest> & Record<string, unknown> = {}): OpenAIChatRequest => ({
  model: 'gpt-alias',
  messages: [{ role: 'user', content: 'hi' }],
  ...over,
});
const translate = (req: OpenAIChatRequest) => openAIChatToAnthropic(req, 'claude-upstream', OPTS);
const call = (id: string, name: string, args: string) => ({ id, type: 'function' as const, function: { name, arguments: args } });

const CASES: ReadonlyArray<{ name: string; req: OpenAIChatRequest; want: Record<string, unknown> }> = [
  {
    name: 'the smallest request: the upstream model, the default max_tokens, a string user turn',
    req: base(),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'max_tokens is kept',
    req: base({ max_tokens: 77 }),
    want: { model: 'claude-upstream', max_tokens: 77, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'max_completion_tokens wins over max_tokens',
    req: base({ max_tokens: 77, max_completion_tokens: 55 }),
    want: { model: 'claude-upstream', max_tokens: 55, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'a system message becomes system (a string)',
    req: base({
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'hi' },
      ],
    }),
    want: { model: 'claude-upstream', max_tokens: 1024, system: 'Be terse.', messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'system and developer messages anywhere become system text blocks, in order',
    req: base({
      messages: [
        { role: 'system', content: 'One.' },
        { role: 'user', content: 'hi' },
        { role: 'developer', content: [{ type: 'text', text: 'Two.' }] },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      system: [
        { type: 'text', text: 'One.' },
        { type: 'text', text: 'Two.' },
      ],
      messages: [{ role: 'user', content: 'hi' }],
    },
  },
  {
    name: 'user and assistant text turns alternate as they are',
    req: base({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'bye' },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'bye' },
      ],
    },
  },
  {
    name: 'consecutive user messages are merged into one turn',
    req: base({
      messages: [
        { role: 'user', content: 'one' },
        { role: 'user', content: 'two' },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'one' },
            { type: 'text', text: 'two' },
          ],
        },
      ],
    },
  },
  {
    name: 'text and image parts: a data: URL becomes a base64 source, an https URL a url source',
    req: base({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          ],
        },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    },
  },
  {
    name: 'assistant tool_calls become tool_use blocks (arguments parsed; empty arguments are {})',
    req: base({
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: 'Let me look.', tool_calls: [call('call_1', 'get_weather', '{"city":"Oslo"}'), call('call_2', 'now', '')] },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Let me look.' },
            { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } },
            { type: 'tool_use', id: 'call_2', name: 'now', input: {} },
          ],
        },
      ],
    },
  },
  {
    name: 'tool messages become tool_result blocks; consecutive ones and the next user message share one user turn, results first',
    req: base({
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [call('call_1', 'a', '{}'), call('call_2', 'b', '{}')] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '12 C' }] },
        { role: 'user', content: 'thanks' },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'call_1', name: 'a', input: {} },
            { type: 'tool_use', id: 'call_2', name: 'b', input: {} },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' },
            { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '12 C' }] },
            { type: 'text', text: 'thanks' },
          ],
        },
      ],
    },
  },
  {
    name: 'a user message then a tool message: the tool result still comes first in the merged turn',
    req: base({
      messages: [
        { role: 'assistant', content: null, tool_calls: [call('call_1', 'a', '{}')] },
        { role: 'user', content: 'and?' },
        { role: 'tool', tool_call_id: 'call_1', content: 'done' },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'a', input: {} }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_1', content: 'done' },
            { type: 'text', text: 'and?' },
          ],
        },
      ],
    },
  },
  {
    name: 'tool call ids with characters Anthropic refuses are rewritten the same way on both sides',
    req: base({
      messages: [
        { role: 'assistant', content: null, tool_calls: [call('functions.lookup:0', 'lookup', '{}')] },
        { role: 'tool', tool_call_id: 'functions.lookup:0', content: 'ok' },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 'functions_lookup_0', name: 'lookup', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'functions_lookup_0', content: 'ok' }] },
      ],
    },
  },
  {
    name: 'empty texts and empty messages are left out (Anthropic refuses empty text blocks)',
    req: base({
      messages: [
        { role: 'system', content: '' },
        {
          role: 'user',
          content: [
            { type: 'text', text: '' },
            { type: 'text', text: 'hi' },
          ],
        },
        { role: 'assistant', content: '' },
      ],
    }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'an assistant refusal (field or part) is kept as its text',
    req: base({
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: null, refusal: 'I cannot.' },
        { role: 'user', content: 'y' },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'Still no.' }] },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: 'I cannot.' },
        { role: 'user', content: 'y' },
        { role: 'assistant', content: 'Still no.' },
      ],
    },
  },
  {
    name: 'stop (a string) becomes stop_sequences',
    req: base({ stop: 'END' }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }], stop_sequences: ['END'] },
  },
  {
    name: 'stop (an array) becomes stop_sequences',
    req: base({ stop: ['a', 'b'] }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }], stop_sequences: ['a', 'b'] },
  },
  {
    name: 'temperature, top_p, top_k and stream are kept',
    req: base({ temperature: 0.5, top_p: 0.9, top_k: 40, stream: true }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }], temperature: 0.5, top_p: 0.9, top_k: 40, stream: true },
  },
  {
    name: 'stream: false and nulls are left out',
    req: base({ stream: false, temperature: null, top_p: null, stop: null, n: null, logprobs: null }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'tools: function → {name, description, input_schema}; strict is kept; no parameters → an empty object schema',
    req: base({
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true },
        },
        { type: 'function', function: { name: 'now' } },
      ],
    }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        { name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } }, strict: true },
        { name: 'now', input_schema: { type: 'object' } },
      ],
    },
  },
  ...(
    [
      ['auto', { type: 'auto' }],
      ['none', { type: 'none' }],
      ['required', { type: 'any' }],
      [
        { type: 'function', function: { name: 'now' } },
        { type: 'tool', name: 'now' },
      ],
    ] as const
  ).map(([choice, want]) => ({
    name: `tool_choice ${JSON.stringify(choice)} → ${JSON.stringify(want)}`,
    req: base({ tools: [{ type: 'function', function: { name: 'now' } }], tool_choice: choice }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ name: 'now', input_schema: { type: 'object' } }],
      tool_choice: want,
    },
  })),
  {
    name: 'parallel_tool_calls: false → disable_parallel_tool_use on the tool choice (auto when none was set)',
    req: base({ tools: [{ type: 'function', function: { name: 'now' } }], parallel_tool_calls: false }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ name: 'now', input_schema: { type: 'object' } }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    },
  },
  {
    name: 'parallel_tool_calls: false with tool_choice required → any with disable_parallel_tool_use',
    req: base({ tools: [{ type: 'function', function: { name: 'now' } }], tool_choice: 'required', parallel_tool_calls: false }),
    want: {
      model: 'claude-upstream',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ name: 'now', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    },
  },
  {
    name: 'user → metadata.user_id',
    req: base({ user: 'u-123' }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'u-123' } },
  },
  {
    name: 'safety_identifier → metadata.user_id when user is absent',
    req: base({ safety_identifier: 'hash-9' }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'hash-9' } },
  },
  {
    name: 'harmless parameters are dropped (stream_options, seed, store, metadata, service_tier, prompt_cache_key, a message name)',
    req: base({
      stream_options: { include_usage: true },
      seed: 7,
      store: true,
      metadata: { a: 'b' },
      service_tier: 'auto',
      prompt_cache_key: 'k',
      messages: [{ role: 'user', content: 'hi', name: 'bob' }],
    }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
  },
  {
    name: 'parameters at their neutral value are accepted and dropped (n: 1, logprobs: false, penalties 0, response_format text…)',
    req: base({
      n: 1,
      logprobs: false,
      top_logprobs: 0,
      presence_penalty: 0,
      frequency_penalty: 0,
      logit_bias: {},
      response_format: { type: 'text' },
      modalities: ['text'],
    }),
    want: { model: 'claude-upstream', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] },
  },
];

for (const c of CASES) {
  test(`OpenAI → Anthropic request: ${c.name}`, () => {
    assert.deepEqual(translate(c.req), c.want);
  });
}

const REFUSED: ReadonlyArray<{ name: string; req: OpenAIChatRequest; param: string; code: string; message?: RegExp }> = [
  { name: 'n > 1', req: base({ n: 2 }), param: 'n', code: 'unsupported_parameter', message: /'n' \(2\) is not supported .* Anthropic Messages API/ },
  { name: 'logprobs: true', req: base({ logprobs: true }), param: 'logprobs', code: 'unsupported_parameter' },
  { name: 'top_logprobs', req: base({ top_logprobs: 3 }), param: 'top_logprobs', code: 'unsupported_parameter' },
  {
    name: 'response_format json_object',
    req: base({ response_format: { type: 'json_object' } }),
    param: 'response_format',
    code: 'unsupported_parameter',
    message: /type json_object/,
  },
  {
    name: 'response_format json_schema',
    req: base({ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }),
    param: 'response_format',
    code: 'unsupported_parameter',
  },
  { name: 'presence_penalty', req: base({ presence_penalty: 0.5 }), param: 'presence_penalty', code: 'unsupported_parameter' },
  { name: 'frequency_penalty', req: base({ frequency_penalty: -1 }), param: 'frequency_penalty', code: 'unsupported_parameter' },
  { name: 'logit_bias', req: base({ logit_bias: { '50256': -100 } }), param: 'logit_bias', code: 'unsupported_parameter' },
  { name: 'audio output', req: base({ modalities: ['text', 'audio'] }), param: 'modalities', code: 'unsupported_parameter' },
  { name: 'reasoning_effort', req: base({ reasoning_effort: 'high' }), param: 'reasoning_effort', code: 'unsupported_parameter' },
  { name: 'an unknown parameter', req: base({ repetition_penalty: 1.1 }), param: 'repetition_penalty', code: 'unsupported_parameter' },
  {
    name: 'temperature above 1 (Anthropic: 0 to 1)',
    req: base({ temperature: 1.5 }),
    param: 'temperature',
    code: 'invalid_parameter',
    message: /between 0 and 1/,
  },
  {
    name: 'unparsable tool call arguments',
    req: base({ messages: [{ role: 'assistant', content: null, tool_calls: [call('c', 'f', '{oops')] }] }),
    param: 'messages[0].tool_calls[0].function.arguments',
    code: 'invalid_parameter',
  },
  {
    name: 'tool call arguments that are JSON but not an object',
    req: base({ messages: [{ role: 'assistant', content: null, tool_calls: [call('c', 'f', '[1,2]')] }] }),
    param: 'messages[0].tool_calls[0].function.arguments',
    code: 'invalid_parameter',
  },
  {
    name: 'an audio content part',
    req: base({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'x', format: 'wav' } }] }] }),
    param: 'messages[0].content[0]',
    code: 'unsupported_parameter',
  },
  {
    name: 'a file content part',
    req: base({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'file', file: { file_id: 'f' } },
          ],
        },
      ],
    }),
    param: 'messages[0].content[1]',
    code: 'unsupported_parameter',
  },
  {
    name: 'an image type Anthropic does not take',
    req: base({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/bmp;base64,AAAA' } }] }] }),
    param: 'messages[0].content[0].image_url.url',
    code: 'invalid_parameter',
  },
  {
    name: 'a data: URL that is not base64',
    req: base({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png,rawbytes' } }] }] }),
    param: 'messages[0].content[0].image_url.url',
    code: 'invalid_parameter',
  },
  {
    name: 'an image URL that is neither http(s) nor data:',
    req: base({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x/y.png' } }] }] }),
    param: 'messages[0].content[0].image_url.url',
    code: 'invalid_parameter',
  },
  { name: 'a custom tool', req: base({ tools: [{ type: 'custom', custom: { name: 'x' } }] }), param: 'tools[0]', code: 'unsupported_parameter' },
  {
    name: 'tool_choice allowed_tools',
    req: base({ tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } } }),
    param: 'tool_choice',
    code: 'unsupported_parameter',
  },
  {
    name: 'a legacy function_call in an assistant message',
    req: base({ messages: [{ role: 'assistant', content: 'x', function_call: { name: 'f', arguments: '{}' } }] }),
    param: 'messages[0].function_call',
    code: 'unsupported_parameter',
  },
];

for (const c of REFUSED) {
  test(`OpenAI → Anthropic request refuses ${c.name}, naming '${c.param}'`, () => {
    assert.throws(
      () => translate(c.req),
      (err: unknown) => {
        assert.ok(err instanceof TranslationError);
        assert.equal(err.param, c.param);
        assert.equal(err.code, c.code);
        assert.equal(err.status, 400);
        if (c.message !== undefined) assert.match(err.message, c.message);
        const g = err.toGatewayError();
        assert.equal(g?.code, 'invalid_request_body');
        assert.equal(g?.param, c.param);
        return true;
      },
    );
  });
}

test('OpenAI → Anthropic request: the input object is not modified', () => {
  const req = base({ messages: [{ role: 'assistant', content: null, tool_calls: [call('a:b', 'f', '{}')] }], stop: 'x', user: 'u' });
  const before = structuredClone(req);
  translate(req);
  assert.deepEqual(req, before);
});

test('OpenAI → Anthropic request: objects with null prototypes (as the OpenAI family parses them) translate the same', () => {
  const req = JSON.parse(
    JSON.stringify(base({ temperature: 0.2, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] })),
    (_k, v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.assign(Object.create(null) as object, v) : v),
  ) as OpenAIChatRequest;
  assert.deepEqual(
    JSON.parse(JSON.stringify(translate(req))),
    JSON.parse(JSON.stringify(translate(base({ temperature: 0.2, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] })))),
  );
});
