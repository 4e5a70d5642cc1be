/**
 * A tiny seeded PRNG (Marsaglia's xorshift32) for the classifier's randomised
 * tests: deterministic, so a failure reproduces from the seed printed with it,
 * and no dependency.
 */
export class Prng {
  #x: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#x = this.seed === 0 ? 0x9e3779b9 : this.seed; // xorshift never leaves 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x >>> 0;
    return this.#x / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(xs.length)] as T;
  }
}
