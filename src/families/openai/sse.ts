/**
 * Metering an OpenAI SSE stream chunk by chunk. Envoy's STREAMED chunks
 * ignore event boundaries, so bytes are split into lines here, across chunks,
 * and only complete lines are interpreted (a UTF-8 character split between
 * two chunks is never decoded half-way).
 *
 * When the gateway added `stream_options.include_usage` itself, the usage-only
 * chunk it caused is removed again so the client sees what it asked for; and
 * each chunk's `model` can be set back to the model the client asked for (the
 * deployment's own name is an internal one). In either mode output is
 * re-emitted line by line and a partial line is held back until its end
 * arrives.
 */
import type { StreamMeter } from '../../pipeline/ports.ts';
import { usageFrom, type ReportedUsage } from './usage.ts';

const LF = 0x0a;

export class SseStreamMeter implements StreamMeter {
  readonly #strip: boolean;
  readonly #model: string | null;
  /** Whether output is re-emitted (stripping or rewriting) rather than passed through. */
  readonly #reframe: boolean;
  #partial: Buffer | null = null;
  #usage: ReportedUsage | null = null;
  #contentChars = 0;
  #sawContent = false;
  #complete = false;
  #dropBlank = false;

  constructor(opts: { readonly stripUsageChunk: boolean; readonly responseModel?: string | null }) {
    this.#strip = opts.stripUsageChunk;
    this.#model = opts.responseModel ?? null;
    this.#reframe = this.#strip || this.#model !== null;
  }

  get usage(): ReportedUsage | null {
    return this.#usage;
  }
  /** Characters of generated text seen, for an estimate when no usage came. */
  get contentChars(): number {
    return this.#contentChars;
  }
  get sawContent(): boolean {
    return this.#sawContent;
  }

  get complete(): boolean {
    return this.#complete;
  }

  /** Replacement bytes for this chunk, or null to pass it through unchanged. */
  push(chunk: Buffer, endOfStream: boolean): Buffer | null {
    const kept: Buffer[] = [];
    let start = 0;
    let data = chunk;
    if (this.#partial !== null) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = null;
    }
    for (let nl = data.indexOf(LF, start); nl !== -1; nl = data.indexOf(LF, start)) {
      const line = this.#line(data.subarray(start, nl + 1));
      if (line !== null) kept.push(line);
      start = nl + 1;
    }
    if (start < data.length) {
      const tail = data.subarray(start);
      if (endOfStream) {
        const line = this.#line(tail);
        if (line !== null) kept.push(line);
      } else {
        this.#partial = Buffer.from(tail); // copy: the chunk's memory is not ours to keep
      }
    }
    if (!this.#reframe) return null;
    const out = kept.length === 1 ? (kept[0] as Buffer) : Buffer.concat(kept);
    // Nothing removed, rewritten or held back: let the chunk pass as it is (no body mutation for Envoy).
    return out.equals(chunk) ? null : out;
  }

  /** Interprets one line; returns what to send for it (itself, a rewritten line), or null to remove it. */
  #line(raw: Buffer): Buffer | null {
    let end = raw.length;
    if (end > 0 && raw[end - 1] === LF) end--;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    if (end === 0) {
      if (this.#dropBlank) {
        this.#dropBlank = false;
        return null;
      }
      return raw;
    }
    // "data:" lines only; comments, event: and id: lines pass untouched.
    if (end < 5 || raw[0] !== 0x64 || raw.toString('latin1', 0, 5) !== 'data:') return raw;
    const payload = raw.toString('utf8', raw[5] === 0x20 ? 6 : 5, end);
    if (payload === '[DONE]') {
      this.#complete = true;
      return raw;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(payload);
    } catch {
      return raw; // not ours to judge; pass it on
    }
    const usage = usageFrom(obj);
    if (usage !== null) this.#usage = usage;
    const event = obj as Record<string, unknown>;
    const choices = event['choices'];
    if (Array.isArray(choices)) {
      for (const c of choices) this.#countContent(c);
      if (this.#strip && usage !== null && choices.length === 0) {
        this.#dropBlank = true;
        return null;
      }
    }
    if (this.#model !== null && typeof event['model'] === 'string' && event['model'] !== this.#model) {
      event['model'] = this.#model;
      return Buffer.from(`data: ${JSON.stringify(event)}${raw.toString('latin1', end)}`, 'utf8');
    }
    return raw;
  }

  #countContent(choice: unknown): void {
    if (typeof choice !== 'object' || choice === null) return;
    const c = choice as Record<string, unknown>;
    let text: unknown = c['text']; // completions
    const delta = c['delta'];
    if (typeof delta === 'object' && delta !== null) text = (delta as Record<string, unknown>)['content'];
    if (typeof text === 'string' && text.length > 0) {
      this.#contentChars += text.length;
      this.#sawContent = true;
    }
  }
}
