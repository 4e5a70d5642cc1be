/**
 * Append-only JSON Lines audit file with group commit: records handed in
 * while a write is in flight are written together by the next single write,
 * so concurrent requests share it. `append()` resolves only once its batch is
 * committed as `durability` says:
 *   - `fsync`: written and fdatasync'd — on disk, survives a machine crash or
 *     power loss (on a disk that honours flushes);
 *   - `write`: written to the kernel (page cache) — survives the process
 *     dying (SIGKILL, OOM kill), not a kernel crash or power loss. A
 *     background fdatasync every `syncIntervalMs` (off the request path)
 *     bounds what a machine crash can lose to about that long.
 * A failed write (disk full, file gone) rejects every record of that batch
 * and the requests that own them fail closed.
 *
 * Rotation: when the file reaches `maxBytes` it is renamed to
 * `<name>-<UTC timestamp>.jsonl` and a new file is started (the chain simply
 * continues); the old file is fdatasync'd first in either mode. Recovery: a
 * last line without its newline is a write torn by a crash — never
 * acknowledged — and is cut off when the file is opened again.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync, ftruncateSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Logger } from 'pino';
import { GroupCommit } from './group-commit.ts';

import type { AuditLineSink } from './port.ts';

export type { AuditLineSink };

export type FileDurability = 'fsync' | 'write';

export interface FileSinkOptions {
  /** Default `fsync`. */
  readonly durability?: FileDurability;
  /** durability `write`: background fdatasync period in ms; 0 = never (default 1000). */
  readonly syncIntervalMs?: number;
  readonly maxBytes?: number;
  readonly log?: Logger;
  readonly now?: () => number;
}

export class JsonlFileSink implements AuditLineSink {
  readonly #path: string;
  readonly #fsync: boolean;
  readonly #syncTimer: NodeJS.Timeout | null = null;
  /** Bytes handed to the kernel in the current file, and how many of them are known to be on disk. */
  #written = 0;
  #synced = 0;
  readonly #maxBytes: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  #fh: Promise<FileHandle> | null = null;
  #size = 0;
  readonly #commits = new GroupCommit<readonly string[]>((batches) => this.#write(batches.flat()));
  #closed = false;

  constructor(path: string, opts: FileSinkOptions = {}) {
    this.#path = path;
    this.#fsync = (opts.durability ?? 'fsync') === 'fsync';
    const every = opts.syncIntervalMs ?? 1000;
    if (!this.#fsync && every > 0) {
      this.#syncTimer = setInterval(() => void this.#backgroundSync(), every);
      this.#syncTimer.unref();
    }
    this.#maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    mkdirSync(dirname(path), { recursive: true });
    this.#repairTornTail();
  }

  append(lines: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit sink is closed'));
    return this.#commits.add(lines);
  }

  /** One batch: one write and (durability fsync) one fdatasync. */
  async #write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const text = `${lines.join('\n')}\n`;
    let fh: FileHandle | null = null;
    let before = 0;
    try {
      if (this.#size >= this.#maxBytes) await this.#rotate();
      fh = await this.#handle();
      before = this.#size;
      // On the event loop, not the thread pool: a write to the page cache takes microseconds, and the hand-off to a
      // pool thread and back cost more than that in wake-ups at a steady request rate (issue #15). Only the
      // fdatasync, which waits for the disk, goes to the pool. The write waits for the check phase of this turn of
      // the loop, as the pool's answer did: whatever else this turn hands in joins the next batch, and a caller
      // that appends in a loop without I/O (no request does) cannot starve the event loop.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const data = Buffer.from(text, 'utf8');
      writeAllSync(fh.fd, data);
      const bytes = data.length;
      this.#written += bytes;
      if (this.#fsync) {
        await fh.datasync();
        this.#synced = this.#written;
      }
      this.#size += bytes;
    } catch (err) {
      // A partly written batch (disk full mid-write) is cut off again so the next line starts clean.
      if (fh !== null) await fh.truncate(before).catch(() => undefined);
      // Reopen next time: the file may have been fixed, rotated away or the disk freed.
      const open = this.#fh;
      this.#fh = null;
      if (open !== null)
        open
          .then(
            (h) => h.close(),
            () => undefined,
          )
          .catch(() => undefined);
      throw err;
    }
  }

  /**
   * durability `write`: fdatasync what was written since the last sync, beside
   * the group commit (a request never waits for it). Node defers closing a
   * handle (rotation, close) until this finishes; a failure is retried next tick.
   */
  async #backgroundSync(): Promise<void> {
    const open = this.#fh;
    if (open === null || this.#written === this.#synced) return;
    const target = this.#written;
    try {
      await (await open).datasync();
      if (this.#fh === open && this.#synced < target) this.#synced = target;
    } catch (err) {
      this.#log?.warn({ file: this.#path, err: err instanceof Error ? err.message : String(err) }, 'background fdatasync of the audit file failed');
    }
  }

  #handle(): Promise<FileHandle> {
    this.#fh ??= (async () => {
      const fh = await open(this.#path, 'a', 0o600);
      this.#size = (await fh.stat()).size;
      this.#written = 0;
      this.#synced = 0;
      return fh;
    })();
    return this.#fh;
  }

  async #rotate(): Promise<void> {
    const fh = this.#fh;
    this.#fh = null;
    if (fh !== null) {
      const h = await fh;
      // The rotated file is complete on disk before it is renamed away, in either mode.
      if (!this.#fsync && this.#written > this.#synced) await h.datasync();
      await h.close();
    }
    const stamp = new Date(this.#now()).toISOString().replace(/[:.]/g, '-');
    const ext = extname(this.#path);
    const target = join(dirname(this.#path), `${basename(this.#path, ext)}-${stamp}${ext}`);
    await rename(this.#path, target);
    this.#log?.info({ rotatedTo: target }, 'audit file rotated');
    this.#size = 0;
  }

  /** Cuts a partial last line (a write torn by a crash, never acknowledged). */
  #repairTornTail(): void {
    if (!existsSync(this.#path)) return;
    const st = statSync(this.#path);
    if (!st.isFile() || st.size === 0) return;
    const fd = openSync(this.#path, 'r+');
    try {
      const chunk = Buffer.alloc(Math.min(st.size, 1 << 20));
      readSync(fd, chunk, 0, chunk.length, st.size - chunk.length);
      if (chunk[chunk.length - 1] === 0x0a) return;
      const lastNl = chunk.lastIndexOf(0x0a);
      const keep = lastNl === -1 ? st.size - chunk.length : st.size - chunk.length + lastNl + 1;
      ftruncateSync(fd, keep);
      this.#log?.warn({ file: this.#path, removedBytes: st.size - keep }, 'audit file ended in a torn write (crash); cut it off');
    } finally {
      closeSync(fd);
    }
  }

  async close(): Promise<void> {
    await this.#commits.drained();
    this.#closed = true;
    if (this.#syncTimer !== null) clearInterval(this.#syncTimer);
    const fh = this.#fh;
    this.#fh = null;
    if (fh === null) return;
    const h = await fh.catch(() => null);
    if (h === null) return;
    // A clean shutdown leaves the file on disk whatever the mode.
    if (this.#written > this.#synced) await h.datasync().catch(() => undefined);
    await h.close().catch(() => undefined);
  }
}

/** write(2) until every byte is in (a regular file takes all at once unless the disk is full, which throws). */
function writeAllSync(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
}
