/**
 * One timer for many calls that share a bound (e.g. every quota call to Redis
 * gets `commandTimeoutMs`), instead of a timer pair per call: at thousands of
 * calls a second the per-call timers were a measurable share of the sidecar's
 * CPU (see docs/benchmarks.md, issue #15).
 *
 * The bound is on the remote side, not on this process: a call's clock starts
 * at the first check phase (setImmediate) after it was made, i.e. once the
 * turn of the event loop that issued it — and wrote it — is over, so a burst
 * that keeps this process busy does not eat the remote's time. And when the
 * timer fires, the overdue calls are failed from a setImmediate: timers run
 * before I/O in a turn of the loop, so a reply already waiting in a socket is
 * read first and wins.
 *
 * All calls share one duration, so deadlines are ordered like the calls: a
 * FIFO queue whose head is always the next to expire. A call that finished is
 * only marked; it leaves the queue when its deadline passes.
 */
export interface Deadline {
  /** The call finished (either way): its deadline no longer applies. */
  done(): void;
}

interface Entry extends Deadline {
  at: number;
  live: boolean;
  readonly expire: () => void;
}

export class CallDeadlines {
  readonly #ms: number;
  readonly #now: () => number;
  /** Made during the current turn: armed at the next check phase. */
  #fresh: Entry[] = [];
  #arming: NodeJS.Immediate | null = null;
  /** Armed, in deadline order. */
  #queue: Entry[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(ms: number, now: () => number = () => performance.now()) {
    this.#ms = ms;
    this.#now = now;
  }

  /** Starts bounding a call; `expire` runs (once) if it has not finished `ms` after its clock started. */
  track(expire: () => void): Deadline {
    const entry: Entry = {
      at: 0,
      live: true,
      expire,
      done() {
        entry.live = false;
      },
    };
    this.#fresh.push(entry);
    if (this.#arming === null) this.#arming = setImmediate(() => this.#arm());
    return entry;
  }

  /** Pending calls (finished ones whose deadline has not passed yet included); for tests. */
  get size(): number {
    return this.#queue.length - this.#head + this.#fresh.length;
  }

  #arm(): void {
    this.#arming = null;
    const at = this.#now() + this.#ms;
    for (const e of this.#fresh) {
      if (!e.live) continue;
      e.at = at;
      this.#queue.push(e);
    }
    this.#fresh = [];
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    const head = this.#nextLive();
    if (head === null) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        setImmediate(() => this.#sweep());
      },
      Math.max(1, Math.ceil(head.at - this.#now())),
    );
  }

  #sweep(): void {
    const now = this.#now();
    for (let e = this.#nextLive(); e !== null && e.at <= now; e = this.#nextLive()) {
      this.#head++;
      e.live = false;
      e.expire();
    }
    // Under steady load the queue never empties: drop the consumed front now and then.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#schedule();
  }

  /** The first armed call still running; finished ones at the head are dropped. */
  #nextLive(): Entry | null {
    while (this.#head < this.#queue.length) {
      const e = this.#queue[this.#head] as Entry;
      if (e.live) return e;
      this.#head++;
    }
    // Everything consumed: start over instead of growing forever.
    this.#queue = [];
    this.#head = 0;
    return null;
  }
}
