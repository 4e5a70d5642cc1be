import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AnthropicToOpenAISse } from '../../../src/families/translate/stream-anthropic-to-openai.ts';
import { anthropicStream, cutsArb, runChunked, scriptArb, sse } from './stream-fixtures.ts';

const CREATED = 1_700_000_000;
const make = (includeUsage = false) => new AnthropicToOpenAISse({ clientModel: 'alias', includeUsage, created: CREATED });

/** The `data:` payloads of an OpenAI stream, parsed ([DONE] kept as a string). */
function payloads(out: string): unknown[] {
  assert.ok(out === '' || out.endsWith('\n\n'), 'the output ends on an event boundary');
  return out
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      assert.ok(e.startsWith('data: '), `an OpenAI event is one data line: ${e}`);
      const d = e.slice(6);
      return d === '[DONE]' ? d : (JSON.parse(d) as unknown);
    });
}

const chunk = (delta: object, finish: string | null = null, id = 'msg_1') => ({
  id,
  object: 'chat.completion.chunk',
  created: CREATED,
  model: 'alias',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
});
const usageChunk = (prompt: number, completion: number, cached = 0) => ({
  id: 'msg_1',
  object: 'chat.completion.chunk',
  created: CREATED,
  model: 'alias',
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } },
});

const START = sse('message_start', {
  message: {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-upstream',
    content: [],
    stop_reason: null,
    usage: { input_tokens: 12, output_tokens: 1 },
  },
});
const textBlock = (index: number, ...texts: string[]) =>
  sse('content_block_start', { index, content_block: { type: 'text', text: '' } }) +
  texts.map((text) => sse('content_block_delta', { index, delta: { type: 'text_delta', text } })).join('') +
  sse('content_block_stop', { index });
const toolBlock = (index: number, id: string, name: string, ...parts: string[]) =>
  sse('content_block_start', { index, content_block: { type: 'tool_use', id, name, input: {} } }) +
  parts.map((partial_json) => sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } })).join('') +
  sse('content_block_stop', { index });
const end = (stop: string, output = 5, extra: object = {}) =>
  sse('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output, ...extra } }) + sse('message_stop', {});

const ROLE = chunk({ role: 'assistant', content: '' });

const CASES: ReadonlyArray<{
  name: string;
  input: string;
  includeUsage?: boolean;
  want: unknown[];
  usage?: { promptTokens: number; completionTokens: number; cachedPromptTokens: number } | null;
  chars?: number;
}> = [
  {
    name: 'text: a role chunk, content deltas, the finish chunk, [DONE]; ping dropped',
    input: START + sse('ping', {}) + textBlock(0, 'Hel', 'lo') + end('end_turn'),
    want: [ROLE, chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({}, 'stop'), '[DONE]'],
    usage: { promptTokens: 12, completionTokens: 5, cachedPromptTokens: 0 },
    chars: 5,
  },
  {
    name: 'the usage chunk (choices: []) before [DONE] when the client asked for it',
    input: START + textBlock(0, 'Hi') + end('end_turn', 2),
    includeUsage: true,
    want: [ROLE, chunk({ content: 'Hi' }), chunk({}, 'stop'), usageChunk(12, 2), '[DONE]'],
    usage: { promptTokens: 12, completionTokens: 2, cachedPromptTokens: 0 },
  },
  {
    name: 'cache reads and writes count as prompt tokens (cached_tokens = reads)',
    input:
      sse('message_start', {
        message: { id: 'msg_1', usage: { input_tokens: 3, cache_read_input_tokens: 100, cache_creation_input_tokens: 20, output_tokens: 1 } },
      }) +
      textBlock(0, 'x') +
      end('end_turn', 4),
    includeUsage: true,
    want: [ROLE, chunk({ content: 'x' }), chunk({}, 'stop'), usageChunk(123, 4, 100), '[DONE]'],
    usage: { promptTokens: 123, completionTokens: 4, cachedPromptTokens: 100 },
  },
  {
    name: 'tool_use blocks: tool_calls deltas with index, id, name, then argument fragments; tool_use → tool_calls',
    input:
      START + textBlock(0, 'Let me check.') + toolBlock(1, 'toolu_a', 'weather', '', '{"city":', '"Oslo"}') + toolBlock(2, 'toolu_b', 'now') + end('tool_use'),
    want: [
      ROLE,
      chunk({ content: 'Let me check.' }),
      chunk({ tool_calls: [{ index: 0, id: 'toolu_a', type: 'function', function: { name: 'weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'toolu_b', type: 'function', function: { name: 'now', arguments: '' } }] }),
      chunk({}, 'tool_calls'),
      '[DONE]',
    ],
  },
  {
    name: 'a tool_use block that starts with its input sends it as the first arguments',
    input: START + sse('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 't', name: 'f', input: { a: 1 } } }) + end('tool_use'),
    want: [
      ROLE,
      chunk({ tool_calls: [{ index: 0, id: 't', type: 'function', function: { name: 'f', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] }),
      chunk({}, 'tool_calls'),
      '[DONE]',
    ],
  },
  {
    name: 'thinking, signature and citation deltas are dropped',
    input:
      START +
      sse('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '' } }) +
      sse('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: 'hmm' } }) +
      sse('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'sig' } }) +
      sse('content_block_stop', { index: 0 }) +
      textBlock(1, 'Yes.') +
      sse('content_block_delta', { index: 1, delta: { type: 'citations_delta', citation: {} } }) +
      end('end_turn'),
    want: [ROLE, chunk({ content: 'Yes.' }), chunk({}, 'stop'), '[DONE]'],
  },
  ...(
    [
      ['max_tokens', 'length'],
      ['stop_sequence', 'stop'],
      ['refusal', 'content_filter'],
      ['model_context_window_exceeded', 'length'],
    ] as const
  ).map(([stop, finish]) => ({
    name: `stop_reason ${stop} → finish_reason ${finish}`,
    input: START + textBlock(0, 'a') + end(stop),
    want: [ROLE, chunk({ content: 'a' }), chunk({}, finish), '[DONE]'],
  })),
  {
    name: 'an error event becomes an OpenAI error event and ends the stream (nothing after it)',
    input: START + textBlock(0, 'a') + sse('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }) + textBlock(1, 'late') + end('end_turn'),
    want: [ROLE, chunk({ content: 'a' }), { error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded' } }],
    usage: null,
  },
  {
    name: 'a stream cut off before message_stop gets no [DONE] and reports no usage',
    input: START + textBlock(0, 'partial'),
    want: [ROLE, chunk({ content: 'partial' })],
    usage: null,
    chars: 7,
  },
  {
    name: 'unknown events and unreadable data are skipped',
    input: START + sse('future_event', { x: 1 }) + 'event: content_block_delta\ndata: {not json\n\n' + 'data: [1,2]\n\n' + textBlock(0, 'ok') + end('end_turn'),
    want: [ROLE, chunk({ content: 'ok' }), chunk({}, 'stop'), '[DONE]'],
  },
  {
    name: 'message_stop without message_delta still finishes (finish_reason stop)',
    input: START + textBlock(0, 'a') + sse('message_stop', {}),
    want: [ROLE, chunk({ content: 'a' }), chunk({}, 'stop'), '[DONE]'],
    usage: null,
  },
];

for (const c of CASES) {
  test(`Anthropic → OpenAI stream: ${c.name}`, () => {
    const t = make(c.includeUsage ?? false);
    const out = t.push(Buffer.from(c.input), true).toString('utf8');
    assert.deepEqual(payloads(out), c.want);
    if (c.usage !== undefined) assert.deepEqual(t.usage, c.usage);
    if (c.chars !== undefined) assert.equal(t.contentChars, c.chars);
  });
}

test('Anthropic → OpenAI stream: a stream without message_start still gets chunks with an id', () => {
  const t = make();
  const [first] = payloads(t.push(Buffer.from(textBlock(0, 'a') + end('end_turn')), true).toString()) as Array<{ id: string; model: string }>;
  assert.match(first?.id ?? '', /^chatcmpl-/);
  assert.equal(first?.model, 'alias');
});

test('Anthropic → OpenAI stream: output comes as events complete, nothing is held back longer', () => {
  const t = make();
  assert.equal(t.push(Buffer.from(START.slice(0, 20)), false).length, 0);
  assert.equal(payloads(t.push(Buffer.from(START.slice(20)), false).toString()).length, 1);
  assert.equal(t.push(Buffer.from(''), false).length, 0);
});

test('Anthropic → OpenAI stream: the same output for any chunking of the input, each piece whole UTF-8 (property)', () => {
  fc.assert(
    fc.property(
      scriptArb.chain((s) => {
        const bytes = Buffer.from(anthropicStream(s));
        return fc.tuple(fc.constant(s), fc.constant(bytes), cutsArb(bytes.length), fc.boolean());
      }),
      ([, bytes, cuts, includeUsage]) => {
        const whole = make(includeUsage);
        const want = whole.push(bytes, true);
        const t = make(includeUsage);
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

test('Anthropic → OpenAI stream: one byte at a time', () => {
  const input = Buffer.from(START + textBlock(0, 'Grüße ☃ 😀') + toolBlock(1, 't', 'f', '{"k":"é"}') + end('tool_use'));
  const want = make(true).push(input, true).toString();
  const t = make(true);
  const got = runChunked(
    t,
    input,
    Array.from({ length: input.length - 1 }, (_, i) => i + 1),
  );
  assert.equal(Buffer.concat(got).toString(), want);
});
