/**
 * Server-sent events out of bytes split anywhere (Envoy's chunks ignore
 * line and event boundaries). Bytes are cut into lines at LF (a CR before it
 * is dropped); only complete lines are decoded, so a UTF-8 character split
 * between two chunks is never decoded half-way. An event's `event:` and
 * `data:` fields are collected until its blank line, then handed over (its
 * data lines joined with LF, as the SSE standard says). Comments, `id:` and
 * `retry:` are ignored. At the end of the stream a last line without LF and
 * an event without its blank line still count.
 *
 * No regular expressions: a line's field is told by its first bytes.
 */

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

/** One event: its `event:` name (null when it had none) and its data. */
export type SseHandler = (event: string | null, data: string) => void;

export class SseReader {
  readonly #onEvent: SseHandler;
  /** The start of a line whose end has not come yet (copies: a chunk's memory is not ours to keep). */
  #pending: Buffer[] = [];
  #event: string | null = null;
  #data: string | null = null;

  constructor(onEvent: SseHandler) {
    this.#onEvent = onEvent;
  }

  push(chunk: Buffer, endOfStream: boolean): void {
    let start = 0;
    let nl = chunk.indexOf(LF);
    if (this.#pending.length > 0) {
      if (nl === -1 && !endOfStream) {
        this.#pending.push(Buffer.from(chunk));
        return;
      }
      const end = nl === -1 ? chunk.length : nl;
      this.#pending.push(chunk.subarray(start, end));
      const line = Buffer.concat(this.#pending);
      this.#pending = [];
      this.#line(line, 0, line.length);
      if (nl === -1) {
        this.#dispatch();
        return;
      }
      start = nl + 1;
      nl = chunk.indexOf(LF, start);
    }
    while (nl !== -1) {
      this.#line(chunk, start, nl);
      start = nl + 1;
      nl = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      if (endOfStream) this.#line(chunk, start, chunk.length);
      else this.#pending.push(Buffer.from(chunk.subarray(start)));
    }
    if (endOfStream) this.#dispatch();
  }

  #line(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start) {
      this.#dispatch();
      return;
    }
    const first = buf[start];
    // data:
    if (first === 0x64 && end - start >= 5 && buf[start + 1] === 0x61 && buf[start + 2] === 0x74 && buf[start + 3] === 0x61 && buf[start + 4] === 0x3a) {
      const from = buf[start + 5] === SPACE && start + 5 < end ? start + 6 : start + 5;
      const value = buf.toString('utf8', from, end);
      this.#data = this.#data === null ? value : `${this.#data}\n${value}`;
      return;
    }
    // event:
    if (
      first === 0x65 &&
      end - start >= 6 &&
      buf[start + 1] === 0x76 &&
      buf[start + 2] === 0x65 &&
      buf[start + 3] === 0x6e &&
      buf[start + 4] === 0x74 &&
      buf[start + 5] === 0x3a
    ) {
      const from = buf[start + 6] === SPACE && start + 6 < end ? start + 7 : start + 6;
      this.#event = buf.toString('utf8', from, end);
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const event = this.#event;
    this.#data = null;
    this.#event = null;
    if (data !== null) this.#onEvent(event, data);
  }
}
