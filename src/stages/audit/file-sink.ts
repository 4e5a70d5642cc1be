/**
 * Append-only JSON Lines audit file with group commit: records handed in
 * while a write is in flight are written together by the next single write,
 * so concurrent requests share one system call. `append()` resolves only
 * once the record's bytes are written; a failed write rejects every record
 * of that batch, and the request that owns it fails closed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface AuditSink {
  append(record: object): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class JsonlFileSink implements AuditSink {
  readonly #path: string;
  #fh: Promise<FileHandle> | null = null;
  #queue: Pending[] = [];
  #writing = false;
  #closed = false;

  constructor(path: string) {
    this.#path = path;
    mkdirSync(dirname(path), { recursive: true });
  }

  append(record: object): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit sink is closed'));
    const line = JSON.stringify(record) + '\n';
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          this.#fh ??= open(this.#path, 'a', 0o600);
          const fh = await this.#fh;
          await fh.write(batch.length === 1 ? (batch[0] as Pending).line : batch.map((p) => p.line).join(''));
          for (const p of batch) p.resolve();
        } catch (err) {
          this.#fh = null; // reopen next time: the file may have been fixed or rotated
          for (const p of batch) p.reject(err as Error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#writing || this.#queue.length > 0) await new Promise((r) => setImmediate(r));
    const fh = this.#fh;
    this.#fh = null;
    if (fh !== null) await (await fh).close();
  }
}
