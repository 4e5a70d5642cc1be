/**
 * What a request cost, exactly. Prices come from the routing snapshot as
 * decimal strings with at most 6 decimals per million tokens, so the price of
 * one token is a whole number of 10⁻¹² currency units ("pico units"), and a
 * request's cost is an integer in those units: sums over millions of requests
 * never drift, unlike sums of floats. Amounts leave the gateway as decimal
 * strings (audit record, export); only the Prometheus counter is a float.
 */
import type { Usage } from './usage.ts';

/** Decimal places of an amount in pico units. */
export const COST_DECIMALS = 12;
const SCALE = 10n ** 12n;

/** A deployment's prices, in integer units the arithmetic below uses. */
export interface Price {
  /** ISO 4217 code. */
  readonly currency: string;
  /** Per million prompt tokens not read from a cache, in micro units (10⁻⁶) of the currency. */
  readonly inputMicrosPerMillion: bigint;
  /** Per million prompt tokens read from the provider's prompt cache, in micro units. */
  readonly cachedInputMicrosPerMillion: bigint;
  /** Per million completion tokens, in micro units. */
  readonly outputMicrosPerMillion: bigint;
  /** A flat fee per request, in micro units. */
  readonly perRequestMicros: bigint;
}

/** What the audit record says a request cost. */
export interface Cost {
  /** Decimal string, e.g. "0.000123"; never in exponent form. */
  readonly amount: string;
  readonly currency: string;
  /** True when the usage it was computed from was estimated, not counted by the model server. */
  readonly estimated: boolean;
}

export { parseMicros } from '../shared/decimal.ts';

/** An amount in pico units as a decimal string without trailing zeros ("0.0000125", "3", "-1.5"). */
export function formatUnits(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / SCALE;
  const frac = (abs % SCALE).toString().padStart(COST_DECIMALS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac === '' ? '' : `.${frac}`}`;
}

/** A decimal string of at most 12 decimals in pico units; null when it is not one. */
export function parseUnits(text: string): bigint | null {
  const m = /^(-?)(\d{1,30})(?:\.(\d{1,12}))?$/.exec(text);
  if (m === null) return null;
  const [, sign, whole, frac = ''] = m;
  const units = BigInt(whole as string) * SCALE + BigInt(frac.padEnd(COST_DECIMALS, '0'));
  return sign === '-' ? -units : units;
}

/**
 * The cost of one request in pico units. Prompt tokens read from a cache are
 * priced as cached input (never more of them than prompt tokens); the rest of
 * the prompt, cache writes included, as input.
 */
export function costUnits(price: Price, usage: Pick<Usage, 'promptTokens' | 'completionTokens' | 'cachedPromptTokens'>): bigint {
  const cached = BigInt(Math.min(usage.cachedPromptTokens, usage.promptTokens));
  const uncached = BigInt(usage.promptTokens) - cached;
  return (
    uncached * price.inputMicrosPerMillion +
    cached * price.cachedInputMicrosPerMillion +
    BigInt(usage.completionTokens) * price.outputMicrosPerMillion +
    price.perRequestMicros * 1_000_000n
  );
}

/** The most a request can cost before it runs: every prompt token uncached, the whole completion allowance used. */
export function maxCostUnits(price: Price, promptTokens: number, completionAllowance: number): bigint {
  return BigInt(promptTokens) * price.inputMicrosPerMillion + BigInt(completionAllowance) * price.outputMicrosPerMillion + price.perRequestMicros * 1_000_000n;
}

/** Pico units as micro units, rounded up (budgets count in micro units: a request is never charged less than it cost). */
export function unitsToMicrosCeil(units: bigint): bigint {
  return units <= 0n ? 0n : (units + 999_999n) / 1_000_000n;
}

/** The audit record's cost of a request, or null when its deployment has no price. */
export function requestCost(price: Price | null, usage: Usage | null): Cost | null {
  if (price === null || usage === null) return null;
  return { amount: formatUnits(costUnits(price, usage)), currency: price.currency, estimated: usage.source === 'estimated' };
}
