/**
 * Metering an Anthropic Messages stream chunk by chunk. Envoy's STREAMED
 * chunks ignore event boundaries, so bytes are split into lines here, across
 * chunks, and only complete `data:` lines are read. The stream passes
 * unchanged: Anthropic always reports usage (input and cache tokens in
 * `message_start`, the final output count in `message_delta`).
 */
import type { StreamMeter } from '../../pipeline/ports.ts';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { promptTokensOf } from './usage.ts';

const LF = 0x0a;

export class AnthropicStreamMeter implements StreamMeter {
  #partial: Buffer | null = null;
  #prompt: number | null = null;
  #completion: number | null = null;
  #contentChars = 0;
  #sawContent = false;

  /** Known once the stream has said both: the prompt (message_start) and the final output (message_delta). */
  get usage(): ReportedUsage | null {
    return this.#prompt === null || this.#completion === null ? null : { promptTokens: this.#prompt, completionTokens: this.#completion };
  }
  get contentChars(): number {
    return this.#contentChars;
  }
  get sawContent(): boolean {
    return this.#sawContent;
  }

  push(chunk: Buffer, endOfStream: boolean): Buffer | null {
    const data = this.#partial === null ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = null;
    let start = 0;
    for (let nl = data.indexOf(LF, start); nl !== -1; nl = data.indexOf(LF, start)) {
      this.#line(data, start, nl);
      start = nl + 1;
    }
    if (start < data.length) {
      if (endOfStream) this.#line(data, start, data.length);
      else this.#partial = Buffer.from(data.subarray(start)); // copy: the chunk's memory is not ours to keep
    }
    return null;
  }

  #line(data: Buffer, start: number, end: number): void {
    if (end > start && data[end - 1] === 0x0d) end--;
    // "data:" lines only; event:, id: and comments carry nothing to meter.
    if (end - start < 6 || data.toString('latin1', start, start + 5) !== 'data:') return;
    let obj: unknown;
    try {
      obj = JSON.parse(data.toString('utf8', start + (data[start + 5] === 0x20 ? 6 : 5), end));
    } catch {
      return; // not ours to judge
    }
    if (typeof obj !== 'object' || obj === null) return;
    const ev = obj as Record<string, unknown>;
    switch (ev['type']) {
      case 'message_start': {
        const message = ev['message'];
        if (typeof message === 'object' && message !== null) this.#prompt = promptTokensOf((message as Record<string, unknown>)['usage']);
        return;
      }
      case 'content_block_delta': {
        const delta = ev['delta'];
        if (typeof delta !== 'object' || delta === null) return;
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
        return;
      }
      case 'message_delta': {
        const usage = ev['usage'];
        if (typeof usage !== 'object' || usage === null) return;
        const u = usage as Record<string, unknown>;
        const out = u['output_tokens'];
        if (typeof out === 'number' && Number.isSafeInteger(out) && out >= 0) this.#completion = out;
        // Newer streams may restate the prompt here (cache tokens included).
        const prompt = promptTokensOf(usage);
        if (prompt !== null) this.#prompt = prompt;
        return;
      }
    }
  }
}
