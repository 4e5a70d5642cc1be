/**
 * `npm run bench:translate`: CPU cost of the API-family translation layer
 * (src/families/translate), in-process, with process.cpuUsage over many
 * iterations after a warm-up:
 *
 * - per non-streaming request + response, each direction: the request
 *   translated (object → object) and the upstream's response translated,
 *   alone and with the JSON work around it (parsing the upstream's response,
 *   serializing both results);
 * - per streamed event, each direction: a realistic stream (text deltas and
 *   a tool call) pushed through the stream translator, cut at event
 *   boundaries (one event per chunk) and in 64-byte pieces (lines split
 *   across chunks).
 */
import { anthropicResponseToOpenAIChat } from '../src/families/translate/response-anthropic-to-openai.ts';
import { anthropicToOpenAIChat } from '../src/families/translate/request-anthropic-to-openai.ts';
import { openAIChatResponseToAnthropic } from '../src/families/translate/response-openai-to-anthropic.ts';
import { openAIChatToAnthropic } from '../src/families/translate/request-openai-to-anthropic.ts';
import { AnthropicToOpenAISse } from '../src/families/translate/stream-anthropic-to-openai.ts';
import { OpenAIToAnthropicSse } from '../src/families/translate/stream-openai-to-anthropic.ts';
import type { AnthropicMessagesRequest } from '../src/families/translate/anthropic-types.ts';
import type { OpenAIChatRequest } from '../src/families/translate/openai-types.ts';
import type { StreamTranslator } from '../src/families/translate/translator.ts';

const PROSE = 'The quarterly report shows steady growth across all regions, with retention at 94 percent. ';
const WEATHER_TOOL = { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] };

// A 7-message conversation with a system prompt, two tools, one tool call and its result (~1.5 kB as JSON).
const openAIRequest: OpenAIChatRequest = {
  model: 'gpt-alias',
  messages: [
    { role: 'system', content: 'You are a terse assistant for the operations team.' },
    { role: 'user', content: PROSE.repeat(3) },
    { role: 'assistant', content: 'Noted. Anything else?' },
    { role: 'user', content: 'What is the weather in Oslo?' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo","unit":"c"}' } }],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp":12,"sky":"rain"}' },
    { role: 'user', content: 'And should I bring an umbrella?' },
  ],
  max_tokens: 512,
  temperature: 0.2,
  stream: false,
  tools: [
    { type: 'function', function: { name: 'weather', description: 'Current weather for a city', parameters: WEATHER_TOOL } },
    { type: 'function', function: { name: 'calendar', description: "Today's meetings", parameters: { type: 'object', properties: {} } } },
  ],
  tool_choice: 'auto',
  user: 'u-42',
};
const anthropicRequest: AnthropicMessagesRequest = openAIChatToAnthropic(openAIRequest, 'claude-alias', { defaultMaxTokens: 1024 });

const TEXT = `${PROSE.repeat(4)}Yes, bring an umbrella.`;
const anthropicResponse = JSON.stringify({
  id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
  type: 'message',
  role: 'assistant',
  model: 'claude-upstream',
  content: [
    { type: 'text', text: TEXT },
    { type: 'tool_use', id: 'toolu_01A', name: 'calendar', input: { day: 'today' } },
  ],
  stop_reason: 'tool_use',
  stop_sequence: null,
  usage: { input_tokens: 412, output_tokens: 96, cache_creation_input_tokens: 0, cache_read_input_tokens: 128 },
});
const openAIResponse = JSON.stringify({
  id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-upstream',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content: TEXT,
        refusal: null,
        tool_calls: [{ id: 'call_2', type: 'function', function: { name: 'calendar', arguments: '{"day":"today"}' } }],
      },
      logprobs: null,
      finish_reason: 'tool_calls',
    },
  ],
  usage: { prompt_tokens: 540, completion_tokens: 96, total_tokens: 636, prompt_tokens_details: { cached_tokens: 128 } },
});

// ── Streams: 120 text deltas of a few words, one tool call in 12 fragments ─────

const words = TEXT.split(/(?<= )/);
const deltas = Array.from({ length: 120 }, (_, i) => words[i % words.length] as string);
const argFragments = ['{"da', 'y":', ' "to', 'day"', ', "ti', 'mezo', 'ne": ', '"Eur', 'ope/', 'Oslo', '"', '}'];

function anthropicStream(): string[] {
  const ev = (type: string, body: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;
  return [
    ev('message_start', {
      message: {
        id: 'msg_01',
        type: 'message',
        role: 'assistant',
        model: 'claude-upstream',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 412, output_tokens: 1 },
      },
    }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
    ...deltas.map((text) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_01A', name: 'calendar', input: {} } }),
    ...argFragments.map((partial_json) => ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json } })),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 96 } }),
    ev('message_stop', {}),
  ];
}

function openAIStream(): string[] {
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-upstream', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  return [
    chunk({ role: 'assistant', content: '' }),
    ...deltas.map((content) => chunk({ content })),
    chunk({ tool_calls: [{ index: 0, id: 'call_2', type: 'function', function: { name: 'calendar', arguments: '' } }] }),
    ...argFragments.map((a) => chunk({ tool_calls: [{ index: 0, function: { arguments: a } }] })),
    chunk({}, 'tool_calls'),
    `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-upstream', choices: [], usage: { prompt_tokens: 540, completion_tokens: 96, total_tokens: 636 } })}\n\n`,
    'data: [DONE]\n\n',
  ];
}

/** The stream cut at every event boundary, and in 64-byte pieces. */
function chunkings(events: readonly string[]): { byEvent: Buffer[]; by64: Buffer[] } {
  const all = Buffer.from(events.join(''));
  const by64: Buffer[] = [];
  for (let i = 0; i < all.length; i += 64) by64.push(all.subarray(i, i + 64));
  return { byEvent: events.map((e) => Buffer.from(e)), by64 };
}

// ── Measuring ────────────────────────────────────────────────────────────────

function cpuMicros(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(2000, iterations); i++) fn(); // warm-up (JIT)
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / iterations;
}

let sink = 0;
const N_BUFFERED = 50_000;
const N_STREAMS = 2_000;

function buffered(label: string, request: () => object, respond: (body: object) => object, upstreamBody: string): string {
  const parsedResponse = JSON.parse(upstreamBody) as object;
  const only = cpuMicros(N_BUFFERED, () => {
    sink += Object.keys(request()).length + Object.keys(respond(parsedResponse)).length;
  });
  const withJson = cpuMicros(N_BUFFERED, () => {
    sink += JSON.stringify(request()).length + JSON.stringify(respond(JSON.parse(upstreamBody) as object)).length;
  });
  return `| ${label} | ${only.toFixed(2)} | ${withJson.toFixed(2)} |`;
}

function streamed(label: string, make: () => StreamTranslator, events: readonly string[]): string {
  const { byEvent, by64 } = chunkings(events);
  const run = (chunks: readonly Buffer[]) => () => {
    const t = make();
    for (let i = 0; i < chunks.length; i++) sink += t.push(chunks[i] as Buffer, i === chunks.length - 1).length;
  };
  const perEvent = cpuMicros(N_STREAMS, run(byEvent)) / events.length;
  const per64 = cpuMicros(N_STREAMS, run(by64)) / events.length;
  return `| ${label} | ${events.length} | ${perEvent.toFixed(2)} | ${per64.toFixed(2)} |`;
}

const out: string[] = [];
out.push(`Translation cost (${new Date().toISOString()}, Node ${process.version}, ${process.arch})`, '');
out.push(
  `Non-streaming: µs of CPU per request + response (${N_BUFFERED.toLocaleString('en')} iterations; request ${JSON.stringify(openAIRequest).length} B, response ~${anthropicResponse.length} B)`,
  '',
);
out.push('| direction (client → upstream) | translate only | incl. JSON parse of the response and serialization of both |', '|---|--:|--:|');
out.push(
  buffered(
    'OpenAI client → Anthropic upstream',
    () => openAIChatToAnthropic(openAIRequest, 'claude-upstream', { defaultMaxTokens: 1024 }),
    (b) => anthropicResponseToOpenAIChat(b, 'gpt-alias', { created: 1 }),
    anthropicResponse,
  ),
);
out.push(
  buffered(
    'Anthropic client → OpenAI upstream',
    () => anthropicToOpenAIChat(anthropicRequest, 'gpt-upstream'),
    (b) => openAIChatResponseToAnthropic(b, 'claude-alias'),
    openAIResponse,
  ),
);
out.push('', `Streaming: µs of CPU per upstream event (${N_STREAMS.toLocaleString('en')} streams each; 120 text deltas + a 12-fragment tool call)`, '');
out.push('| direction (upstream stream → client) | events | one event per chunk | 64-byte chunks |', '|---|--:|--:|--:|');
out.push(
  streamed('Anthropic → OpenAI chunks', () => new AnthropicToOpenAISse({ clientModel: 'gpt-alias', includeUsage: true, created: 1 }), anthropicStream()),
);
out.push(streamed('OpenAI chunks → Anthropic', () => new OpenAIToAnthropicSse({ clientModel: 'claude-alias' }), openAIStream()));
process.stdout.write(`${out.join('\n')}\n`);
if (sink === 0) process.stdout.write('(nothing measured)\n');
