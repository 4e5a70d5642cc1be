/** Latency samples and their summaries. */

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** A growable list of float samples (milliseconds). */
export class Samples {
  #data = new Float64Array(4096);
  #n = 0;

  add(v: number): void {
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = v;
  }

  get count(): number {
    return this.#n;
  }

  summary(): Summary {
    return summarize(this.#data.subarray(0, this.#n));
  }
}

/** Nearest-rank percentile of sorted data (p in 0..1). */
function rank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

export function summarize(values: Float64Array): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  return {
    count: n,
    mean: n === 0 ? Number.NaN : sum / n,
    p50: rank(sorted, 0.5),
    p90: rank(sorted, 0.9),
    p99: rank(sorted, 0.99),
    p999: rank(sorted, 0.999),
    max: n === 0 ? Number.NaN : (sorted[n - 1] ?? Number.NaN),
  };
}
