/**
 * A protobuf wire-format writer for the hand-written ext_proc codec
 * (ext-proc-codec.ts).
 *
 * Writes into one growable scratch buffer reused across messages and copies
 * the result out once, where protobufjs builds a linked list of write
 * operations per message and then runs it. An embedded message's length is
 * not known before its content is written: `fork` reserves one byte for it
 * (most of ours are under 128 bytes) and `ldelim` moves the content up when
 * the length needs more, so the output is canonical, byte for byte what
 * protobufjs writes for the same fields in the same order.
 */

const INITIAL_BYTES = 4096;
/** A scratch buffer grown past this (a large body) is not kept for the next message. */
const KEEP_BYTES = 256 * 1024;

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

export class Writer {
  #buf: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  #pos = 0;
  /** Start offsets of the open `fork`s' content: a stack of #open entries (not push/pop: resetting is then free). */
  readonly #forks: number[] = [];
  #open = 0;

  /** Starts a new message, dropping anything written since the last `finish`. */
  reset(): void {
    this.#pos = 0;
    this.#open = 0;
  }

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }

  /** An unsigned 32-bit varint (tags, lengths, uint32 fields, non-negative int32). */
  uint32(value: number): void {
    this.#ensure(5);
    const buf = this.#buf;
    let pos = this.#pos;
    let v = value >>> 0;
    while (v >= 0x80) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.#pos = pos;
  }

  /** An int32 (enum) value: a negative one is sign-extended to 64 bits, 10 bytes on the wire. */
  int32(value: number): void {
    if (value >= 0) this.uint32(value);
    else this.uint64(BigInt.asUintN(64, BigInt(value)));
  }

  /** A 64-bit varint from its two's-complement unsigned value. */
  uint64(value: bigint): void {
    this.#ensure(10);
    const buf = this.#buf;
    let v = value;
    while (v >= 0x80n) {
      buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    buf[this.#pos++] = Number(v);
  }

  tag(field: number, wireType: number): void {
    // One byte for field numbers below 16, two for ProcessingResponse's field 16.
    this.uint32((field << 3) | wireType);
  }

  bool(value: boolean): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value ? 1 : 0;
  }

  double(value: number): void {
    this.#ensure(8);
    this.#buf.writeDoubleLE(value, this.#pos);
    this.#pos += 8;
  }

  string(value: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: below 43 units the length fits one byte.
    if (value.length < 43) {
      this.#ensure(1 + value.length * 3);
      const n = this.#buf.write(value, this.#pos + 1, 'utf8');
      this.#buf[this.#pos] = n;
      this.#pos += 1 + n;
      return;
    }
    const n = Buffer.byteLength(value, 'utf8');
    this.uint32(n);
    this.#ensure(n);
    this.#buf.write(value, this.#pos, 'utf8');
    this.#pos += n;
  }

  bytes(value: Uint8Array): void {
    this.uint32(value.length);
    this.#ensure(value.length);
    this.#buf.set(value, this.#pos);
    this.#pos += value.length;
  }

  /** Opens an embedded message (after its tag): one byte reserved for its length. */
  fork(): void {
    this.#ensure(1);
    this.#pos += 1;
    this.#forks[this.#open++] = this.#pos;
  }

  /** Closes the innermost `fork`, writing its length. */
  ldelim(): void {
    const start = this.#forks[--this.#open]!;
    const len = this.#pos - start;
    const size = varintSize(len);
    if (size > 1) {
      this.#ensure(size - 1);
      this.#buf.copyWithin(start + size - 1, start, this.#pos);
      this.#pos += size - 1;
    }
    let at = start - 1;
    let v = len;
    while (v >= 0x80) {
      this.#buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[at] = v;
  }

  /** The message written since `reset`, as a new Buffer (the scratch space is reused). */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos);
    this.#buf.copy(out, 0, 0, this.#pos);
    if (this.#buf.length > KEEP_BYTES) this.#buf = Buffer.allocUnsafe(INITIAL_BYTES);
    this.reset();
    return out;
  }
}
