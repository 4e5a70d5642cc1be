import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicResponseToOpenAIChat } from '../../../src/families/translate/response-anthropic-to-openai.ts';
import { openAIChatResponseToAnthropic } from '../../../src/families/translate/response-openai-to-anthropic.ts';
import { finishReasonFromAnthropic, stopReasonFromOpenAI } from '../../../src/families/translate/reasons.ts';
import { TranslationError } from '../../../src/families/translate/translation-error.ts';

const CREATED = 1_700_000_000;

const anthropicMessage = (over: Record<string, unknown> = {}) => ({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-upstream',
  content: [{ type: 'text', text: 'Hello.' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 10, output_tokens: 3, cache_creation_input_tokens: null, cache_read_input_tokens: null },
  ...over,
});

const openAICompletion = (message: Record<string, unknown>, finish: string | null = 'stop', over: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: CREATED,
  model: 'gpt-upstream',
  choices: [{ index: 0, message: { role: 'assistant', refusal: null, ...message }, logprobs: null, finish_reason: finish }],
  usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
  ...over,
});

// ── Anthropic → OpenAI ─────────────────────────────────────────────────────

const TO_OPENAI: ReadonlyArray<{ name: string; resp: Record<string, unknown>; want: Record<string, unknown> }> = [
  {
    name: 'a text answer: the id kept, model = the client alias, usage mapped',
    resp: anthropicMessage(),
    want: {
      id: 'msg_01',
      object: 'chat.completion',
      created: CREATED,
      model: 'alias',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13, prompt_tokens_details: { cached_tokens: 0 } },
    },
  },
  {
    name: 'several text blocks are joined; thinking blocks are left out',
    resp: anthropicMessage({
      content: [
        { type: 'thinking', thinking: 'hmm', signature: 's' },
        { type: 'text', text: 'Hel' },
        { type: 'text', text: 'lo.' },
      ],
    }),
    want: {
      id: 'msg_01',
      object: 'chat.completion',
      created: CREATED,
      model: 'alias',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13, prompt_tokens_details: { cached_tokens: 0 } },
    },
  },
  {
    name: 'tool_use blocks become tool_calls (input serialized); no text → content null; tool_use → tool_calls',
    resp: anthropicMessage({
      content: [
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
        { type: 'tool_use', id: 'toolu_2', name: 'now', input: {} },
      ],
      stop_reason: 'tool_use',
    }),
    want: {
      id: 'msg_01',
      object: 'chat.completion',
      created: CREATED,
      model: 'alias',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: [
              { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
              { id: 'toolu_2', type: 'function', function: { name: 'now', arguments: '{}' } },
            ],
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13, prompt_tokens_details: { cached_tokens: 0 } },
    },
  },
  {
    name: 'cache reads and writes count as prompt tokens; reads are cached_tokens',
    resp: anthropicMessage({ usage: { input_tokens: 5, output_tokens: 7, cache_creation_input_tokens: 100, cache_read_input_tokens: 1000 } }),
    want: {
      id: 'msg_01',
      object: 'chat.completion',
      created: CREATED,
      model: 'alias',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1105, completion_tokens: 7, total_tokens: 1112, prompt_tokens_details: { cached_tokens: 1000 } },
    },
  },
  {
    name: 'an empty message: content "", no usage when the upstream sent none',
    resp: anthropicMessage({ content: [], usage: undefined, stop_reason: 'max_tokens' }),
    want: {
      id: 'msg_01',
      object: 'chat.completion',
      created: CREATED,
      model: 'alias',
      choices: [{ index: 0, message: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: 'length' }],
    },
  },
];

for (const c of TO_OPENAI) {
  test(`Anthropic → OpenAI response: ${c.name}`, () => {
    assert.deepEqual(anthropicResponseToOpenAIChat(c.resp, 'alias', { created: CREATED }), c.want);
  });
}

test('Anthropic → OpenAI response: a body without an id gets a stable derived one', () => {
  const resp = anthropicMessage({ id: undefined });
  const a = anthropicResponseToOpenAIChat(resp, 'alias', { created: CREATED });
  const b = anthropicResponseToOpenAIChat(structuredClone(resp), 'alias', { created: CREATED });
  assert.match(a.id, /^chatcmpl-[0-9a-f]{24}$/);
  assert.equal(a.id, b.id);
  assert.notEqual(anthropicResponseToOpenAIChat(anthropicMessage({ id: undefined, content: [{ type: 'text', text: 'other' }] }), 'alias').id, a.id);
});

test('Anthropic → OpenAI response: created defaults to now', () => {
  const before = Math.floor(Date.now() / 1000);
  const { created } = anthropicResponseToOpenAIChat(anthropicMessage(), 'alias');
  assert.ok(created >= before && created <= Math.floor(Date.now() / 1000));
});

test('Anthropic → OpenAI response: a malformed body does not throw', () => {
  const out = anthropicResponseToOpenAIChat({ content: 'nope', usage: 'x', stop_reason: 7 }, 'alias', { created: CREATED });
  assert.equal(out.choices[0]?.message.content, '');
  assert.equal(out.choices[0]?.finish_reason, 'stop');
  assert.equal(out.usage, undefined);
});

// ── OpenAI → Anthropic ─────────────────────────────────────────────────────

const USAGE_10_3 = { input_tokens: 10, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

const TO_ANTHROPIC: ReadonlyArray<{ name: string; resp: Record<string, unknown>; want: Record<string, unknown> }> = [
  {
    name: 'a text answer: the id kept, model = the client alias, usage mapped',
    resp: openAICompletion({ content: 'Hello.' }),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [{ type: 'text', text: 'Hello.' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: USAGE_10_3,
    },
  },
  {
    name: 'tool_calls become tool_use blocks (arguments parsed, ids made Anthropic-safe); tool_calls → tool_use',
    resp: openAICompletion(
      {
        content: 'Checking.',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          { id: 'fn.now:1', type: 'function', function: { name: 'now', arguments: '' } },
        ],
      },
      'tool_calls',
    ),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } },
        { type: 'tool_use', id: 'fn_now_1', name: 'now', input: {} },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: USAGE_10_3,
    },
  },
  {
    name: 'a refusal becomes the text; content_filter → refusal',
    resp: openAICompletion({ content: null, refusal: 'I cannot help.' }, 'content_filter'),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [{ type: 'text', text: 'I cannot help.' }],
      stop_reason: 'refusal',
      stop_sequence: null,
      usage: USAGE_10_3,
    },
  },
  {
    name: 'cached prompt tokens become cache_read_input_tokens, the rest input_tokens; length → max_tokens',
    resp: openAICompletion({ content: 'x' }, 'length', {
      usage: { prompt_tokens: 1100, completion_tokens: 9, total_tokens: 1109, prompt_tokens_details: { cached_tokens: 1000 } },
    }),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [{ type: 'text', text: 'x' }],
      stop_reason: 'max_tokens',
      stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 1000 },
    },
  },
  {
    name: 'no usage, no content, no finish reason: zeros, empty content, stop_reason null',
    resp: openAICompletion({ content: null }, null, { usage: undefined }),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  },
  {
    name: 'content as an array of text parts (some servers) is joined',
    resp: openAICompletion({
      content: [
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ],
    }),
    want: {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'alias',
      content: [{ type: 'text', text: 'ab' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: USAGE_10_3,
    },
  },
];

for (const c of TO_ANTHROPIC) {
  test(`OpenAI → Anthropic response: ${c.name}`, () => {
    assert.deepEqual(openAIChatResponseToAnthropic(c.resp, 'alias'), c.want);
  });
}

test('OpenAI → Anthropic response: only the first choice is used', () => {
  const resp = openAICompletion({ content: 'first' });
  (resp.choices as unknown[]).unshift({ index: 1, message: { role: 'assistant', content: 'second' }, finish_reason: 'stop' });
  assert.deepEqual(openAIChatResponseToAnthropic(resp, 'alias').content, [{ type: 'text', text: 'first' }]);
});

test('OpenAI → Anthropic response: tool call arguments that are not a JSON object are a 502 TranslationError', () => {
  const resp = openAICompletion({ content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":' } }] }, 'length');
  assert.throws(
    () => openAIChatResponseToAnthropic(resp, 'alias'),
    (err: unknown) => err instanceof TranslationError && err.status === 502 && err.code === 'untranslatable_response' && err.toGatewayError() === null,
  );
});

test('OpenAI → Anthropic response: a body without an id gets a stable derived msg_ id', () => {
  const a = openAIChatResponseToAnthropic(openAICompletion({ content: 'x' }, 'stop', { id: undefined }), 'alias');
  const b = openAIChatResponseToAnthropic(openAICompletion({ content: 'x' }, 'stop', { id: undefined }), 'alias');
  assert.match(a.id, /^msg_[0-9a-f]{24}$/);
  assert.equal(a.id, b.id);
});

// ── Stop reasons, both ways ───────────────────────────────────────────────

const STOP_TO_FINISH = [
  ['end_turn', 'stop'],
  ['stop_sequence', 'stop'],
  ['pause_turn', 'stop'],
  ['max_tokens', 'length'],
  ['model_context_window_exceeded', 'length'],
  ['tool_use', 'tool_calls'],
  ['refusal', 'content_filter'],
  [null, null],
  ['some_future_reason', 'stop'],
] as const;
for (const [from, to] of STOP_TO_FINISH) {
  test(`stop_reason ${String(from)} → finish_reason ${String(to)}`, () => assert.equal(finishReasonFromAnthropic(from), to));
}

const FINISH_TO_STOP = [
  ['stop', 'end_turn'],
  ['length', 'max_tokens'],
  ['tool_calls', 'tool_use'],
  ['function_call', 'tool_use'],
  ['content_filter', 'refusal'],
  [null, null],
  ['eos', 'end_turn'],
] as const;
for (const [from, to] of FINISH_TO_STOP) {
  test(`finish_reason ${String(from)} → stop_reason ${String(to)}`, () => assert.equal(stopReasonFromOpenAI(from), to));
}

// ── Round trips ────────────────────────────────────────────────────────────

test('round trip: an Anthropic message through OpenAI and back keeps content, stop reason and usage (no cache writes)', () => {
  const original = anthropicMessage({
    content: [
      { type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'toolu_9', name: 'f', input: { a: [1, { b: 'c' }] } },
    ],
    stop_reason: 'tool_use',
    usage: { input_tokens: 4, output_tokens: 6, cache_creation_input_tokens: 0, cache_read_input_tokens: 50 },
  });
  const back = openAIChatResponseToAnthropic(anthropicResponseToOpenAIChat(original, 'alias', { created: CREATED }), 'claude-upstream');
  assert.deepEqual(back, original);
});

test('round trip: an OpenAI completion through Anthropic and back keeps content, finish reason and usage', () => {
  const original = openAICompletion(
    { content: 'Hi.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }] },
    'tool_calls',
    { model: 'alias', usage: { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35, prompt_tokens_details: { cached_tokens: 20 } } },
  );
  const back = anthropicResponseToOpenAIChat(openAIChatResponseToAnthropic(original, 'claude'), 'alias', { created: CREATED });
  assert.deepEqual(back, original);
});
