/**
 * Redaction of generated text in an Anthropic Messages stream: the text is in
 * `content_block_delta` events with a `text_delta`, per content block index.
 * The hold-back across chunk boundaries is the shared engine's
 * (../common/sse-hold-back.ts); everything else (message_start, tool input, stops,
 * pings) passes as it is, after what is held.
 */
import type { RedactFn } from '../../pipeline/ports.ts';
import { SseHoldBackRedactor, type SseEvent, type SseTextCodec, type TextSlot } from '../common/sse-hold-back.ts';

type Json = Record<string, unknown>;

const ANTHROPIC_TEXT: SseTextCodec<Json> = {
  textOf(event: SseEvent): TextSlot<Json> | null {
    const ev = event.json;
    if (typeof ev !== 'object' || ev === null) return null;
    const e = ev as Json;
    if (e['type'] !== 'content_block_delta' || typeof e['index'] !== 'number') return null;
    const delta = e['delta'];
    if (typeof delta !== 'object' || delta === null) return null;
    const d = delta as Json;
    if (d['type'] !== 'text_delta' || typeof d['text'] !== 'string') return null;
    return { key: e['index'], text: d['text'], template: e };
  },
  render(template: Json, index: number, text: string): string {
    return `event: content_block_delta\ndata: ${JSON.stringify({ ...template, index, delta: { type: 'text_delta', text } })}\n\n`;
  },
};

export class AnthropicSseRedactor extends SseHoldBackRedactor<Json> {
  constructor(redact: RedactFn, holdBack: number) {
    super(ANTHROPIC_TEXT, redact, holdBack);
  }
}
