/**
 * The audit chain of this sidecar process (docs/audit.md). Records are queued
 * and written in batches (group commit); numbering happens when a batch is
 * framed, in write order: each record gets the chain id, the next sequence
 * number and the hash of the previous record. Signed checkpoints are added to
 * a batch every `checkpointEvery` records, every `checkpointMs` if there is
 * something new, and at shutdown (final).
 *
 * A batch that fails to commit rejects its records (their requests fail
 * closed) and the chain is restarted under a new id: the old chain then ends
 * at its last committed record (reported as unsealed by the verifier), and no
 * sequence number is ever reused or skipped, even when the failed write might
 * have partly landed.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson, GENESIS, sha256Hex } from '../../crypto/canonical.ts';
import type { AuditSink } from '../../pipeline/ports.ts';
import type { AuditLineSink } from './port.ts';
import { GroupCommit } from './group-commit.ts';
import { signText, type SigningKey } from '../../crypto/signing.ts';
import { errorMessage } from '../../shared/values.ts';

export interface ChainOptions {
  readonly sink: AuditLineSink;
  readonly key: SigningKey;
  readonly checkpointEvery: number;
  readonly checkpointMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

type Entry = { readonly kind: 'record'; readonly record: object } | { readonly kind: 'checkpoint'; readonly final: boolean };

export class AuditChain implements AuditSink {
  readonly #o: ChainOptions;
  readonly #now: () => number;
  #id = randomUUID();
  #seq = 0;
  #prev = GENESIS;
  #checkpointedSeq = 0;
  readonly #commits = new GroupCommit<Entry>((batch) => this.#write(batch));
  #timer: NodeJS.Timeout;
  #closed = false;

  constructor(opts: ChainOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#timer = setInterval(() => {
      if (this.#seq > this.#checkpointedSeq) this.#enqueueCheckpoint(false).catch(() => undefined);
    }, opts.checkpointMs);
    this.#timer.unref();
  }

  get id(): string {
    return this.#id;
  }

  append(record: object): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit chain is closed'));
    return this.#commits.add({ kind: 'record', record });
  }

  #enqueueCheckpoint(final: boolean): Promise<void> {
    return this.#commits.add({ kind: 'checkpoint', final });
  }

  /** Numbers one batch in write order and writes it; a failed batch restarts the chain under a new id. */
  async #write(batch: readonly Entry[]): Promise<void> {
    const mark = { id: this.#id, seq: this.#seq };
    const lines: string[] = [];
    for (const e of batch) {
      if (e.kind === 'record') lines.push(this.#frame(e.record));
      else if (e.final || this.#seq > this.#checkpointedSeq) lines.push(this.#checkpoint(e.final));
    }
    if (this.#seq - this.#checkpointedSeq >= this.#o.checkpointEvery) lines.push(this.#checkpoint(false));
    try {
      // The whole batch in one call: one write (and one fsync) per batch.
      if (lines.length > 0) await this.#o.sink.append(lines);
    } catch (err) {
      this.#o.log.error(
        { chain: mark.id, lastCommittedSeq: mark.seq, err: errorMessage(err) },
        'audit write failed: its requests fail closed; continuing on a new chain',
      );
      this.#id = randomUUID();
      this.#seq = 0;
      this.#prev = GENESIS;
      this.#checkpointedSeq = 0;
      throw err;
    }
  }

  /** The record's line: its canonical JSON, which is also exactly what its hash covers (serialized once). */
  #frame(record: object): string {
    const link = { id: this.#id, prev: this.#prev, seq: ++this.#seq };
    // A record built with its `chain` slot (buildAuditRecord) is linked in place; anything else is copied around it.
    const slot = record as { chain?: unknown; type?: unknown };
    const linked =
      Object.hasOwn(slot, 'chain') && slot.chain === null && Object.hasOwn(slot, 'type') ? Object.assign(slot, { chain: link }) : chainedRecord(record, link);
    const line = canonicalJson(linked);
    this.#prev = sha256Hex(line);
    return line;
  }

  /** A signed statement that records 1..seq of this chain exist with these hashes. */
  #checkpoint(final: boolean): string {
    const body = {
      type: 'checkpoint',
      v: 1,
      chain: this.#id,
      seq: this.#seq,
      hash: this.#prev,
      at: new Date(this.#now()).toISOString(),
      final,
      kid: this.#o.key.kid,
    };
    this.#checkpointedSeq = this.#seq;
    return canonicalJson({ ...body, sig: signText(this.#o.key, canonicalJson(body)) });
  }

  /** Final checkpoint, then the sink is closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#closed = true;
    try {
      await this.#enqueueCheckpoint(true);
    } finally {
      await this.#o.sink.close();
    }
  }
}

/**
 * `{ type: 'request', ...record, chain }` with `chain` and `type` placed where their names sort among the record's
 * keys: a record built in canonical key order (buildAuditRecord) stays in order, and canonicalJson can take its
 * native path.
 */
export function chainedRecord(record: object, chain: { id: string; prev: string; seq: number }): Record<string, unknown> {
  const src = record as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  let chainPlaced = false;
  let typePlaced = Object.hasOwn(src, 'type');
  for (const k of Object.keys(src)) {
    if (!chainPlaced && k > 'chain') {
      out.chain = chain;
      chainPlaced = true;
    }
    if (!typePlaced && k > 'type') {
      out.type = 'request';
      typePlaced = true;
    }
    if (k !== 'chain') out[k] = src[k];
  }
  if (!chainPlaced) out.chain = chain;
  if (!typePlaced) out.type = 'request';
  return out;
}
