/** OpenAI-style rate-limit headers from a decision's limit states. */
import type { LimitState } from '../../stores/quota/port.ts';
import { formatMicros } from '../../shared/decimal.ts';

/** Durations as OpenAI writes them: `20ms`, `1s`, `6m0s`, `1h2m3s`. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

/** The tightest state of one family (fewest remaining, then soonest reset). */
function tightest(states: readonly LimitState[], prefix: string): LimitState | null {
  let best: LimitState | null = null;
  for (const s of states) {
    if (!s.name.startsWith(prefix)) continue;
    if (best === null || s.remaining < best.remaining || (s.remaining === best.remaining && s.resetMs > best.resetMs)) best = s;
  }
  return best;
}

export function rateLimitHeaders(states: readonly LimitState[], currency = 'USD'): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const r = tightest(states, 'requests:');
  if (r !== null) {
    out.push(
      ['x-ratelimit-limit-requests', String(r.limit)],
      ['x-ratelimit-remaining-requests', String(Math.max(0, r.remaining))],
      ['x-ratelimit-reset-requests', formatReset(r.resetMs)],
    );
  }
  const t = tightest(states, 'tokens:');
  if (t !== null) {
    out.push(
      ['x-ratelimit-limit-tokens', String(t.limit)],
      ['x-ratelimit-remaining-tokens', String(Math.max(0, t.remaining))],
      ['x-ratelimit-reset-tokens', formatReset(t.resetMs)],
    );
  }
  // Spend budgets (micro units in the store) as decimal amounts of the plan's currency.
  const b = tightest(states, 'budget:');
  if (b !== null) {
    out.push(
      ['x-ratelimit-limit-budget', formatMicros(b.limit)],
      ['x-ratelimit-remaining-budget', formatMicros(Math.max(0, b.remaining))],
      ['x-ratelimit-reset-budget', formatReset(b.resetMs)],
      ['x-ratelimit-budget-currency', currency],
    );
  }
  return out;
}
