/**
 * Redaction of generated text in an Anthropic Messages stream: text deltas,
 * tool input JSON fragments and thinking deltas, per content block, each a
 * slot held back across chunk boundaries by the shared engine
 * (../common/sse-hold-back.ts). Every other event (message_start, a block's
 * start, stops, pings, events this codec does not know) goes on with its
 * strings redacted one event at a time.
 */
import type { RedactFn } from '../../pipeline/ports.ts';
import { SseHoldBackRedactor, type SseEvent, type SseParts, type SseTextCodec } from '../common/sse-hold-back.ts';

type Json = Record<string, unknown>;

/** Delta types that carry generated text, and the field it is in. */
const DELTA_FIELD: Readonly<Record<string, string>> = { text_delta: 'text', input_json_delta: 'partial_json', thinking_delta: 'thinking' };

const ANTHROPIC_TEXT: SseTextCodec<Json> = {
  read(event: SseEvent): SseParts<Json> | null {
    const e = event.json;
    if (typeof e !== 'object' || e === null) return null;
    const ev = e as Json;
    if (ev['type'] !== 'content_block_delta' || typeof ev['index'] !== 'number') return null;
    const delta = ev['delta'];
    if (typeof delta !== 'object' || delta === null) return null;
    const d = delta as Json;
    const field = typeof d['type'] === 'string' ? DELTA_FIELD[d['type']] : undefined;
    if (field === undefined || typeof d[field] !== 'string') return null;
    return { slots: [{ key: `${ev['index']}:${d['type'] as string}`, text: d[field], template: ev }], rest: null, order: 'text-first' };
  },
  render(template: Json, key: string, text: string): string {
    const [index, type] = key.split(':') as [string, string];
    const field = DELTA_FIELD[type] ?? 'text';
    return `event: content_block_delta\ndata: ${JSON.stringify({ ...template, index: Number(index), delta: { type, [field]: text } })}\n\n`;
  },
  structural: new Set(['id', 'type', 'model', 'role', 'stop_reason', 'signature']),
};

export class AnthropicSseRedactor extends SseHoldBackRedactor<Json> {
  constructor(redact: RedactFn, holdBack: number) {
    super(ANTHROPIC_TEXT, redact, holdBack);
  }
}
