/**
 * The circuit breaker around the quota store. Its job is to stop paying
 * commandTimeoutMs per request while Redis is really down — not to turn a
 * blip into an outage. So:
 *
 * - It opens on a failure *rate* over a sliding window (`windowMs`), and only
 *   once at least `minimumCalls` calls completed in that window: a handful of
 *   errors at low traffic, or a few timeouts inside a busy second, do not
 *   open it.
 * - Failures of one cause count once. A failure counts only when its call
 *   started after the last counted failure was seen and after the last
 *   success was seen. Calls that were in flight together when a stall began
 *   all time out together; they are one failure, not forty. A call that was
 *   in flight while Redis answered a later call did not fail because Redis is
 *   down (its own process was slow to read the reply, say), so it does not
 *   count at all. A dead Redis fails every new call after the previous
 *   failure was seen, so a real outage still counts one failure per call (per
 *   timeout period for a black hole).
 * - Open, calls fail at once with CircuitOpenError for `openMs`; the quota
 *   stage then takes the plan's store-down path (fail_open, local, or 503).
 * - Half-open, up to `halfOpenProbes` calls at a time go to the store; the
 *   others take the degraded path instead of waiting. The first probe that
 *   succeeds closes the breaker with a fresh window; a failed probe reopens it.
 *
 * A denial (429) is a successful call: only the store failing to decide is a
 * failure.
 */

export interface CircuitBreakerOptions {
  /** Opens when failures / (failures + successes) in the window reaches this (0 < r ≤ 1). */
  readonly failureRate: number;
  /** …and at least this many calls completed in the window (each failure of an episode included). */
  readonly minimumCalls: number;
  readonly windowMs: number;
  readonly openMs: number;
  /** Calls let through at a time while half-open. */
  readonly halfOpenProbes: number;
  readonly now?: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitOpenError extends Error {
  override readonly name = 'CircuitOpenError';
  /** When the breaker lets probes through (epoch ms of its clock). */
  readonly retryAt: number;
  constructor(retryAt: number) {
    super('circuit open: the quota store is skipped while it fails');
    this.retryAt = retryAt;
  }
}

/** The window is kept as this many buckets (the window slides in steps of windowMs / BUCKETS). */
const BUCKETS = 20;

interface Bucket {
  /** Bucket index (floor(time / bucketMs)); a stale bucket is reset before reuse. */
  idx: number;
  calls: number;
  successes: number;
  failures: number;
}

export class CircuitBreaker {
  readonly #rate: number;
  readonly #minimumCalls: number;
  readonly #bucketMs: number;
  readonly #openMs: number;
  readonly #probes: number;
  readonly #now: () => number;
  readonly #buckets: Bucket[];
  #openedAt: number | null = null;
  #probing = 0;
  /** Bumped on every state change: results of calls started under an older generation do not count. */
  #generation = 0;
  #lastFailureSeen = -Infinity;
  #lastSuccessSeen = -Infinity;

  constructor(opts: CircuitBreakerOptions) {
    if (!(opts.failureRate > 0 && opts.failureRate <= 1)) throw new RangeError('failureRate must be in (0, 1]');
    if (!(opts.minimumCalls >= 1)) throw new RangeError('minimumCalls must be ≥ 1');
    if (!(opts.windowMs >= BUCKETS)) throw new RangeError(`windowMs must be ≥ ${BUCKETS}`);
    if (!(opts.openMs >= 0)) throw new RangeError('openMs must be ≥ 0');
    if (!(opts.halfOpenProbes >= 1)) throw new RangeError('halfOpenProbes must be ≥ 1');
    this.#rate = opts.failureRate;
    this.#minimumCalls = opts.minimumCalls;
    this.#bucketMs = opts.windowMs / BUCKETS;
    this.#openMs = opts.openMs;
    this.#probes = opts.halfOpenProbes;
    this.#now = opts.now ?? Date.now;
    this.#buckets = Array.from({ length: BUCKETS }, () => ({ idx: -1, calls: 0, successes: 0, failures: 0 }));
  }

  get state(): CircuitState {
    if (this.#openedAt === null) return 'closed';
    return this.#now() - this.#openedAt < this.#openMs ? 'open' : 'half-open';
  }

  /** True while a call would be refused without trying (open, or half-open with every probe slot taken). */
  isOpen(): boolean {
    const s = this.state;
    return s === 'open' || (s === 'half-open' && this.#probing >= this.#probes);
  }

  /** What the window holds now (failures counted once per episode). */
  window(): { calls: number; successes: number; failures: number } {
    const now = this.#now();
    let calls = 0;
    let successes = 0;
    let failures = 0;
    for (const b of this.#live(now)) {
      calls += b.calls;
      successes += b.successes;
      failures += b.failures;
    }
    return { calls, successes, failures };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const s = this.state;
    if (s === 'open' || (s === 'half-open' && this.#probing >= this.#probes)) {
      throw new CircuitOpenError((this.#openedAt as number) + this.#openMs);
    }
    const probe = s === 'half-open';
    if (probe) this.#probing++;
    const generation = this.#generation;
    const startedAt = this.#now();
    try {
      const v = await fn();
      this.#onSuccess(probe, generation);
      return v;
    } catch (err) {
      this.#onFailure(probe, generation, startedAt);
      throw err;
    } finally {
      if (probe) this.#probing--;
    }
  }

  #onSuccess(probe: boolean, generation: number): void {
    const now = this.#now();
    this.#lastSuccessSeen = now;
    if (probe) {
      if (this.#openedAt !== null && generation === this.#generation) this.#close();
      return;
    }
    // A call started before the breaker opened that succeeds late says little about the store now.
    if (generation !== this.#generation) return;
    const b = this.#bucket(now);
    b.calls++;
    b.successes++;
  }

  #onFailure(probe: boolean, generation: number, startedAt: number): void {
    const now = this.#now();
    if (probe) {
      if (this.#openedAt !== null && generation === this.#generation) this.#open(now);
      return;
    }
    if (generation !== this.#generation) return; // already open (or reopened): late failures change nothing
    const b = this.#bucket(now);
    b.calls++;
    // Same episode (in flight when a failure was seen) or contradicted (in flight while Redis answered): not counted again.
    if (startedAt < this.#lastFailureSeen || startedAt < this.#lastSuccessSeen) return;
    this.#lastFailureSeen = now;
    b.failures++;
    const w = this.window();
    if (w.calls >= this.#minimumCalls && w.failures >= this.#rate * (w.failures + w.successes)) this.#open(now);
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.#generation++;
  }

  #close(): void {
    this.#openedAt = null;
    this.#generation++;
    for (const b of this.#buckets) Object.assign(b, { idx: -1, calls: 0, successes: 0, failures: 0 });
  }

  /** The bucket for `now`, reset when it last held an older time. */
  #bucket(now: number): Bucket {
    const idx = Math.floor(now / this.#bucketMs);
    const b = this.#buckets[idx % BUCKETS] as Bucket;
    if (b.idx !== idx) {
      b.idx = idx;
      b.calls = 0;
      b.successes = 0;
      b.failures = 0;
    }
    return b;
  }

  /** Buckets within the window ending now. */
  #live(now: number): Bucket[] {
    const idx = Math.floor(now / this.#bucketMs);
    return this.#buckets.filter((b) => b.idx > idx - BUCKETS && b.idx <= idx);
  }
}
