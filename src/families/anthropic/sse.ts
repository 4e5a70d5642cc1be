/**
 * Metering an Anthropic Messages stream chunk by chunk. Envoy's STREAMED
 * chunks ignore event boundaries, so bytes are split into lines here, across
 * chunks, and only complete `data:` lines are read. Anthropic always reports
 * usage (input and cache tokens in `message_start`, the final output count in
 * `message_delta`), so nothing is added or stripped; the stream passes
 * unchanged unless the message's `model` (in `message_start`) is to be set
 * back to the model the client asked for — then lines are re-emitted and a
 * partial line is held back until its end arrives.
 */
import type { StreamMeter } from '../../pipeline/ports.ts';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { cachedTokensOf, promptTokensOf } from './usage.ts';

const LF = 0x0a;

export class AnthropicStreamMeter implements StreamMeter {
  readonly #model: string | null;
  #partial: Buffer | null = null;
  #prompt: number | null = null;
  #completion: number | null = null;
  #cached = 0;
  #contentChars = 0;
  #sawContent = false;
  #complete = false;

  constructor(opts: { readonly responseModel?: string | null } = {}) {
    this.#model = opts.responseModel ?? null;
  }

  /** Known once the stream has said both: the prompt (message_start) and the final output (message_delta). */
  get usage(): ReportedUsage | null {
    return this.#prompt === null || this.#completion === null
      ? null
      : { promptTokens: this.#prompt, completionTokens: this.#completion, cachedPromptTokens: this.#cached };
  }
  get contentChars(): number {
    return this.#contentChars;
  }
  get sawContent(): boolean {
    return this.#sawContent;
  }

  get complete(): boolean {
    return this.#complete;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer | null {
    const data = this.#partial === null ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = null;
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = data.indexOf(LF, start); nl !== -1; nl = data.indexOf(LF, start)) {
      out.push(this.#line(data.subarray(start, nl + 1), nl - start));
      start = nl + 1;
    }
    if (start < data.length) {
      if (endOfStream) out.push(this.#line(data.subarray(start), data.length - start));
      else this.#partial = Buffer.from(data.subarray(start)); // copy: the chunk's memory is not ours to keep
    }
    if (this.#model === null) return null;
    const bytes = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    // Nothing rewritten or held back: let the chunk pass as it is (no body mutation for Envoy).
    return bytes.equals(chunk) ? null : bytes;
  }

  /** Reads one line (`end`: where its content ends); returns what to send for it. */
  #line(raw: Buffer, end: number): Buffer {
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    // "data:" lines only; event:, id: and comments carry nothing to meter.
    if (end < 6 || raw.toString('latin1', 0, 5) !== 'data:') return raw;
    let obj: unknown;
    try {
      obj = JSON.parse(raw.toString('utf8', raw[5] === 0x20 ? 6 : 5, end));
    } catch {
      return raw; // not ours to judge
    }
    if (typeof obj !== 'object' || obj === null) return raw;
    const ev = obj as Record<string, unknown>;
    if (ev['type'] === 'message_stop') this.#complete = true;
    switch (ev['type']) {
      case 'message_start': {
        const message = ev['message'];
        if (typeof message !== 'object' || message === null) return raw;
        const m = message as Record<string, unknown>;
        this.#prompt = promptTokensOf(m['usage']);
        this.#cached = cachedTokensOf(m['usage']);
        if (this.#model === null || typeof m['model'] !== 'string' || m['model'] === this.#model) return raw;
        m['model'] = this.#model;
        return Buffer.from(`data: ${JSON.stringify(ev)}${raw.toString('latin1', end)}`, 'utf8');
      }
      case 'content_block_delta': {
        const delta = ev['delta'];
        if (typeof delta !== 'object' || delta === null) return raw;
        const d = delta as Record<string, unknown>;
        const text =
          d['type'] === 'text_delta'
            ? d['text']
            : d['type'] === 'input_json_delta'
              ? d['partial_json']
              : d['type'] === 'thinking_delta'
                ? d['thinking']
                : undefined;
        if (typeof text === 'string' && text.length > 0) {
          this.#contentChars += text.length;
          this.#sawContent = true;
        }
        return raw;
      }
      case 'message_delta': {
        const usage = ev['usage'];
        if (typeof usage !== 'object' || usage === null) return raw;
        const u = usage as Record<string, unknown>;
        const out = u['output_tokens'];
        if (typeof out === 'number' && Number.isSafeInteger(out) && out >= 0) this.#completion = out;
        // Newer streams may restate the prompt here (cache tokens included).
        const prompt = promptTokensOf(usage);
        if (prompt !== null) {
          this.#prompt = prompt;
          this.#cached = cachedTokensOf(usage);
        }
        return raw;
      }
    }
    return raw;
  }
}
