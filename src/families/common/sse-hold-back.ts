/**
 * Redaction of generated text in a server-sent-events stream, across chunk
 * boundaries, for any API family. Envoy's chunks split events anywhere, and a
 * sensitive value can be spread over many token events, so generated text is
 * held back: per stream of text (a choice, a content block), it is
 * accumulated and released only up to `holdBack` characters before its end
 * (or earlier, at the start of a match that crosses that point), redacted, as
 * one well-formed event built from the stream's own last event. Events that
 * carry no text first flush what is held, so order and framing stay intact.
 * Each call returns only complete events; nothing is ever split mid-JSON.
 *
 * What an event looks like is the family's: a codec finds the text in an
 * event and renders an event around a text.
 */
import type { RedactFn, StreamRedactor } from '../../pipeline/ports.ts';

/** One event as it arrived: its lines (without the blank separator) and its data, parsed when it is JSON. */
export interface SseEvent {
  readonly lines: readonly string[];
  /** The `event:` field, or null. */
  readonly name: string | null;
  /** The parsed JSON of the data lines; null when there is none or it is not JSON (`[DONE]`). */
  readonly json: unknown;
}

export interface TextSlot<T> {
  /** Which text stream this event extends (a choice index, a content block index). */
  readonly key: number;
  readonly text: string;
  /** Kept from the last event of the slot; rendered around what is released. */
  readonly template: T;
}

export interface SseTextCodec<T> {
  /** The generated text this event carries, or null when it carries none (it then passes as it is). */
  textOf(event: SseEvent): TextSlot<T> | null;
  /** A complete event (its lines and the blank line) carrying `text` in the shape of `template`. */
  render(template: T, key: number, text: string): string;
}

const LF = 0x0a;

interface Pending<T> {
  text: string;
  template: T;
}

export class SseHoldBackRedactor<T> implements StreamRedactor {
  readonly #codec: SseTextCodec<T>;
  readonly #redact: RedactFn;
  readonly #holdBack: number;
  #partial: Buffer | null = null;
  #eventLines: string[] = [];
  readonly #pending = new Map<number, Pending<T>>();

  constructor(codec: SseTextCodec<T>, redact: RedactFn, holdBack: number) {
    this.#codec = codec;
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
    const slot = this.#codec.textOf(parseEvent(lines));
    if (slot === null) {
      // Not generated text (role, finish, usage, [DONE], comments…): release what is held first.
      this.#flushAll(out);
      out.push(`${lines.join('\n')}\n\n`);
      return;
    }
    const p = this.#pending.get(slot.key) ?? { text: '', template: slot.template };
    p.text += slot.text;
    p.template = slot.template;
    this.#pending.set(slot.key, p);
    this.#release(slot.key, p, false, out);
  }

  #flushAll(out: string[]): void {
    for (const [key, p] of this.#pending) this.#release(key, p, true, out);
  }

  #release(key: number, p: Pending<T>, all: boolean, out: string[]): void {
    if (p.text === '') return;
    let boundary = all ? p.text.length : Math.max(0, p.text.length - this.#holdBack);
    if (boundary === 0) return;
    const { spans } = this.#redact(p.text, false); // only where matches lie; the head is redacted (and counted) below
    for (const s of spans) if (s.start < boundary && s.end > boundary) boundary = Math.min(boundary, s.start);
    if (boundary === 0) return;
    const head = p.text.slice(0, boundary);
    p.text = p.text.slice(boundary);
    out.push(this.#codec.render(p.template, key, this.#redact(head, true).text));
  }
}

/** The `event:` name and the JSON of the data lines (joined with newlines, as SSE defines). */
function parseEvent(lines: readonly string[]): SseEvent {
  let name: string | null = null;
  let data: string | null = null;
  for (const line of lines) {
    if (line.startsWith('data:')) {
      const value = line.slice(line.startsWith('data: ') ? 6 : 5);
      data = data === null ? value : `${data}\n${value}`;
    } else if (line.startsWith('event:')) {
      name = line.slice(line.startsWith('event: ') ? 7 : 6);
    }
  }
  let json: unknown = null;
  if (data !== null && data !== '[DONE]') {
    try {
      json = JSON.parse(data);
    } catch {
      json = null;
    }
  }
  return { lines, name, json };
}
