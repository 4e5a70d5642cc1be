/**
 * gRPC message framing on an HTTP/2 stream: each message is a 1-byte
 * compressed flag, a 4-byte big-endian length and the protobuf bytes. DATA
 * frames do not align with messages, so the decoder keeps what it has until
 * a whole message is there.
 */

export const FRAME_HEADER_BYTES = 5;

export type FrameResult =
  { readonly kind: 'message'; readonly bytes: Buffer } | { readonly kind: 'too_large'; readonly length: number } | { readonly kind: 'compressed' };

/** Length-prefixed message decoder for one stream. */
export class FrameDecoder {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes the frame at the head needs in all (0: not known yet). */
  #need = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes received that do not yet form a whole message. */
  get pending(): number {
    return this.#buffered;
  }

  /**
   * Adds a DATA chunk and returns every message it completes. A message over
   * the size limit or one marked compressed ends decoding (the caller fails the
   * call): nothing after it is returned.
   */
  push(chunk: Buffer): FrameResult[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: FrameResult[] = [];
    // A frame whose header was seen waits, without further work, until all of it is here.
    if (this.#buffered < this.#need) return out;
    while (this.#buffered >= FRAME_HEADER_BYTES) {
      const head = this.#peek(FRAME_HEADER_BYTES);
      const compressed = head[0] ?? 0;
      const length = head.readUInt32BE(1);
      if (compressed !== 0) {
        out.push({ kind: 'compressed' });
        return out;
      }
      if (length > this.#maxBytes) {
        out.push({ kind: 'too_large', length });
        return out;
      }
      if (this.#buffered < FRAME_HEADER_BYTES + length) {
        this.#need = FRAME_HEADER_BYTES + length;
        break;
      }
      this.#need = 0;
      const frame = this.#take(FRAME_HEADER_BYTES + length);
      out.push({ kind: 'message', bytes: frame.subarray(FRAME_HEADER_BYTES) });
    }
    return out;
  }

  /** The first n buffered bytes, without consuming them. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) return first;
    // Merge once and keep the result: a header split over tiny chunks costs one copy, not one per push.
    const merged = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [merged];
    return merged;
  }

  /** Consumes and returns the first n buffered bytes (usually a view of one chunk: no copy). */
  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length === n) {
      this.#chunks.shift();
      this.#buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.#chunks, this.#buffered);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return all.subarray(0, n);
  }
}

/** One message, framed (uncompressed). */
export function frameMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, FRAME_HEADER_BYTES);
  return out;
}
