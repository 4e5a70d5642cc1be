/**
 * Redaction of generated text in an OpenAI SSE stream, across chunk
 * boundaries. Envoy's chunks split events anywhere, and a sensitive value can
 * be spread over many token events, so generated text is held back: per
 * choice, content is accumulated and released only up to `holdBack`
 * characters before its end (or earlier, at the start of a match that crosses
 * that point), redacted, as one well-formed `data:` event built from the
 * stream's own event. Events without content (role, finish_reason, usage,
 * [DONE]) first flush what is held, so order and framing stay intact. Each
 * call returns only complete events; nothing is ever split mid-JSON.
 */
import type { RedactFn, Span, StreamRedactor } from '../../pipeline/ports.ts';

export type { RedactFn, Span };

const LF = 0x0a;

type Json = Record<string, unknown>;

interface Pending {
  text: string;
  /** The last event this text came from: the template for what is released. */
  template: Json;
  /** Where in the choice the text lives: chat deltas or completions text. */
  field: 'delta' | 'text';
}

export class SseRedactor implements StreamRedactor {
  readonly #redact: RedactFn;
  readonly #holdBack: number;
  #partial: Buffer | null = null;
  #eventLines: string[] = [];
  readonly #pending = new Map<number, Pending>();

  constructor(redact: RedactFn, holdBack: number) {
    this.#redact = redact;
    this.#holdBack = holdBack;
  }

  /** Feeds raw bytes; returns the bytes to send on now (possibly empty). */
  push(chunk: Buffer, end: boolean): Buffer {
    const data = this.#partial === null ? chunk : Buffer.concat([this.#partial, chunk]);
    this.#partial = null;
    const out: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(LF, start); nl !== -1; nl = data.indexOf(LF, start)) {
      this.#line(data.toString('utf8', start, nl).replace(/\r$/, ''), out);
      start = nl + 1;
    }
    if (start < data.length) {
      if (end) this.#line(data.toString('utf8', start), out);
      else this.#partial = Buffer.from(data.subarray(start));
    }
    if (end) {
      if (this.#eventLines.length > 0) this.#event(out);
      this.#flushAll(out);
    }
    return Buffer.from(out.join(''), 'utf8');
  }

  #line(line: string, out: string[]): void {
    if (line === '') {
      this.#event(out);
      return;
    }
    this.#eventLines.push(line);
  }

  /** One complete event (its lines, without the blank separator). */
  #event(out: string[]): void {
    const lines = this.#eventLines;
    this.#eventLines = [];
    if (lines.length === 0) return;
    const dataLine = lines.length === 1 && lines[0]?.startsWith('data:') ? lines[0] : null;
    const payload = dataLine?.slice(dataLine.startsWith('data: ') ? 6 : 5);
    let obj: unknown = null;
    if (payload !== undefined && payload !== '[DONE]') {
      try {
        obj = JSON.parse(payload);
      } catch {
        obj = null;
      }
    }
    const content = obj === null ? null : contentOf(obj as Json);
    if (content === null) {
      // Not generated text (role, finish, usage, [DONE], comments…): release what is held first.
      this.#flushAll(out);
      out.push(`${lines.join('\n')}\n\n`);
      return;
    }
    const held = this.#pending.get(content.index);
    const p: Pending = held === undefined ? { text: '', template: obj as Json, field: content.field } : held;
    p.text += content.text;
    p.template = obj as Json;
    this.#pending.set(content.index, p);
    this.#release(content.index, p, false, out);
  }

  #flushAll(out: string[]): void {
    for (const [index, p] of this.#pending) this.#release(index, p, true, out);
  }

  #release(index: number, p: Pending, all: boolean, out: string[]): void {
    if (p.text === '') return;
    let boundary = all ? p.text.length : Math.max(0, p.text.length - this.#holdBack);
    if (boundary === 0) return;
    const { spans } = this.#redact(p.text, false); // only where matches lie; the head is redacted (and counted) below
    for (const s of spans) if (s.start < boundary && s.end > boundary) boundary = Math.min(boundary, s.start);
    if (boundary === 0) return;
    const head = p.text.slice(0, boundary);
    p.text = p.text.slice(boundary);
    out.push(`data: ${JSON.stringify(withContent(p.template, index, p.field, this.#redact(head, true).text))}\n\n`);
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
