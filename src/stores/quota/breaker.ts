/**
 * A small circuit breaker for the quota store: after `failureThreshold`
 * consecutive failures it opens, and for `openMs` every call fails at once
 * with CircuitOpenError (the quota stage then applies its failure policy
 * without waiting on a sick Redis). After that one call is let through as a
 * probe (half-open; concurrent calls still fail fast): success closes the
 * breaker, failure opens it for another `openMs`.
 */

export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly openMs: number;
  readonly now?: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitOpenError extends Error {
  override readonly name = 'CircuitOpenError';
  /** When the breaker lets a probe through (epoch ms of its clock). */
  readonly retryAt: number;
  constructor(retryAt: number) {
    super('circuit open: the quota store is skipped after repeated failures');
    this.retryAt = retryAt;
  }
}

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openedAt: number | null = null;
  #probing = false;

  constructor(opts: CircuitBreakerOptions) {
    if (!(opts.failureThreshold >= 1)) throw new RangeError('failureThreshold must be ≥ 1');
    if (!(opts.openMs >= 0)) throw new RangeError('openMs must be ≥ 0');
    this.#threshold = opts.failureThreshold;
    this.#openMs = opts.openMs;
    this.#now = opts.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.#openedAt === null) return 'closed';
    return this.#now() - this.#openedAt < this.#openMs ? 'open' : 'half-open';
  }

  /** True while calls are refused without trying (open, or half-open with the probe in flight). */
  isOpen(): boolean {
    const s = this.state;
    return s === 'open' || (s === 'half-open' && this.#probing);
  }

  /** Consecutive failures counted so far (reset by a success). */
  get failures(): number {
    return this.#failures;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const s = this.state;
    let probe = false;
    if (s === 'open' || (s === 'half-open' && this.#probing)) {
      throw new CircuitOpenError((this.#openedAt as number) + this.#openMs);
    }
    if (s === 'half-open') {
      this.#probing = true;
      probe = true;
    }
    try {
      const v = await fn();
      this.#onSuccess(probe);
      return v;
    } catch (err) {
      this.#onFailure(probe);
      throw err;
    }
  }

  #onSuccess(probe: boolean): void {
    if (probe) this.#probing = false;
    // A call started while closed that succeeds late must not close a breaker opened meanwhile.
    if (this.#openedAt !== null && !probe) return;
    this.#failures = 0;
    this.#openedAt = null;
  }

  #onFailure(probe: boolean): void {
    if (probe) {
      this.#probing = false;
      this.#openedAt = this.#now();
      this.#failures++;
      return;
    }
    if (this.#openedAt !== null) return; // already open: late failures change nothing
    this.#failures++;
    if (this.#failures >= this.#threshold) this.#openedAt = this.#now();
  }
}
