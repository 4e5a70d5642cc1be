/**
 * The audit chain of this sidecar process (docs/audit.md): every record gets
 * the chain id, the next sequence number and the hash of the previous record,
 * assigned in the order records are handed in — the same order the sink
 * writes them — and signed checkpoints are written every `checkpointEvery`
 * records or `checkpointMs`, and at shutdown (final).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson, GENESIS, recordHash } from './canonical.ts';
import type { AuditSink } from './file-sink.ts';
import { signText, type SigningKey } from './signing.ts';

export interface ChainOptions {
  readonly sink: AuditSink;
  readonly key: SigningKey;
  readonly checkpointEvery: number;
  readonly checkpointMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export class AuditChain implements AuditSink {
  readonly id = randomUUID();
  readonly #o: ChainOptions;
  readonly #now: () => number;
  #seq = 0;
  #prev = GENESIS;
  #checkpointedSeq = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: ChainOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#timer = setInterval(() => {
      if (this.#seq > this.#checkpointedSeq) this.#checkpoint(false).catch((err: unknown) => this.#o.log.error({ err: String(err) }, 'audit checkpoint failed'));
    }, opts.checkpointMs);
    this.#timer.unref();
  }

  get seq(): number {
    return this.#seq;
  }

  append(record: object): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit chain is closed'));
    const chained = { type: 'request', ...record, chain: { id: this.id, seq: ++this.#seq, prev: this.#prev } };
    this.#prev = recordHash(chained);
    const written = this.#o.sink.append(chained);
    if (this.#seq - this.#checkpointedSeq >= this.#o.checkpointEvery) {
      // Queued right behind the record; the request does not wait for it.
      this.#checkpoint(false).catch((err: unknown) => this.#o.log.error({ err: String(err) }, 'audit checkpoint failed'));
    }
    return written;
  }

  /** A signed statement that records 1..seq of this chain exist with these hashes. */
  #checkpoint(final: boolean): Promise<void> {
    const body = { type: 'checkpoint', v: 1, chain: this.id, seq: this.#seq, hash: this.#prev, at: new Date(this.#now()).toISOString(), final, kid: this.#o.key.kid };
    this.#checkpointedSeq = this.#seq;
    return this.#o.sink.append({ ...body, sig: signText(this.#o.key, canonicalJson(body)) });
  }

  /** Final checkpoint, then the sink is closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer !== null) clearInterval(this.#timer);
    try {
      await this.#checkpoint(true);
    } finally {
      this.#closed = true;
      await this.#o.sink.close();
    }
  }
}
