/**
 * A histogram for the hot path, exposed through the same prom-client
 * registry: `series(value)` binds one label value once, and each observation
 * is then a bucket search and three additions. prom-client's own Histogram
 * validates and hashes its labels on every observe(), children included; at
 * four ext_proc messages per request that was a measurable share of the
 * sidecar's CPU (issue #15). The exposition is the standard one: cumulative
 * `_bucket{le=…}` series, `+Inf`, `_sum` and `_count`.
 */
import type { Metric, Registry } from 'prom-client';

export interface Series {
  observe(value: number): void;
}

/** One exposed sample, as prom-client's registry formats it (its typings declare `type` as a numeric enum; at run time it is the exposition string). */
interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName: string;
}

interface SeriesState {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class FastHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #label: L | null;
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, SeriesState>();

  constructor(opts: {
    readonly name: string;
    readonly help: string;
    readonly labelName?: L;
    readonly buckets: readonly number[];
    readonly registers: readonly Registry[];
  }) {
    this.name = opts.name;
    this.help = opts.help;
    this.#label = opts.labelName ?? null;
    this.#bounds = [...opts.buckets].sort((a, b) => a - b);
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
    // An unlabelled histogram shows its (zero) series from the start, as prom-client's does.
    if (this.#label === null) this.series();
  }

  /** The series for one label value (the only series of an unlabelled histogram: any value). */
  series(labelValue = ''): Series {
    let s = this.#series.get(labelValue);
    if (s === undefined) this.#series.set(labelValue, (s = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    const state = s;
    const bounds = this.#bounds;
    return {
      observe(value: number): void {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > (bounds[i] as number)) i++;
        (state.counts[i] as number) += 1;
        state.sum += value;
        state.count += 1;
      },
    };
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [labelValue, s] of this.#series) {
      const base: Record<string, string> = this.#label === null ? {} : { [this.#label]: labelValue };
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += s.counts[i] as number;
        values.push({ labels: { le: bound, ...base }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...base }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: base, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: base, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      values,
    });
  }

  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
