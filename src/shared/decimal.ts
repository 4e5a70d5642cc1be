/**
 * Decimal amounts as configuration writes them (prices, budgets): at most 6
 * decimals, read into whole micro units so no float ever holds money.
 */

const DECIMAL = /^(\d{1,12})(?:\.(\d{1,6}))?$/;

/** "2.5" → 2 500 000 micro units; null when not a plain non-negative decimal with at most 6 decimals. */
export function parseMicros(text: string): bigint | null {
  const m = DECIMAL.exec(text);
  if (m === null) return null;
  const [, whole, frac = ''] = m;
  return BigInt(whole as string) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
}

/** Micro units as a decimal string without trailing zeros ("2.5", "0.000001", "3"). */
export function formatMicros(micros: bigint | number): string {
  const v = BigInt(micros);
  const negative = v < 0n;
  const abs = negative ? -v : v;
  const frac = (abs % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / 1_000_000n}${frac === '' ? '' : `.${frac}`}`;
}
