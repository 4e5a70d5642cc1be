/**
 * A strict protobuf wire-format reader over one Buffer, for the hand-written
 * ext_proc codec (ext-proc-codec.ts).
 *
 * Strict where protobufjs is lenient, because the input comes off the
 * network and a malformed message must fail its call, never be half-read:
 * every read is bounds-checked against the end of the enclosing message (not
 * only the end of the buffer), varints longer than 10 bytes, wire types 4
 * (stray end-group), 6 and 7, field number 0, an end-group tag that does not
 * match its start-group, and a field sent with a wire type other than the
 * one its declaration implies all throw a WireError. Envoy (C++ protobuf)
 * never produces any of these.
 */

/** Malformed protobuf input. The transport turns it into an INTERNAL status, as it did for protobufjs errors. */
export class WireError extends Error {
  override name = 'WireError';
}

export const WireType = {
  VARINT: 0,
  I64: 1,
  LEN: 2,
  SGROUP: 3,
  EGROUP: 4,
  I32: 5,
} as const;

/** Deeper nesting than this (Struct in ListValue in Struct …, or groups) is refused; C++ protobuf's default limit. */
export const MAX_DEPTH = 100;

/** Buffer's own UTF-8 decoder, without toString's argument handling (protobufjs calls it too). */
interface Utf8Sliceable {
  utf8Slice(start: number, end: number): string;
}

// Interned short strings: header names and attribute keys repeat on every
// request, and decoding them again (and collecting the copies) was most of
// what decoding request_headers cost. A direct-mapped table of 1024 slots
// keyed by a hash of the bytes, checked byte for byte on a hit.
const INTERN_SLOTS = 1024;
const INTERN_MAX_BYTES = 32;
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX_BYTES);
const internLengths = new Int8Array(INTERN_SLOTS).fill(-1);
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill('');

export class Reader {
  readonly buf: Buffer;
  pos: number;
  /** End of the message being read; nested messages narrow it with `enter` / `leave`. */
  end: number;
  /** Nesting depth, checked against MAX_DEPTH. */
  depth = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length;
  }

  #truncated(): never {
    throw new WireError(`truncated message at offset ${this.pos}`);
  }

  /**
   * A varint's low 32 bits, as an unsigned number. Reads (and validates) all
   * of it, up to 10 bytes: an int32 enum with a negative value is sent as 10
   * bytes, and its low 32 bits are what protobufjs keeps.
   */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    const end = this.end;
    // Fast path: one byte (tags, small lengths, booleans).
    if (pos < end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) {
        this.pos = pos;
        this.#truncated();
      }
      const b = buf[pos++]!;
      // Bits beyond 32 are dropped; `* 2 ** shift` avoids the sign trouble of << 28.
      if (shift < 32) value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    this.pos = pos;
    throw new WireError(`varint longer than 10 bytes at offset ${pos}`);
  }

  /** A varint as a signed 64-bit integer (int64 fields), decimal, as proto-loader's `longs: String` gives it. */
  int64String(): string {
    const buf = this.buf;
    let pos = this.pos;
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= this.end) {
        this.pos = pos;
        this.#truncated();
      }
      const b = buf[pos++]!;
      value |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return BigInt.asIntN(64, value).toString();
      }
    }
    this.pos = pos;
    throw new WireError(`varint longer than 10 bytes at offset ${pos}`);
  }

  /** An int32 (enum) field: the low 32 bits, signed. */
  int32(): number {
    return this.uint32() | 0;
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  double(): number {
    if (this.pos + 8 > this.end) this.#truncated();
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A length prefix, checked against the enclosing message. */
  length(): number {
    const len = this.uint32();
    if (len > this.end - this.pos) throw new WireError(`length ${len} at offset ${this.pos} runs past the end of the message`);
    return len;
  }

  /** A `bytes` field: a view into the input, not a copy (as protobufjs's Buffer reader returns it). */
  bytes(): Buffer {
    const len = this.length();
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  string(): string {
    const len = this.length();
    const start = this.pos;
    this.pos = start + len;
    return (this.buf as unknown as Utf8Sliceable).utf8Slice(start, start + len);
  }

  /**
   * A string that is likely to repeat from message to message (a header
   * name, a map key): the same as `string()`, served from a small table when
   * these bytes were decoded before.
   */
  internedString(): string {
    const len = this.length();
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    const buf = this.buf;
    if (len > INTERN_MAX_BYTES) return (buf as unknown as Utf8Sliceable).utf8Slice(start, end);
    // A few bytes are enough to spread names over the slots; the comparison below is what decides.
    // (Every index read is inside [start, end) when len >= 1.)
    const slot = len === 0 ? 0 : (len * 31 + buf[start]! * 7 + buf[start + (len >> 2)]! + buf[start + (len >> 1)]! * 131 + buf[end - 1]! * 17) % INTERN_SLOTS;
    const base = slot * INTERN_MAX_BYTES;
    if (internLengths[slot] === len) {
      let i = 0;
      while (i < len && internBytes[base + i] === buf[start + i]) i++;
      if (i === len) return internStrings[slot]!;
    }
    const value = (buf as unknown as Utf8Sliceable).utf8Slice(start, end);
    internBytes.set(buf.subarray(start, end), base);
    internLengths[slot] = len;
    internStrings[slot] = value;
    return value;
  }

  /**
   * Starts reading an embedded message: returns the enclosing end to hand
   * back to `leave`. Reads of the embedded message cannot run past its own end.
   */
  enter(): number {
    const len = this.length();
    if (++this.depth > MAX_DEPTH) throw new WireError(`messages nested deeper than ${MAX_DEPTH}`);
    const outer = this.end;
    this.end = this.pos + len;
    return outer;
  }

  leave(outer: number): void {
    this.depth--;
    this.end = outer;
  }

  /** True while the current message has bytes left. */
  more(): boolean {
    return this.pos < this.end;
  }

  /** A field tag; field number 0 and wire types 4, 6 and 7 are malformed here. */
  tag(): number {
    const at = this.pos;
    const tag = this.uint32();
    const wt = tag & 7;
    if (tag >>> 3 === 0) throw new WireError(`field number 0 at offset ${at}`);
    if (wt === WireType.EGROUP || wt > WireType.I32) throw new WireError(`invalid wire type ${wt} at offset ${at}`);
    return tag;
  }

  /** Refuses a known field sent with the wrong wire type (protobufjs would misread it). */
  expect(tag: number, wireType: number): void {
    if ((tag & 7) !== wireType) throw new WireError(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wireType}, before offset ${this.pos}`);
  }

  /** Skips the value of a field this codec does not know (unknown fields are dropped, as protobufjs does). */
  skip(tag: number): void {
    switch (tag & 7) {
      case WireType.VARINT:
        this.uint32();
        return;
      case WireType.I64:
        this.#advance(8);
        return;
      case WireType.LEN:
        this.#advance(this.length());
        return;
      case WireType.I32:
        this.#advance(4);
        return;
      case WireType.SGROUP: {
        if (++this.depth > MAX_DEPTH) throw new WireError(`groups nested deeper than ${MAX_DEPTH}`);
        const field = tag >>> 3;
        for (;;) {
          if (!this.more()) this.#truncated();
          const at = this.pos;
          const inner = this.uint32();
          if ((inner & 7) === WireType.EGROUP) {
            if (inner >>> 3 !== field) throw new WireError(`end-group for field ${inner >>> 3} closes group ${field} at offset ${at}`);
            break;
          }
          this.pos = at;
          this.skip(this.tag());
        }
        this.depth--;
        return;
      }
      default:
        throw new WireError(`invalid wire type ${tag & 7} before offset ${this.pos}`);
    }
  }

  #advance(n: number): void {
    if (n > this.end - this.pos) this.#truncated();
    this.pos += n;
  }
}
