/**
 * An Anthropic Messages stream as OpenAI chat.completion.chunk events:
 *
 *   message_start            → a chunk with the assistant role
 *   content_block_start      → for tool_use: a tool_calls delta (index, id, name)
 *   content_block_delta      → text_delta: a content delta; input_json_delta: an
 *                              arguments fragment for that tool call
 *   message_delta            → a chunk with finish_reason (usage remembered)
 *   message_stop             → the usage chunk (`choices: []`) when the client
 *                              asked for it, then `data: [DONE]`
 *   error                    → `data: {"error": {…}}` in OpenAI's words; the end
 *   ping, content_block_stop,
 *   thinking and citations   → nothing
 *
 * Every chunk carries the upstream message's id and the client's model name.
 * Chunks are written from templates (only the varying values go through
 * JSON.stringify), so an event costs one JSON.parse and a little string work.
 */
import { randomUUID } from 'node:crypto';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { isObject } from '../../shared/values.ts';
import { anthropicErrorToOpenAI } from './error-bodies.ts';
import { finishReasonFromAnthropic } from './reasons.ts';
import { SseReader } from './sse-reader.ts';
import type { StreamTranslator, TranslateStreamOptions } from './translator.ts';
import { anthropicCounts, openAIUsageFromCounts, reportedFromCounts, type AnthropicCounts } from './usage.ts';

const EMPTY = Buffer.alloc(0);
const J = JSON.stringify;

export class AnthropicToOpenAISse implements StreamTranslator {
  readonly #reader: SseReader;
  readonly #model: string;
  readonly #created: number;
  readonly #includeUsage: boolean;
  #out: string[] = [];
  /** `data: {"id":…,"object":…,"created":…,"model":…,"choices":[` once the id is known. */
  #head: string | null = null;
  /** Anthropic content block index → OpenAI tool call index, for tool_use blocks. */
  readonly #toolOf: number[] = [];
  #tools = 0;
  #counts: AnthropicCounts | null = null;
  #usageFinal = false;
  #finishSent = false;
  #ended = false;
  #contentChars = 0;
  #complete = false;

  constructor(opts: TranslateStreamOptions) {
    this.#model = J(opts.clientModel);
    this.#created = opts.created ?? Math.floor(Date.now() / 1000);
    this.#includeUsage = opts.includeUsage;
    this.#reader = new SseReader((event, data) => this.#onEvent(event, data));
  }

  get usage(): ReportedUsage | null {
    return this.#usageFinal && this.#counts !== null ? reportedFromCounts(this.#counts) : null;
  }
  get contentChars(): number {
    return this.#contentChars;
  }
  get sawContent(): boolean {
    return this.#contentChars > 0;
  }

  /** The Anthropic stream's message_stop arrived. */
  get complete(): boolean {
    return this.#complete;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer {
    this.#reader.push(chunk, endOfStream);
    const out = this.#out;
    if (out.length === 0) return EMPTY;
    this.#out = [];
    return Buffer.from(out.length === 1 ? (out[0] as string) : out.join(''), 'utf8');
  }

  #onEvent(event: string | null, data: string): void {
    if (this.#ended) return;
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return; // not an event we can read
    }
    if (!isObject(obj)) return;
    const type = typeof obj['type'] === 'string' ? obj['type'] : event;
    switch (type) {
      case 'content_block_delta':
        return this.#delta(obj);
      case 'message_start':
        return this.#start(obj);
      case 'content_block_start':
        return this.#blockStart(obj);
      case 'message_delta':
        return this.#messageDelta(obj);
      case 'message_stop':
        this.#complete = true;
        return this.#stop();
      case 'error':
        this.#out.push(`data: ${J(anthropicErrorToOpenAI(200, obj))}\n\n`);
        this.#ended = true;
        return;
      default:
        return; // ping, content_block_stop, and events this version does not know
    }
  }

  #start(obj: Record<string, unknown>): void {
    const message = isObject(obj['message']) ? obj['message'] : {};
    if (this.#head === null) this.#setHead(typeof message['id'] === 'string' ? message['id'] : null);
    this.#counts = anthropicCounts(message['usage']);
    this.#chunk('{"role":"assistant","content":""}');
  }

  #blockStart(obj: Record<string, unknown>): void {
    const block = obj['content_block'];
    const index = obj['index'];
    if (!isObject(block) || typeof index !== 'number') return;
    if (block['type'] === 'text') {
      const text = block['text'];
      if (typeof text === 'string' && text !== '') this.#text(text);
    } else if (block['type'] === 'tool_use') {
      const k = this.#tools++;
      this.#toolOf[index] = k;
      const id = typeof block['id'] === 'string' ? block['id'] : `call_${k}`;
      const name = typeof block['name'] === 'string' ? block['name'] : '';
      this.#contentChars += name.length;
      this.#chunk(`{"tool_calls":[{"index":${k},"id":${J(id)},"type":"function","function":{"name":${J(name)},"arguments":""}}]}`);
      const input = block['input'];
      if (isObject(input) && Object.keys(input).length > 0) this.#arguments(k, J(input));
    }
  }

  #delta(obj: Record<string, unknown>): void {
    const delta = obj['delta'];
    if (!isObject(delta)) return;
    if (delta['type'] === 'text_delta') {
      const text = delta['text'];
      if (typeof text === 'string' && text !== '') this.#text(text);
    } else if (delta['type'] === 'input_json_delta') {
      const index = obj['index'];
      const k = typeof index === 'number' ? this.#toolOf[index] : undefined;
      const json = delta['partial_json'];
      if (k !== undefined && typeof json === 'string' && json !== '') this.#arguments(k, json);
    }
  }

  #messageDelta(obj: Record<string, unknown>): void {
    if (isObject(obj['usage'])) {
      this.#counts = anthropicCounts(obj['usage'], this.#counts ?? undefined);
      this.#usageFinal = true;
    }
    const delta = isObject(obj['delta']) ? obj['delta'] : {};
    this.#finish(finishReasonFromAnthropic(delta['stop_reason']) ?? 'stop');
  }

  #stop(): void {
    this.#finish('stop');
    if (this.#includeUsage && this.#counts !== null) this.#out.push(`${this.#headOrDefault()}],"usage":${J(openAIUsageFromCounts(this.#counts))}}\n\n`);
    this.#out.push('data: [DONE]\n\n');
    this.#ended = true;
  }

  #finish(reason: string): void {
    if (this.#finishSent) return;
    this.#finishSent = true;
    this.#out.push(`${this.#headOrDefault()}{"index":0,"delta":{},"logprobs":null,"finish_reason":"${reason}"}]}\n\n`);
  }

  #text(text: string): void {
    this.#contentChars += text.length;
    this.#chunk(`{"content":${J(text)}}`);
  }

  #arguments(k: number, json: string): void {
    this.#contentChars += json.length;
    this.#chunk(`{"tool_calls":[{"index":${k},"function":{"arguments":${J(json)}}}]}`);
  }

  #chunk(delta: string): void {
    this.#out.push(`${this.#headOrDefault()}{"index":0,"delta":${delta},"logprobs":null,"finish_reason":null}]}\n\n`);
  }

  #setHead(id: string | null): void {
    const chunkId = id ?? `chatcmpl-${randomUUID()}`;
    this.#head = `data: {"id":${J(chunkId)},"object":"chat.completion.chunk","created":${this.#created},"model":${this.#model},"choices":[`;
  }

  /** The chunk head; a stream that skipped message_start still gets one. */
  #headOrDefault(): string {
    if (this.#head === null) this.#setHead(null);
    return this.#head as string;
  }
}
