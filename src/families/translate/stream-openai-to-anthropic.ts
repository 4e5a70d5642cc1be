/**
 * An OpenAI chat.completion.chunk stream as the Anthropic Messages event
 * sequence (the one @anthropic-ai/sdk's MessageStream accumulates):
 *
 *   message_start                        on the first chunk
 *   content_block_start / _delta / _stop a text block for content, a tool_use
 *                                        block per tool call (input_json_delta
 *                                        with the arguments as they come); one
 *                                        block open at a time, indexes in order
 *   message_delta                        stop_reason, and usage from the
 *                                        upstream's usage chunk (the
 *                                        translated request asked for it)
 *   message_stop                         at `data: [DONE]` (or at the end of a
 *                                        stream that finished without it)
 *   error                                for a `data: {"error": …}` event
 *
 * A stream cut off before it finished gets no message_stop: the client sees
 * an incomplete message rather than a made-up ending. Events are written from
 * templates; an event costs one JSON.parse and a little string work.
 */
import { randomUUID } from 'node:crypto';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { isObject } from '../../shared/values.ts';
import type { AnthropicStopReason, AnthropicUsage } from './anthropic-types.ts';
import { openAIErrorToAnthropic } from './error-bodies.ts';
import { anthropicToolId } from './ids.ts';
import { stopReasonFromOpenAI } from './reasons.ts';
import { SseReader } from './sse-reader.ts';
import type { StreamTranslator, TranslateStreamOptions } from './translator.ts';
import { anthropicUsageFromOpenAI, count } from './usage.ts';

const EMPTY = Buffer.alloc(0);
const J = JSON.stringify;

export class OpenAIToAnthropicSse implements StreamTranslator {
  readonly #reader: SseReader;
  readonly #model: string;
  #out: string[] = [];
  #started = false;
  #id = '';
  /** The open content block's index, or -1. */
  #open = -1;
  #openIsText = false;
  #next = 0;
  /** OpenAI tool call index → Anthropic content block index. */
  readonly #blockOf: number[] = [];
  #stop: AnthropicStopReason | null = null;
  #finished = false;
  #usage: AnthropicUsage | null = null;
  #reported: ReportedUsage | null = null;
  #ended = false;
  #contentChars = 0;
  #complete = false;

  constructor(opts: Pick<TranslateStreamOptions, 'clientModel'>) {
    this.#model = J(opts.clientModel);
    this.#reader = new SseReader((_event, data) => this.#onData(data));
  }

  get usage(): ReportedUsage | null {
    return this.#reported;
  }
  get contentChars(): number {
    return this.#contentChars;
  }
  get sawContent(): boolean {
    return this.#contentChars > 0;
  }

  /** The OpenAI stream's [DONE] arrived. */
  get complete(): boolean {
    return this.#complete;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer {
    this.#reader.push(chunk, endOfStream);
    if (endOfStream && this.#finished) this.#end();
    const out = this.#out;
    if (out.length === 0) return EMPTY;
    this.#out = [];
    return Buffer.from(out.length === 1 ? (out[0] as string) : out.join(''), 'utf8');
  }

  #onData(data: string): void {
    if (this.#ended) return;
    if (data === '[DONE]') {
      this.#complete = true;
      this.#end();
      return;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return; // not a chunk we can read
    }
    if (!isObject(obj)) return;
    if (obj['error'] !== undefined && obj['error'] !== null) {
      this.#out.push(`event: error\ndata: ${J(openAIErrorToAnthropic(200, obj))}\n\n`);
      this.#ended = true;
      return;
    }
    if (!this.#started) this.#start(typeof obj['id'] === 'string' ? obj['id'] : null);
    if (isObject(obj['usage'])) this.#readUsage(obj['usage']);
    const choices = obj['choices'];
    if (!Array.isArray(choices) || choices.length === 0) return;
    const choice: unknown = choices.length === 1 ? choices[0] : choices.find((c) => isObject(c) && c['index'] === 0);
    if (!isObject(choice)) return;
    const delta = choice['delta'];
    if (isObject(delta)) {
      const content = delta['content'];
      if (typeof content === 'string' && content !== '') this.#text(content);
      const refusal = delta['refusal'];
      if (typeof refusal === 'string' && refusal !== '') this.#text(refusal);
      const calls = delta['tool_calls'];
      if (Array.isArray(calls)) for (const call of calls) if (isObject(call)) this.#toolCall(call);
    }
    const reason = choice['finish_reason'];
    if (reason !== null && reason !== undefined) {
      this.#stop = stopReasonFromOpenAI(reason);
      this.#finished = true;
    }
  }

  #start(id: string | null): void {
    this.#started = true;
    this.#id = id ?? `msg_${randomUUID().replaceAll('-', '')}`;
    this.#event(
      'message_start',
      `{"type":"message_start","message":{"id":${J(this.#id)},"type":"message","role":"assistant","model":${this.#model},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`,
    );
  }

  #text(text: string): void {
    this.#contentChars += text.length;
    if (!this.#openIsText) {
      this.#closeBlock();
      this.#open = this.#next++;
      this.#openIsText = true;
      this.#event('content_block_start', `{"type":"content_block_start","index":${this.#open},"content_block":{"type":"text","text":""}}`);
    }
    this.#event('content_block_delta', `{"type":"content_block_delta","index":${this.#open},"delta":{"type":"text_delta","text":${J(text)}}}`);
  }

  #toolCall(call: Record<string, unknown>): void {
    const k = count(call['index']) ?? 0;
    const fn = isObject(call['function']) ? call['function'] : {};
    let block = this.#blockOf[k];
    if (block === undefined) {
      this.#closeBlock();
      block = this.#next++;
      this.#blockOf[k] = block;
      this.#open = block;
      this.#openIsText = false;
      const id = anthropicToolId(typeof call['id'] === 'string' && call['id'] !== '' ? call['id'] : `${this.#id}_${k}`);
      const name = typeof fn['name'] === 'string' ? fn['name'] : '';
      this.#contentChars += name.length;
      this.#event(
        'content_block_start',
        `{"type":"content_block_start","index":${block},"content_block":{"type":"tool_use","id":${J(id)},"name":${J(name)},"input":{}}}`,
      );
    }
    const args = fn['arguments'];
    if (typeof args === 'string' && args !== '') {
      this.#contentChars += args.length;
      this.#event('content_block_delta', `{"type":"content_block_delta","index":${block},"delta":{"type":"input_json_delta","partial_json":${J(args)}}}`);
    }
  }

  #closeBlock(): void {
    if (this.#open === -1) return;
    this.#event('content_block_stop', `{"type":"content_block_stop","index":${this.#open}}`);
    this.#open = -1;
    this.#openIsText = false;
  }

  #readUsage(u: Record<string, unknown>): void {
    const usage = anthropicUsageFromOpenAI(u);
    if (usage === null) return;
    this.#usage = usage;
    const cached = usage.cache_read_input_tokens ?? 0;
    this.#reported = { promptTokens: usage.input_tokens + cached, completionTokens: usage.output_tokens, cachedPromptTokens: cached };
  }

  /** Closes the message: the open block, the stop reason and usage, message_stop. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#started) this.#start(null);
    this.#closeBlock();
    const u = this.#usage;
    const usage =
      u === null
        ? '{"output_tokens":0}'
        : `{"input_tokens":${u.input_tokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":${u.cache_read_input_tokens ?? 0},"output_tokens":${u.output_tokens}}`;
    this.#event('message_delta', `{"type":"message_delta","delta":{"stop_reason":${J(this.#stop ?? 'end_turn')},"stop_sequence":null},"usage":${usage}}`);
    this.#event('message_stop', '{"type":"message_stop"}');
  }

  #event(name: string, json: string): void {
    this.#out.push(`event: ${name}\ndata: ${json}\n\n`);
  }
}
