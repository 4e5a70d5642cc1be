import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicToOpenAIChat } from '../../../src/families/translate/request-anthropic-to-openai.ts';
import type { AnthropicMessagesRequest } from '../../../src/families/translate/anthropic-types.ts';
import { TranslationError } from '../../../src/families/translate/translation-error.ts';

const base = (over: Partial<AnthropicMessagesRequest> & Record<string, unknown> = {}): AnthropicMessagesRequest => ({
  model: 'claude-alias',
  max_tokens: 256,
  messages: [{ role: 'user', content: 'hi' }],
  ...over,
});
const translate = (req: AnthropicMessagesRequest) => anthropicToOpenAIChat(req, 'gpt-upstream');
const HI = { role: 'user', content: 'hi' };

const CASES: ReadonlyArray<{ name: string; req: AnthropicMessagesRequest; want: Record<string, unknown> }> = [
  {
    name: 'the smallest request: the upstream model, max_tokens, a string user turn',
    req: base(),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256 },
  },
  {
    name: 'system (a string) becomes the first message',
    req: base({ system: 'Be terse.' }),
    want: { model: 'gpt-upstream', messages: [{ role: 'system', content: 'Be terse.' }, HI], max_tokens: 256 },
  },
  {
    name: 'system (text blocks, cache hints) becomes the first message with text parts',
    req: base({
      system: [
        { type: 'text', text: 'One.', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Two.' },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [
        {
          role: 'system',
          content: [
            { type: 'text', text: 'One.' },
            { type: 'text', text: 'Two.' },
          ],
        },
        HI,
      ],
      max_tokens: 256,
    },
  },
  {
    name: 'a system turn inside messages stays where it is',
    req: base({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'system', content: 'Now be formal.' },
        { role: 'user', content: 'ok' },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [HI, { role: 'system', content: 'Now be formal.' }, { role: 'user', content: 'ok' }],
      max_tokens: 256,
    },
  },
  {
    name: 'text blocks: one becomes a string, several become text parts',
    req: base({
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'only' }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'text', text: 'y' },
          ],
        },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [
        { role: 'user', content: 'only' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'text', text: 'y' },
          ],
        },
      ],
      max_tokens: 256,
    },
  },
  {
    name: 'image blocks: base64 → a data: URL, url → the URL',
    req: base({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
      max_tokens: 256,
    },
  },
  {
    name: 'tool_use blocks become tool_calls (input as JSON); thinking blocks are left out',
    req: base({
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'hmm', signature: 'sig' },
            { type: 'text', text: 'Looking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: 'Looking.',
          tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
        },
      ],
      max_tokens: 256,
    },
  },
  {
    name: 'an assistant turn of tool calls only has content null',
    req: base({
      messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'now', input: {} }] }],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'now', arguments: '{}' } }] }],
      max_tokens: 256,
    },
  },
  {
    name: 'tool_result blocks become tool messages, before the rest of the user turn',
    req: base({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
            {
              type: 'tool_result',
              tool_use_id: 'toolu_2',
              content: [
                { type: 'text', text: '12' },
                { type: 'text', text: 'C' },
              ],
              is_error: false,
            },
            { type: 'tool_result', tool_use_id: 'toolu_3' },
            { type: 'text', text: 'thanks' },
          ],
        },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [
        { role: 'tool', tool_call_id: 'toolu_1', content: 'sunny' },
        {
          role: 'tool',
          tool_call_id: 'toolu_2',
          content: [
            { type: 'text', text: '12' },
            { type: 'text', text: 'C' },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_3', content: '' },
        { role: 'user', content: 'thanks' },
      ],
      max_tokens: 256,
    },
  },
  {
    name: 'a user turn of tool results only sends no user message',
    req: base({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'r' }] }] }] }),
    want: { model: 'gpt-upstream', messages: [{ role: 'tool', tool_call_id: 't', content: 'r' }], max_tokens: 256 },
  },
  {
    name: 'stop_sequences → stop',
    req: base({ stop_sequences: ['END', 'STOP'] }),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256, stop: ['END', 'STOP'] },
  },
  {
    name: 'temperature, top_p and top_k are kept',
    req: base({ temperature: 0.3, top_p: 0.8, top_k: 20 }),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256, temperature: 0.3, top_p: 0.8, top_k: 20 },
  },
  {
    name: 'stream: true also asks for stream usage',
    req: base({ stream: true }),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256, stream: true, stream_options: { include_usage: true } },
  },
  {
    name: 'metadata.user_id → user',
    req: base({ metadata: { user_id: 'u-1' } }),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256, user: 'u-1' },
  },
  {
    name: 'tools: {name, description, input_schema} → function tools; cache hints dropped; strict kept',
    req: base({
      tools: [
        { name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: {} }, cache_control: { type: 'ephemeral' } },
        { type: 'custom', name: 'now', input_schema: { type: 'object' }, strict: true },
      ],
    }),
    want: {
      model: 'gpt-upstream',
      messages: [HI],
      max_tokens: 256,
      tools: [
        { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} }, description: 'Weather' } },
        { type: 'function', function: { name: 'now', parameters: { type: 'object' }, strict: true } },
      ],
    },
  },
  ...(
    [
      [{ type: 'auto' }, 'auto', {}],
      [{ type: 'any' }, 'required', {}],
      [{ type: 'none' }, 'none', {}],
      [{ type: 'tool', name: 'now' }, { type: 'function', function: { name: 'now' } }, {}],
      [{ type: 'any', disable_parallel_tool_use: true }, 'required', { parallel_tool_calls: false }],
    ] as const
  ).map(([choice, want, extra]) => ({
    name: `tool_choice ${JSON.stringify(choice)} → ${JSON.stringify(want)}${'parallel_tool_calls' in extra ? ' and parallel_tool_calls: false' : ''}`,
    req: base({ tools: [{ name: 'now', input_schema: { type: 'object' } }], tool_choice: choice }),
    want: {
      model: 'gpt-upstream',
      messages: [HI],
      max_tokens: 256,
      tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object' } } }],
      tool_choice: want,
      ...extra,
    },
  })),
  {
    name: 'harmless and neutral parameters are dropped (service_tier, cache_control, thinking disabled, speed standard, nulls)',
    req: base({
      service_tier: 'auto',
      cache_control: { type: 'ephemeral' },
      thinking: { type: 'disabled' },
      speed: 'standard',
      inference_geo: null,
      container: null,
    }),
    want: { model: 'gpt-upstream', messages: [HI], max_tokens: 256 },
  },
];

for (const c of CASES) {
  test(`Anthropic → OpenAI request: ${c.name}`, () => {
    assert.deepEqual(translate(c.req), c.want);
  });
}

const REFUSED: ReadonlyArray<{ name: string; req: AnthropicMessagesRequest; param: string }> = [
  { name: 'extended thinking', req: base({ thinking: { type: 'enabled', budget_tokens: 1024 } }), param: 'thinking' },
  { name: 'an MCP server', req: base({ mcp_servers: [{ type: 'url', url: 'https://x', name: 'x' }] }), param: 'mcp_servers' },
  { name: 'structured output config', req: base({ output_config: { format: { type: 'json_schema', schema: {} } } }), param: 'output_config' },
  { name: 'a data-residency choice', req: base({ inference_geo: 'us' }), param: 'inference_geo' },
  { name: 'a server tool', req: base({ tools: [{ type: 'web_search_20250305', name: 'web_search', input_schema: {} }] }), param: 'tools[0]' },
  {
    name: 'tool input examples',
    req: base({ tools: [{ name: 'f', input_schema: { type: 'object' }, input_examples: [{}] }] }),
    param: 'tools[0].input_examples',
  },
  {
    name: 'a document block',
    req: base({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }] }),
    param: 'messages[0].content[0]',
  },
  {
    name: 'an image from the Files API',
    req: base({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'file_1' } }] }] }),
    param: 'messages[0].content[0].source',
  },
  {
    name: 'an image inside a tool result',
    req: base({
      messages: [
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] }],
        },
      ],
    }),
    param: 'messages[0].content[0].content[0]',
  },
  {
    name: 'a server tool use block in the history',
    req: base({ messages: [{ role: 'assistant', content: [{ type: 'server_tool_use', id: 's', name: 'web_search', input: {} }] }] }),
    param: 'messages[0].content[0]',
  },
];

for (const c of REFUSED) {
  test(`Anthropic → OpenAI request refuses ${c.name}, naming '${c.param}'`, () => {
    assert.throws(
      () => translate(c.req),
      (err: unknown) => {
        assert.ok(err instanceof TranslationError);
        assert.equal(err.param, c.param);
        assert.equal(err.code, 'unsupported_parameter');
        assert.match(err.message, /OpenAI Chat Completions API/);
        return true;
      },
    );
  });
}

test('Anthropic → OpenAI request: the input object is not modified', () => {
  const req = base({ system: [{ type: 'text', text: 's' }], stream: true, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't' }] }] });
  const before = structuredClone(req);
  translate(req);
  assert.deepEqual(req, before);
});
