/**
 * Classification off the event loop: large bodies are scanned on worker
 * threads, so one big (or adversarial) prompt cannot stall the small
 * requests the same sidecar serves meanwhile (issue #13 item 6). Jobs go to
 * the least busy worker; a worker that dies is replaced and its jobs fail
 * (the request is refused, never passed unscanned).
 */
import { Worker } from 'node:worker_threads';
import type { ClassifierConfig, Finding } from './classifier.ts';
import type { ScanDone, ScanJob } from './scan-worker.ts';

interface Pending {
  readonly resolve: (f: Finding[][]) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  readonly pending: Map<number, Pending>;
}

export class ScanPool {
  readonly #config: ClassifierConfig;
  readonly #slots: Slot[] = [];
  #next = 0;
  #closed = false;

  constructor(config: ClassifierConfig, size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`scan pool size must be a positive integer, not ${size}`);
    this.#config = config;
    for (let i = 0; i < size; i++) this.#slots.push(this.#start({ pending: new Map() } as Slot));
  }

  /** Findings per text, as Classifier.scan would give them. */
  scan(texts: readonly string[]): Promise<Finding[][]> {
    if (this.#closed) return Promise.reject(new Error('scan pool is closed'));
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // Busy workers keep the process alive until they answer; idle ones do not.
      slot.worker.ref();
      const job: ScanJob = { id, texts };
      slot.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  #start(slot: Slot): Slot {
    const worker = new Worker(new URL('./scan-worker.ts', import.meta.url), { workerData: this.#config });
    worker.unref();
    worker.on('message', (done: ScanDone) => {
      const p = slot.pending.get(done.id);
      if (p === undefined) return;
      slot.pending.delete(done.id);
      if (slot.pending.size === 0) worker.unref();
      if (done.findings !== undefined) p.resolve(done.findings);
      else p.reject(new Error(`classification failed: ${done.error ?? 'unknown error'}`));
    });
    // An uncaught error ends the worker: 'exit' follows, which fails its jobs and starts a new one.
    worker.on('error', () => undefined);
    worker.on('exit', (code) => {
      const err = new Error(`classification worker exited with ${code}`);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
      if (!this.#closed) this.#start(slot);
    });
    slot.worker = worker;
    return slot;
  }
}
