/**
 * Group commit: items handed in while a batch is being written wait and are
 * written together by the next call of `commit`, so concurrent requests share
 * one write (and one fsync, one Redis round trip). Each `add()` settles with
 * its batch: resolved once the batch is committed, rejected with the batch's
 * error. Batches never overlap and keep the order items were added in.
 */
interface Waiting<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class GroupCommit<T> {
  readonly #commit: (batch: readonly T[]) => Promise<void>;
  #queue: Array<Waiting<T>> = [];
  #writing = false;
  #idle: Array<() => void> = [];

  constructor(commit: (batch: readonly T[]) => Promise<void>) {
    this.#commit = commit;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  /** Resolves once nothing is queued or being written. */
  drained(): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          await this.#commit(batch.map((w) => w.item));
          for (const w of batch) w.resolve();
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      this.#writing = false;
      for (const r of this.#idle.splice(0)) r();
    }
  }
}
