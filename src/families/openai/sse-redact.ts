/**
 * Redaction of generated text in an OpenAI SSE stream: where the text is in
 * OpenAI's chunk events. The hold-back across chunk boundaries is the shared
 * engine's (../common/sse-hold-back.ts).
 */
import type { RedactFn, Span } from '../../pipeline/ports.ts';
import { SseHoldBackRedactor, type SseEvent, type SseTextCodec, type TextSlot } from '../common/sse-hold-back.ts';

export type { RedactFn, Span };

type Json = Record<string, unknown>;

interface Template {
  readonly event: Json;
  /** Where in the choice the text lives: chat deltas or completions text. */
  readonly field: 'delta' | 'text';
}

/**
 * OpenAI's events: one `data:` line with a single choice whose delta is plain
 * text (or a completion's `text`); role, tool calls, finish and usage pass.
 */
const OPENAI_TEXT: SseTextCodec<Template> = {
  textOf(event: SseEvent): TextSlot<Template> | null {
    if (event.lines.length !== 1 || event.json === null || typeof event.json !== 'object') return null;
    const content = contentOf(event.json as Json);
    return content === null ? null : { key: content.index, text: content.text, template: { event: event.json as Json, field: content.field } };
  },
  render(template: Template, index: number, text: string): string {
    return `data: ${JSON.stringify(withContent(template.event, index, template.field, text))}\n\n`;
  },
};

/** Generated text of an OpenAI SSE stream, redacted across chunk boundaries (see ../common/sse-hold-back.ts). */
export class SseRedactor extends SseHoldBackRedactor<Template> {
  constructor(redact: RedactFn, holdBack: number) {
    super(OPENAI_TEXT, redact, holdBack);
  }
}

function contentOf(obj: Json): { index: number; text: string; field: 'delta' | 'text' } | null {
  const choices = obj['choices'];
  if (!Array.isArray(choices) || choices.length !== 1) return null;
  const c = choices[0] as Json | undefined;
  if (typeof c !== 'object' || c === null || c['finish_reason'] != null) return null;
  const index = typeof c['index'] === 'number' ? c['index'] : 0;
  const delta = c['delta'];
  if (typeof delta === 'object' && delta !== null) {
    const t = (delta as Json)['content'];
    const keys = Object.keys(delta);
    // Only plain text deltas are held; anything else (tool calls…) passes as it is, after a flush.
    if (typeof t === 'string' && keys.every((k) => k === 'content' || k === 'role')) return { index, text: t, field: 'delta' };
    return null;
  }
  if (typeof c['text'] === 'string') return { index, text: c['text'], field: 'text' };
  return null;
}

function withContent(template: Json, index: number, field: 'delta' | 'text', text: string): Json {
  const choice = field === 'delta' ? { index, delta: { content: text }, finish_reason: null } : { index, text, finish_reason: null };
  return { ...template, choices: [choice] };
}
