import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OpenAIToAnthropicSse } from '../../../src/families/translate/stream-openai-to-anthropic.ts';
import { cutsArb, data, openAIStream, runChunked, scriptArb } from './stream-fixtures.ts';

const make = () => new OpenAIToAnthropicSse({ clientModel: 'claude-alias' });

/** The events of an Anthropic stream: each `event: X` must match its data's type. */
function events(out: string): Array<Record<string, unknown>> {
  assert.ok(out === '' || out.endsWith('\n\n'), 'the output ends on an event boundary');
  return out
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      const [ev = '', d = '', ...rest] = e.split('\n');
      assert.equal(rest.length, 0, 'one event line and one data line');
      assert.ok(ev.startsWith('event: ') && d.startsWith('data: '), e);
      const obj = JSON.parse(d.slice(6)) as Record<string, unknown>;
      assert.equal(obj['type'], ev.slice(7), 'the event name is the data type');
      return obj;
    });
}

const chunk = (delta: object, finish: string | null = null) =>
  data({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-upstream',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
const usage = (prompt: number, completion: number, cached?: number) =>
  data({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-upstream',
    choices: [],
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      ...(cached === undefined ? {} : { prompt_tokens_details: { cached_tokens: cached } }),
    },
  });
const ROLE = chunk({ role: 'assistant', content: '' });
const DONE = data('[DONE]');
const call = (index: number, id: string | undefined, name: string | undefined, args: string) => ({
  tool_calls: [{ index, ...(id === undefined ? {} : { id, type: 'function' }), function: { ...(name === undefined ? {} : { name }), arguments: args } }],
});

const messageStart = {
  type: 'message_start',
  message: {
    id: 'chatcmpl-1',
    type: 'message',
    role: 'assistant',
    model: 'claude-alias',
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 0, output_tokens: 0 },
  },
};
const textStart = (index: number) => ({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
const textDelta = (index: number, text: string) => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
const toolStart = (index: number, id: string, name: string) => ({
  type: 'content_block_start',
  index,
  content_block: { type: 'tool_use', id, name, input: {} },
});
const jsonDelta = (index: number, partial_json: string) => ({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
const stop = (index: number) => ({ type: 'content_block_stop', index });
const messageDelta = (reason: string, u: object = { output_tokens: 0 }) => ({
  type: 'message_delta',
  delta: { stop_reason: reason, stop_sequence: null },
  usage: u,
});
const STOP = { type: 'message_stop' };
const fullUsage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: cacheRead,
  output_tokens: output,
});

const CASES: ReadonlyArray<{
  name: string;
  input: string;
  want: unknown[];
  usage?: { promptTokens: number; completionTokens: number; cachedPromptTokens: number } | null;
  chars?: number;
}> = [
  {
    name: 'text: message_start, one text block, message_delta with usage, message_stop',
    input: ROLE + chunk({ content: 'Hel' }) + chunk({ content: 'lo' }) + chunk({}, 'stop') + usage(12, 5) + DONE,
    want: [messageStart, textStart(0), textDelta(0, 'Hel'), textDelta(0, 'lo'), stop(0), messageDelta('end_turn', fullUsage(12, 5)), STOP],
    usage: { promptTokens: 12, completionTokens: 5, cachedPromptTokens: 0 },
    chars: 5,
  },
  {
    name: 'cached prompt tokens are cache reads; the rest input_tokens',
    input: ROLE + chunk({ content: 'x' }) + chunk({}, 'length') + usage(120, 4, 100) + DONE,
    want: [messageStart, textStart(0), textDelta(0, 'x'), stop(0), messageDelta('max_tokens', fullUsage(20, 4, 100)), STOP],
    usage: { promptTokens: 120, completionTokens: 4, cachedPromptTokens: 100 },
  },
  {
    name: 'tool calls: a tool_use block each, arguments as input_json_delta, blocks closed in order; tool_calls → tool_use',
    input:
      ROLE +
      chunk({ content: 'Checking.' }) +
      chunk(call(0, 'call_a', 'weather', '')) +
      chunk(call(0, undefined, undefined, '{"city":')) +
      chunk(call(0, undefined, undefined, '"Oslo"}')) +
      chunk(call(1, 'call_b', 'now', '{}')) +
      chunk({}, 'tool_calls') +
      usage(30, 9) +
      DONE,
    want: [
      messageStart,
      textStart(0),
      textDelta(0, 'Checking.'),
      stop(0),
      toolStart(1, 'call_a', 'weather'),
      jsonDelta(1, '{"city":'),
      jsonDelta(1, '"Oslo"}'),
      stop(1),
      toolStart(2, 'call_b', 'now'),
      jsonDelta(2, '{}'),
      stop(2),
      messageDelta('tool_use', fullUsage(30, 9)),
      STOP,
    ],
  },
  {
    name: 'tool call ids are made Anthropic-safe; a call without an id gets one derived from the message id',
    input: ROLE + chunk(call(0, 'functions.f:0', 'f', '{}')) + chunk(call(1, undefined, 'g', '{}')) + chunk({}, 'tool_calls') + DONE,
    want: [
      messageStart,
      toolStart(0, 'functions_f_0', 'f'),
      jsonDelta(0, '{}'),
      stop(0),
      toolStart(1, 'chatcmpl-1_1', 'g'),
      jsonDelta(1, '{}'),
      stop(1),
      messageDelta('tool_use'),
      STOP,
    ],
    usage: null,
  },
  {
    name: 'text after a tool call opens a new text block',
    input: ROLE + chunk(call(0, 'c', 'f', '{}')) + chunk({ content: 'after' }) + chunk({}, 'stop') + DONE,
    want: [messageStart, toolStart(0, 'c', 'f'), jsonDelta(0, '{}'), stop(0), textStart(1), textDelta(1, 'after'), stop(1), messageDelta('end_turn'), STOP],
  },
  {
    name: 'a refusal delta is text; content_filter → refusal',
    input: ROLE + chunk({ refusal: 'No.' }) + chunk({}, 'content_filter') + DONE,
    want: [messageStart, textStart(0), textDelta(0, 'No.'), stop(0), messageDelta('refusal'), STOP],
  },
  {
    name: 'an empty answer: no content block at all',
    input: ROLE + chunk({}, 'stop') + usage(3, 0) + DONE,
    want: [messageStart, messageDelta('end_turn', fullUsage(3, 0)), STOP],
  },
  {
    name: 'no usage chunk: output_tokens 0 and no reported usage',
    input: ROLE + chunk({ content: 'a' }) + chunk({}, 'stop') + DONE,
    want: [messageStart, textStart(0), textDelta(0, 'a'), stop(0), messageDelta('end_turn'), STOP],
    usage: null,
  },
  {
    name: 'an error event becomes an Anthropic error event and ends the stream',
    input:
      ROLE +
      chunk({ content: 'a' }) +
      data({ error: { message: 'The server had an error', type: 'server_error', param: null, code: null } }) +
      chunk({ content: 'b' }) +
      DONE,
    want: [messageStart, textStart(0), textDelta(0, 'a'), { type: 'error', error: { type: 'api_error', message: 'The server had an error' } }],
  },
  {
    name: 'a stream cut off before it finished gets no message_stop',
    input: ROLE + chunk({ content: 'partial' }),
    want: [messageStart, textStart(0), textDelta(0, 'partial')],
    usage: null,
  },
  {
    name: 'a stream that finished but sent no [DONE] is closed at its end',
    input: ROLE + chunk({ content: 'a' }) + chunk({}, 'stop') + usage(2, 1),
    want: [messageStart, textStart(0), textDelta(0, 'a'), stop(0), messageDelta('end_turn', fullUsage(2, 1)), STOP],
  },
  {
    name: 'comments, unreadable data, and reasoning deltas are skipped',
    input: ': keep-alive\n\n' + ROLE + 'data: {oops\n\n' + chunk({ reasoning_content: 'thinking…' }) + chunk({ content: 'ok' }) + chunk({}, 'stop') + DONE,
    want: [messageStart, textStart(0), textDelta(0, 'ok'), stop(0), messageDelta('end_turn'), STOP],
  },
  {
    name: 'events after [DONE] are ignored',
    input: ROLE + chunk({}, 'stop') + DONE + chunk({ content: 'late' }) + DONE,
    want: [messageStart, messageDelta('end_turn'), STOP],
  },
];

for (const c of CASES) {
  test(`OpenAI → Anthropic stream: ${c.name}`, () => {
    const t = make();
    assert.deepEqual(events(t.push(Buffer.from(c.input), true).toString('utf8')), c.want);
    if (c.usage !== undefined) assert.deepEqual(t.usage, c.usage);
    if (c.chars !== undefined) assert.equal(t.contentChars, c.chars);
  });
}

test('OpenAI → Anthropic stream: a first chunk without an id still starts a message with an id', () => {
  const [start] = events(
    make()
      .push(Buffer.from(data({ choices: [{ index: 0, delta: { content: 'a' } }] })), false)
      .toString(),
  );
  assert.match(((start?.['message'] as Record<string, unknown>)['id'] as string) ?? '', /^msg_[0-9a-f]{32}$/);
});

test('OpenAI → Anthropic stream: the same output for any chunking of the input, each piece whole UTF-8 (property)', () => {
  fc.assert(
    fc.property(
      scriptArb.chain((s) => {
        const bytes = Buffer.from(openAIStream(s));
        return fc.tuple(fc.constant(bytes), cutsArb(bytes.length));
      }),
      ([bytes, cuts]) => {
        const whole = make();
        const want = whole.push(bytes, true);
        const t = make();
        const outs = runChunked(t, bytes, cuts);
        for (const o of outs) assert.equal(Buffer.from(o.toString('utf8')).compare(o), 0, 'a piece of output is whole UTF-8');
        assert.equal(Buffer.concat(outs).toString('utf8'), want.toString('utf8'));
        assert.deepEqual(t.usage, whole.usage);
        assert.equal(t.contentChars, whole.contentChars);
      },
    ),
    { numRuns: 300 },
  );
});

test('OpenAI → Anthropic stream: one byte at a time', () => {
  const input = Buffer.from(ROLE + chunk({ content: 'Grüße ☃ 😀' }) + chunk(call(0, 'c', 'f', '{"k":"é"}')) + chunk({}, 'tool_calls') + usage(5, 5) + DONE);
  const want = make().push(input, true).toString();
  const got = runChunked(
    make(),
    input,
    Array.from({ length: input.length - 1 }, (_, i) => i + 1),
  );
  assert.equal(Buffer.concat(got).toString(), want);
});
