/**
 * What every `audit export` report shares: audit lines (JSON text) folded one
 * by one into rows. Checkpoints are passed over; a line that is not JSON or
 * not a request record is counted as skipped (`audit verify` says why); a
 * record started outside the range is counted as outside; each remaining
 * record goes to the report's own fold. Export does not verify the chain.
 */
import { parseRange, type UsageRange } from './range.ts';

export const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const obj = (v: unknown): Record<string, unknown> | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/** Orders row keys: null first, then by code units. */
export function compareKeys(a: string | null, b: string | null): number {
  return a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1;
}

export interface FoldCounts {
  /** Records folded into rows. */
  readonly records: number;
  /** Records started outside the range. */
  readonly outside: number;
  /** Lines that are not JSON or not records. */
  readonly skipped: number;
}

export abstract class RecordFold {
  readonly #from: number;
  readonly #to: number;
  #records = 0;
  #outside = 0;
  #skipped = 0;

  constructor(range: UsageRange = {}) {
    const r = parseRange(range);
    this.#from = r.from;
    this.#to = r.to;
  }

  /** Folds one request record in (started at `started`, epoch ms, within the range); false when it does not count. */
  protected abstract fold(rec: Record<string, unknown>, started: number): boolean;

  /** A parsed line; checkpoints are ignored, anything else that is not a request record is skipped. */
  add(value: unknown): void {
    const rec = obj(value);
    if (rec === null) {
      this.#skipped++;
      return;
    }
    if (rec.type === 'checkpoint') return;
    const startedAt = str(rec.startedAt);
    const started = startedAt === null ? Number.NaN : Date.parse(startedAt);
    if ((rec.type !== 'request' && rec.type !== undefined) || typeof rec.requestId !== 'string' || !Number.isFinite(started)) {
      this.#skipped++;
      return;
    }
    if (started < this.#from || started >= this.#to) {
      this.#outside++;
      return;
    }
    if (this.fold(rec, started)) this.#records++;
  }

  /** A line of text (as read from a source). */
  addLine(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.#skipped++;
      return;
    }
    this.add(value);
  }

  protected get counts(): FoldCounts {
    return { records: this.#records, outside: this.#outside, skipped: this.#skipped };
  }
}
