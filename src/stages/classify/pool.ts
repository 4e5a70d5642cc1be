/**
 * Classification off the event loop: large bodies are scanned on worker
 * threads, so one big (or adversarial) prompt cannot stall the small
 * requests the same sidecar serves meanwhile (issue #13 item 6). Jobs go to
 * the least busy worker; a worker that dies takes its jobs with it (the
 * request is refused, never passed unscanned) and the next job starts a new one.
 *
 * Workers start on first use and stop after `idleMs` without a job: each one
 * is a V8 isolate of its own (~25 MB resident, measured with
 * `npm run bench -- --quick`'s idle RSS), which a sidecar that never sees a
 * large prompt should not carry. The first large prompt after a quiet spell
 * pays the worker's start (tens of ms).
 */
import { Worker } from 'node:worker_threads';
import type { ClassifierConfig, Finding } from './classifier.ts';
import type { ScanDone, ScanJob } from './scan-worker.ts';

interface Pending {
  readonly resolve: (f: Finding[][]) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  worker: Worker | null;
  readonly pending: Map<number, Pending>;
  idle: NodeJS.Timeout | null;
}

/** How long a worker without jobs is kept before it is stopped. */
const DEFAULT_IDLE_MS = 60_000;

export class ScanPool {
  readonly #config: ClassifierConfig;
  readonly #slots: Slot[] = [];
  readonly #idleMs: number;
  #next = 0;
  #closed = false;

  constructor(config: ClassifierConfig, size: number, opts: { readonly idleMs?: number } = {}) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`scan pool size must be a positive integer, not ${size}`);
    this.#config = config;
    this.#idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    for (let i = 0; i < size; i++) this.#slots.push({ worker: null, pending: new Map(), idle: null });
  }

  /** Workers running now (for tests and metrics). */
  get running(): number {
    return this.#slots.filter((s) => s.worker !== null).length;
  }

  /** Findings per text, as Classifier.scan would give them. */
  scan(texts: readonly string[]): Promise<Finding[][]> {
    if (this.#closed) return Promise.reject(new Error('scan pool is closed'));
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const worker = slot.worker ?? this.#start(slot);
    if (slot.idle !== null) {
      clearTimeout(slot.idle);
      slot.idle = null;
    }
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // Busy workers keep the process alive until they answer; idle ones do not.
      worker.ref();
      const job: ScanJob = { id, texts };
      worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#slots.map((s) => {
        if (s.idle !== null) clearTimeout(s.idle);
        return s.worker === null ? Promise.resolve(0) : s.worker.terminate();
      }),
    );
  }

  #start(slot: Slot): Worker {
    const worker = new Worker(new URL('./scan-worker.ts', import.meta.url), { workerData: this.#config });
    worker.unref();
    worker.on('message', (done: ScanDone) => {
      const p = slot.pending.get(done.id);
      if (p === undefined) return;
      slot.pending.delete(done.id);
      if (slot.pending.size === 0) {
        worker.unref();
        slot.idle = setTimeout(() => {
          slot.idle = null;
          if (slot.worker === worker && slot.pending.size === 0) {
            slot.worker = null;
            void worker.terminate();
          }
        }, this.#idleMs);
        slot.idle.unref();
      }
      if (done.findings !== undefined) p.resolve(done.findings);
      else p.reject(new Error(`classification failed: ${done.error ?? 'unknown error'}`));
    });
    // An uncaught error ends the worker: 'exit' follows, which fails its jobs; the next job starts a new one.
    worker.on('error', () => undefined);
    worker.on('exit', (code) => {
      if (slot.worker === worker) slot.worker = null;
      const err = new Error(`classification worker exited with ${code}`);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    });
    slot.worker = worker;
    return worker;
  }
}
