/**
 * RESP2, the Redis wire format, reduced to what the quota store needs: a
 * command encoder that writes straight into one string (no array of argument
 * objects per call), and an incremental reply parser for the reply types the
 * quota scripts and the connection handshake produce — simple strings,
 * errors, integers, bulk strings, arrays (nested) and nil.
 *
 * The parser takes the socket's chunks as they come: a reply may be split
 * anywhere (inside a length line, a CRLF, a bulk string's payload) and one
 * chunk may carry several replies.
 */

/** An error reply (`-ERR …`, `-NOSCRIPT …`): the server refused the command, the connection is fine. */
export class RespReplyError extends Error {
  override readonly name = 'RespReplyError';
}

/** The connection sent something that is not RESP2 (or a type this parser does not take): it cannot be trusted any more. */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

/** A decoded reply: bulk and simple strings as string, integers as number, nil as null. */
export type RespValue = string | number | null | RespReplyError | RespValue[];

const CR = 13;
const LF = 10;
/** A length line longer than this is not RESP (guards the buffer against a peer that never sends CRLF). */
const MAX_LINE = 64 * 1024;
/** Bulk strings beyond Redis' own proto-max-bulk-len default (512 MB) are refused rather than buffered. */
const MAX_BULK = 512 * 1024 * 1024;

/** Appends one bulk string (`$<bytes>\r\n<data>\r\n`) to `out`. */
function bulk(out: string, v: string): string {
  // Byte length, not UTF-16 length; ASCII (the common case: keys, ids, numbers) skips the UTF-8 count.
  return `${out}$${isAscii(v) ? v.length : Buffer.byteLength(v)}\r\n${v}\r\n`;
}

function isAscii(v: string): boolean {
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * A command as RESP2 text (a multi-bulk of its words), e.g.
 * `encodeCommand(['SELECT', '2'])`. For the handshake and tests; the hot path
 * uses encodeScriptCall.
 */
export function encodeCommand(words: ReadonlyArray<string | number>): string {
  let out = `*${words.length}\r\n`;
  for (const w of words) out = bulk(out, typeof w === 'number' ? String(w) : w);
  return out;
}

/**
 * `EVALSHA <sha> <numkeys> <keys…> <args…>` (or EVAL with the script text),
 * encoded in one pass from the caller's arrays.
 */
export function encodeScriptCall(command: 'EVALSHA' | 'EVAL', script: string, keys: readonly string[], args: ReadonlyArray<string | number>): string {
  let out = `*${3 + keys.length + args.length}\r\n$${command.length}\r\n${command}\r\n`;
  out = bulk(out, script);
  out = bulk(out, String(keys.length));
  for (const k of keys) out = bulk(out, k);
  for (const a of args) out = bulk(out, typeof a === 'number' ? String(a) : a);
  return out;
}

/** A reply not complete yet: parse again once the buffer holds at least `need` bytes. (A symbol: -1 is a valid integer reply.) */
const INCOMPLETE: unique symbol = Symbol('incomplete');

/**
 * Incremental RESP2 reply parser. `push(chunk)` hands over bytes from the
 * socket; every complete reply is passed to `onReply`, in order. A
 * malformed stream throws RespProtocolError from push(): the caller must
 * drop the connection (what follows cannot be framed).
 */
export class RespParser {
  readonly #onReply: (value: RespValue) => void;
  /** Bytes received but not parsed yet (the start of an incomplete reply). */
  #buf: Buffer = Buffer.alloc(0);
  /** Chunks received while the buffered reply cannot be complete yet (see #need), joined once it can. */
  #parked: Buffer[] = [];
  #parkedBytes = 0;
  /** The least number of bytes (from the start of #buf) the incomplete reply needs. */
  #need = 0;
  /** Parse position inside #buf while parsing. */
  #pos = 0;

  constructor(onReply: (value: RespValue) => void) {
    this.#onReply = onReply;
  }

  /** Bytes held for an incomplete reply (for tests). */
  get buffered(): number {
    return this.#buf.length + this.#parkedBytes;
  }

  /** Forgets any partial reply (the connection it came from is gone). */
  reset(): void {
    this.#buf = Buffer.alloc(0);
    this.#parked = [];
    this.#parkedBytes = 0;
    this.#need = 0;
  }

  push(chunk: Buffer): void {
    if (this.#buf.length === 0 && this.#parkedBytes === 0) {
      this.#buf = chunk;
    } else {
      // A large bulk string arrives in many chunks: join them once, when the reply can be complete, not per chunk.
      this.#parked.push(chunk);
      this.#parkedBytes += chunk.length;
      if (this.#buf.length + this.#parkedBytes < this.#need) return;
      this.#buf = Buffer.concat([this.#buf, ...this.#parked], this.#buf.length + this.#parkedBytes);
      this.#parked = [];
      this.#parkedBytes = 0;
    }
    const buf = this.#buf;
    let start = 0;
    while (start < buf.length) {
      this.#pos = start;
      const value = this.#value(buf);
      if (value === INCOMPLETE) break;
      start = this.#pos;
      this.#onReply(value);
    }
    if (start === buf.length) {
      this.#buf = Buffer.alloc(0);
      this.#need = 0;
    } else {
      // Keep only the incomplete reply (a copy: the socket's chunk must not be retained in a slice forever).
      this.#buf = start === 0 ? buf : Buffer.from(buf.subarray(start));
      this.#need = Math.max(this.#need - start, this.#buf.length + 1);
    }
  }

  /** One value at #pos; advances #pos past it, or returns INCOMPLETE (and sets #need). */
  #value(buf: Buffer): RespValue | typeof INCOMPLETE {
    const start = this.#pos;
    if (start >= buf.length) return this.#incomplete(start + 1);
    const type = buf[start] as number;
    const lineEnd = this.#lineEnd(buf, start + 1);
    if (lineEnd === INCOMPLETE) return INCOMPLETE;
    switch (type) {
      case 0x2b: // '+'
        this.#pos = lineEnd + 2;
        return buf.toString('utf8', start + 1, lineEnd);
      case 0x2d: // '-'
        this.#pos = lineEnd + 2;
        return new RespReplyError(buf.toString('utf8', start + 1, lineEnd));
      case 0x3a: // ':'
        this.#pos = lineEnd + 2;
        return parseInteger(buf, start + 1, lineEnd);
      case 0x24: {
        // '$'
        const len = parseInteger(buf, start + 1, lineEnd);
        if (len === -1) {
          this.#pos = lineEnd + 2;
          return null;
        }
        if (len < 0 || len > MAX_BULK) throw new RespProtocolError(`bad bulk string length ${len}`);
        const dataStart = lineEnd + 2;
        const end = dataStart + len;
        if (end + 2 > buf.length) return this.#incomplete(end + 2);
        if (buf[end] !== CR || buf[end + 1] !== LF) throw new RespProtocolError('bulk string not terminated by CRLF');
        this.#pos = end + 2;
        return buf.toString('utf8', dataStart, end);
      }
      case 0x2a: {
        // '*'
        const count = parseInteger(buf, start + 1, lineEnd);
        this.#pos = lineEnd + 2;
        if (count === -1) return null;
        if (count < 0) throw new RespProtocolError(`bad array length ${count}`);
        const items: RespValue[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.#value(buf);
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item);
        }
        return items;
      }
      default:
        throw new RespProtocolError(`unexpected reply type byte 0x${type.toString(16)}`);
    }
  }

  /** The index of the CR ending the line that starts at `from`, or INCOMPLETE. */
  #lineEnd(buf: Buffer, from: number): number | typeof INCOMPLETE {
    const cr = buf.indexOf(CR, from);
    if (cr === -1 || cr + 1 >= buf.length) {
      if (buf.length - from > MAX_LINE) throw new RespProtocolError('reply line too long');
      return this.#incomplete(cr === -1 ? buf.length + 1 : cr + 2);
    }
    if (buf[cr + 1] !== LF) throw new RespProtocolError('CR not followed by LF');
    return cr;
  }

  /** Marks the reply at the start of this parse as incomplete; `needEnd` is the least byte count (from 0 of buf) it needs. */
  #incomplete(needEnd: number): typeof INCOMPLETE {
    // #need is stored relative to the start of the buffer at this point; push() rebases it on the kept bytes.
    this.#need = needEnd;
    return INCOMPLETE;
  }
}

/** A signed decimal integer between `from` and `to` (exclusive), as RESP writes them. */
function parseInteger(buf: Buffer, from: number, to: number): number {
  let i = from;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  if (i >= to) throw new RespProtocolError('empty integer');
  let n = 0;
  for (; i < to; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) throw new RespProtocolError(`bad integer ${buf.toString('latin1', from, to)}`);
    n = n * 10 + d;
  }
  return negative ? -n : n;
}
