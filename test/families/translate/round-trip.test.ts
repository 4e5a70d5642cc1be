/**
 * Requests through one API and back: for conversations both APIs express the
 * same way (alternating turns, non-empty texts, canonical JSON arguments),
 * nothing is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { anthropicToOpenAIChat } from '../../../src/families/translate/request-anthropic-to-openai.ts';
import { openAIChatToAnthropic } from '../../../src/families/translate/request-openai-to-anthropic.ts';
import type { AnthropicMessagesRequest } from '../../../src/families/translate/anthropic-types.ts';
import type { OpenAIChatRequest, OpenAIMessage } from '../../../src/families/translate/openai-types.ts';

const OPTS = { defaultMaxTokens: 999 };

const text = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' });
const toolName = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{0,11}$/);
const jsonObject = fc
  .dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
  .map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>);

/** One exchange: a user message, the assistant's answer and, if it called tools, one tool message per call. */
const exchange = fc
  .record({
    user: text,
    answer: fc.option(text, { nil: null }),
    calls: fc.array(fc.record({ name: toolName, args: jsonObject, result: text }), { maxLength: 3 }),
  })
  .filter((e) => e.answer !== null || e.calls.length > 0);

type Exchange = { user: string; answer: string | null; calls: Array<{ name: string; args: Record<string, unknown>; result: string }> };

let idSeq = 0;
function conversation(exchanges: readonly Exchange[]): OpenAIMessage[] {
  const out: OpenAIMessage[] = [];
  for (const e of exchanges) {
    out.push({ role: 'user', content: e.user });
    const ids = e.calls.map(() => `call_${++idSeq}`);
    out.push(
      e.calls.length === 0
        ? { role: 'assistant', content: e.answer }
        : {
            role: 'assistant',
            content: e.answer,
            tool_calls: e.calls.map((c, i) => ({ id: ids[i] as string, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })),
          },
    );
    e.calls.forEach((c, i) => out.push({ role: 'tool', tool_call_id: ids[i] as string, content: c.result }));
  }
  return out;
}

test('round trip OpenAI → Anthropic → OpenAI keeps a conversation with tool calls (property)', () => {
  fc.assert(
    fc.property(fc.array(exchange, { minLength: 1, maxLength: 4 }), fc.option(text, { nil: undefined }), (exchanges, system) => {
      const messages = conversation(exchanges);
      const req: OpenAIChatRequest = {
        model: 'alias',
        messages: system === undefined ? messages : [{ role: 'system', content: system }, ...messages],
        max_tokens: 50,
      };
      const back = anthropicToOpenAIChat(openAIChatToAnthropic(req, 'claude', OPTS), 'alias');
      assert.deepEqual(back, req);
    }),
    { numRuns: 200 },
  );
});

test('round trip Anthropic → OpenAI → Anthropic keeps a conversation with tool use and results', () => {
  const req: AnthropicMessagesRequest = {
    model: 'claude',
    max_tokens: 64,
    system: 'Be terse.',
    messages: [
      { role: 'user', content: 'weather in Oslo and Bergen?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking both.' },
          { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Oslo' } },
          { type: 'tool_use', id: 'toolu_2', name: 'weather', input: { city: 'Bergen' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'rain' },
          { type: 'text', text: 'and tomorrow?' },
        ],
      },
    ],
    stop_sequences: ['END'],
    temperature: 0.2,
    tools: [{ name: 'weather', description: 'Weather now', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
    tool_choice: { type: 'auto' },
    metadata: { user_id: 'u-1' },
    stream: true,
  };
  const back = openAIChatToAnthropic(anthropicToOpenAIChat(req, 'gpt'), 'claude', OPTS);
  assert.deepEqual(back, req);
});
