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
  /** The parsed JSON of the data lines (however many: SSE joins them with newlines); null when there is none or it is not JSON (`[DONE]`). */
  readonly json: unknown;
}

export interface TextSlot<T> {
  /** Which text stream this event extends: a choice's content, its refusal, one tool call's arguments, a content block… */
  readonly key: string;
  readonly text: string;
  /** Kept from the last event of the slot; rendered around what is released. */
  readonly template: T;
}

/** What a codec makes of an event: the generated text it adds to each slot, and the rest of it. */
export interface SseParts<T> {
  readonly slots: readonly TextSlot<T>[];
  /**
   * The event without its slot texts (null when nothing else is left): emitted
   * as an event of its own, its other strings redacted one event at a time.
   * The same object as the event's JSON means it is unchanged.
   */
  readonly rest: Record<string, unknown> | null;
  /**
   * `rest-first`: the rest opens what the texts continue (a tool call's id
   * and name) and goes out before them; `text-first`: the rest closes it (a
   * finish reason) and goes out after everything held is released.
   */
  readonly order: 'rest-first' | 'text-first';
}

export interface SseTextCodec<T> {
  /** The event's parts, or null when it carries no generated text slot (it then passes, its strings redacted). */
  read(event: SseEvent): SseParts<T> | null;
  /** A complete event (its lines and the blank line) carrying `text` in slot `key`, in the shape of `template`. */
  render(template: T, key: string, text: string): string;
  /** Whether a string at this key of an event is the API's own (ids, names of objects, reasons), not generated text. */
  readonly structural: ReadonlySet<string>;
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
  readonly #pending = new Map<string, Pending<T>>();

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
    const event = parseEvent(lines);
    const parts = this.#codec.read(event);
    if (parts === null) {
      // No generated text slot (usage, [DONE], comments, events this codec does not know): release what is held
      // first, then the event with any string in it redacted.
      this.#flushAll(out);
      out.push(this.#whole(event, event.json));
      return;
    }
    if (parts.order === 'rest-first' && parts.rest !== null) {
      this.#flushAll(out);
      out.push(this.#whole(event, parts.rest));
    }
    for (const slot of parts.slots) {
      const p = this.#pending.get(slot.key) ?? { text: '', template: slot.template };
      p.text += slot.text;
      p.template = slot.template;
      this.#pending.set(slot.key, p);
      this.#release(slot.key, p, false, out);
    }
    if (parts.order === 'text-first' && parts.rest !== null) {
      this.#flushAll(out);
      out.push(this.#whole(event, parts.rest));
    }
  }

  /**
   * An event passed on as a unit: its strings redacted on their own (what is
   * not a text slot has no hold-back), re-rendered only when something
   * changed; unchanged, the event keeps its bytes.
   */
  #whole(event: SseEvent, json: unknown): string {
    const original = `${event.lines.join('\n')}\n\n`;
    if (typeof json !== 'object' || json === null) return original;
    const changed = this.#redactStrings(json as Record<string, unknown>);
    if (!changed && json === event.json) return original;
    return `${event.name === null ? '' : `event: ${event.name}\n`}data: ${JSON.stringify(json)}\n\n`;
  }

  #redactStrings(node: Record<string, unknown> | unknown[]): boolean {
    let changed = false;
    const visit = (holder: Record<string, unknown> | unknown[], key: string | number): void => {
      const v = (holder as Record<string | number, unknown>)[key];
      if (typeof v === 'string') {
        if (typeof key === 'string' && this.#codec.structural.has(key)) return;
        const r = this.#redact(v, true);
        if (r.spans.length > 0) {
          (holder as Record<string | number, unknown>)[key] = r.text;
          changed = true;
        }
      } else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) visit(v, i);
      } else if (typeof v === 'object' && v !== null) {
        for (const k of Object.keys(v)) visit(v as Record<string, unknown>, k);
      }
    };
    if (Array.isArray(node)) for (let i = 0; i < node.length; i++) visit(node, i);
    else for (const k of Object.keys(node)) visit(node, k);
    return changed;
  }

  #flushAll(out: string[]): void {
    for (const [key, p] of this.#pending) this.#release(key, p, true, out);
  }

  #release(key: string, p: Pending<T>, all: boolean, out: string[]): void {
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
