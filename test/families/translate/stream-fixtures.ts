/**
 * Streams for the stream translator tests: a script (what the model says:
 * text pieces and tool calls with their argument fragments, a stop reason,
 * usage), written as an Anthropic upstream stream or an OpenAI upstream
 * stream, fast-check arbitraries for scripts and for chunkings, and a
 * runner that pushes bytes through a translator at given cut points.
 */
import fc from 'fast-check';
import type { AnthropicStopReason } from '../../../src/families/translate/anthropic-types.ts';
import { finishReasonFromAnthropic } from '../../../src/families/translate/reasons.ts';
import type { StreamTranslator } from '../../../src/families/translate/translator.ts';

export interface TextPart {
  readonly kind: 'text';
  readonly pieces: readonly string[];
}
export interface ToolPart {
  readonly kind: 'tool';
  readonly id: string;
  readonly name: string;
  readonly input: Record<string, unknown>;
  /** JSON.stringify(input) cut into fragments. */
  readonly pieces: readonly string[];
}
export type Part = TextPart | ToolPart;

export interface Script {
  readonly id: string;
  readonly parts: readonly Part[];
  readonly stop: AnthropicStopReason;
  readonly usage: { readonly input: number; readonly output: number; readonly cacheRead: number; readonly cacheCreation: number };
}

export const sse = (event: string, data: object): string => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;
export const data = (obj: object | string): string => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;

/** The stream an Anthropic upstream sends for the script (with a ping, as the API does). */
export function anthropicStream(s: Script): string {
  let out = sse('message_start', {
    message: {
      id: s.id,
      type: 'message',
      role: 'assistant',
      model: 'claude-upstream',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: s.usage.input, cache_read_input_tokens: s.usage.cacheRead, cache_creation_input_tokens: s.usage.cacheCreation, output_tokens: 1 },
    },
  });
  out += sse('ping', {});
  s.parts.forEach((p, index) => {
    if (p.kind === 'text') {
      out += sse('content_block_start', { index, content_block: { type: 'text', text: '' } });
      for (const text of p.pieces) out += sse('content_block_delta', { index, delta: { type: 'text_delta', text } });
    } else {
      out += sse('content_block_start', { index, content_block: { type: 'tool_use', id: p.id, name: p.name, input: {} } });
      out += sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
      for (const partial_json of p.pieces) out += sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } });
    }
    out += sse('content_block_stop', { index });
  });
  out += sse('message_delta', { delta: { stop_reason: s.stop, stop_sequence: null }, usage: { output_tokens: s.usage.output } });
  out += sse('message_stop', {});
  return out;
}

/** The stream an OpenAI-compatible upstream sends for the script, with the usage chunk the translated request asked for. */
export function openAIStream(s: Script): string {
  const chunk = (delta: object, finish: string | null = null) =>
    data({
      id: s.id,
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-upstream',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  let out = chunk({ role: 'assistant', content: '' });
  let tool = 0;
  for (const p of s.parts) {
    if (p.kind === 'text') {
      for (const content of p.pieces) out += chunk({ content });
    } else {
      const index = tool++;
      out += chunk({ tool_calls: [{ index, id: p.id, type: 'function', function: { name: p.name, arguments: '' } }] });
      for (const args of p.pieces) out += chunk({ tool_calls: [{ index, function: { arguments: args } }] });
    }
  }
  out += chunk({}, finishReasonFromAnthropic(s.stop));
  const prompt = s.usage.input + s.usage.cacheRead + s.usage.cacheCreation;
  out += data({
    id: s.id,
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-upstream',
    choices: [],
    usage: {
      prompt_tokens: prompt,
      completion_tokens: s.usage.output,
      total_tokens: prompt + s.usage.output,
      prompt_tokens_details: { cached_tokens: s.usage.cacheRead },
    },
  });
  return out + data('[DONE]');
}

/** A string cut into code-point-aligned fragments at the given fractions. */
function fragments(text: string, cuts: readonly number[]): string[] {
  const cps = Array.from(text);
  const at = [...new Set(cuts.map((c) => Math.floor(c * cps.length)))].filter((n) => n > 0 && n < cps.length).sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const n of [...at, cps.length]) {
    out.push(cps.slice(prev, n).join(''));
    prev = n;
  }
  return out;
}

// Text with multi-byte characters (2-, 3- and 4-byte UTF-8), quotes, backslashes and newlines.
const piece = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'b', ' ', 'é', '☃', '😀', '"', '\\', '\n', '\r', 'data: ', '\u2028') });
const toolInput = fc
  .dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
  .map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>);
const fraction = fc.double({ min: 0, max: 1, noNaN: true });

const textPart: fc.Arbitrary<Part> = fc.array(piece, { minLength: 1, maxLength: 4 }).map((pieces) => ({ kind: 'text', pieces }));
const toolPart = (i: number): fc.Arbitrary<Part> =>
  fc.record({ name: fc.stringMatching(/^[a-z][a-z_]{0,8}$/), input: toolInput, cuts: fc.array(fraction, { maxLength: 4 }) }).map(({ name, input, cuts }) => ({
    kind: 'tool',
    id: `toolu_${i}`,
    name,
    input,
    pieces: fragments(JSON.stringify(input), cuts),
  }));

/** A script: text first (as OpenAI-compatible models answer), then tool calls; ids numbered. */
export const scriptArb: fc.Arbitrary<Script> = fc
  .record({
    text: fc.option(textPart, { nil: null }),
    tools: fc.integer({ min: 0, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => toolPart(i)))),
    stop: fc.constantFrom<AnthropicStopReason>('end_turn', 'max_tokens', 'tool_use', 'stop_sequence'),
    usage: fc.record({ input: fc.nat(5000), output: fc.nat(5000), cacheRead: fc.nat(5000), cacheCreation: fc.nat(5000) }),
  })
  .map(({ text, tools, stop, usage }) => ({ id: 'msg_0123', parts: [...(text === null ? [] : [text]), ...tools], stop, usage }));

/** Cut points (sorted, distinct, within the length) for a byte length. */
export function cutsArb(length: number): fc.Arbitrary<number[]> {
  return fc
    .array(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 24 })
    .map((cs) => [...new Set(cs)].filter((c) => c < length).sort((a, b) => a - b));
}

/** Pushes the bytes through the translator in pieces cut at `cuts`; the outputs, one per push. */
export function runChunked(t: StreamTranslator, bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const outs: Buffer[] = [];
  let prev = 0;
  const points = [...cuts, bytes.length];
  points.forEach((cut, i) => {
    outs.push(t.push(bytes.subarray(prev, cut), i === points.length - 1));
    prev = cut;
  });
  return outs;
}

/** The concatenated text of every text part. */
export function allText(s: Script): string {
  return s.parts.map((p) => (p.kind === 'text' ? p.pieces.join('') : '')).join('');
}

export function tools(s: Script): ToolPart[] {
  return s.parts.filter((p): p is ToolPart => p.kind === 'tool');
}
