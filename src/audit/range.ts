/** The time range of an `audit export`: which records count, by their `startedAt`. */

export interface UsageRange {
  /**
   * `YYYY-MM-DD` (that UTC day is included) or an ISO 8601 timestamp
   * (inclusive).
   */
  readonly from?: string;
  /** `YYYY-MM-DD` (that UTC day is included) or an ISO 8601 timestamp (exclusive). */
  readonly to?: string;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** Parses a range bound; throws on nonsense. Returns epoch ms bounds [from, to). */
export function parseRange(range: UsageRange): { from: number; to: number } {
  const parse = (s: string, what: string, end: boolean): number => {
    const ms = Date.parse(DATE_ONLY.test(s) ? `${s}T00:00:00.000Z` : s);
    if (!Number.isFinite(ms)) throw new Error(`${what}: not a date (YYYY-MM-DD) or ISO 8601 timestamp: ${s}`);
    return end && DATE_ONLY.test(s) ? ms + DAY_MS : ms;
  };
  return {
    from: range.from === undefined ? Number.NEGATIVE_INFINITY : parse(range.from, '--from', false),
    to: range.to === undefined ? Number.POSITIVE_INFINITY : parse(range.to, '--to', true),
  };
}
