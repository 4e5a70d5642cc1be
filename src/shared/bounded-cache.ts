/**
 * The one bounded cache: at most `max` entries, least recently used evicted
 * first, each entry valid until its own expiry (epoch ms, exclusive; none by
 * default). Time is the caller's: every read takes `now`, so a cache is as
 * testable as the clock its owner was given. A Map keeps insertion order, so
 * re-inserting on a hit is all the recency bookkeeping there is.
 */
// Values are never undefined, so `undefined` from get() always means "not cached".
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export class BoundedCache<K, V extends {} | null> {
  readonly #max: number;
  readonly #map = new Map<K, { readonly value: V; readonly expiresAt: number }>();

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`cache size must be a positive integer, not ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value while `now` is before its expiry (it becomes the most recently used); an expired entry is dropped. */
  get(key: K, now: number): V | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    this.#map.delete(key);
    if (now >= entry.expiresAt) return undefined;
    this.#map.set(key, entry);
    return entry.value;
  }

  has(key: K, now: number): boolean {
    return this.get(key, now) !== undefined;
  }

  /** Adds or replaces; evicts the least recently used entries beyond the bound. */
  set(key: K, value: V, expiresAt: number = Number.POSITIVE_INFINITY): void {
    this.#map.delete(key);
    this.#map.set(key, { value, expiresAt });
    for (const oldest of this.#map.keys()) {
      if (this.#map.size <= this.#max) break;
      this.#map.delete(oldest);
    }
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }
}
