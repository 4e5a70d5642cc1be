/** The values, encodings and near misses of the evasion corpus (./evasion.test.ts, test/e2e/evasion.test.ts). */

export interface Sample {
  readonly name: string;
  /** As a person would write it. */
  readonly value: string;
  /** Its significant characters, in order: if these show up in what went on, the value leaked. */
  readonly core: string;
  readonly expect: 'redacted' | 'refused';
  /** Digit groups (cards): the encodings that change separators use them. */
  readonly groups?: readonly string[];
}

/** Redacted by the corpus policy (PCI, PII). */
export const SENSITIVE: readonly Sample[] = [
  { name: 'visa card', value: '4111 1111 1111 1111', core: '4111111111111111', expect: 'redacted', groups: ['4111', '1111', '1111', '1111'] },
  { name: 'mastercard', value: '5555-5555-5555-4444', core: '5555555555554444', expect: 'redacted', groups: ['5555', '5555', '5555', '4444'] },
  { name: 'amex', value: '3782 822463 10005', core: '378282246310005', expect: 'redacted', groups: ['3782', '822463', '10005'] },
  { name: 'email', value: 'jane.doe@example.com', core: 'jane.doe@example.com', expect: 'redacted' },
  { name: 'us ssn', value: '123-45-6789', core: '123456789', expect: 'redacted', groups: ['123', '45', '6789'] },
];

/** Refused by the corpus policy (SECRET). */
export const SECRETS: readonly Sample[] = [
  { name: 'aws access key', value: 'AKIAIOSFODNN7EXAMPLE', core: 'AKIAIOSFODNN7EXAMPLE', expect: 'refused' },
  { name: 'github token', value: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', core: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', expect: 'refused' },
  {
    name: 'anthropic key',
    value: 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrSt-AbCdEf',
    core: 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrSt-AbCdEf',
    expect: 'refused',
  },
];

export interface Encoding {
  readonly name: string;
  /** The sample written this way, or null when the encoding does not apply to it. */
  readonly apply: (s: Sample) => string | null;
}

const mapDigits = (s: string, zero: number): string => s.replace(/[0-9]/g, (d) => String.fromCodePoint(zero + Number(d)));
const between = (s: string, sep: string): string => [...s].join(sep);
const hasDigits = (s: Sample): boolean => /[0-9]/.test(s.value);
const grouped = (sep: string) => (s: Sample) => (s.groups === undefined ? null : s.groups.join(sep));

export const ENCODINGS: readonly Encoding[] = [
  { name: 'full-width', apply: (s) => s.value.replace(/[!-~]/g, (c) => String.fromCodePoint((c.codePointAt(0) ?? 0) + 0xfee0)) },
  { name: 'arabic-indic digits', apply: (s) => (hasDigits(s) ? mapDigits(s.value, 0x0660) : null) },
  { name: 'devanagari digits', apply: (s) => (hasDigits(s) ? mapDigits(s.value, 0x0966) : null) },
  { name: 'mathematical bold digits', apply: (s) => (hasDigits(s) ? mapDigits(s.value, 0x1d7ce) : null) },
  { name: 'full-width digits', apply: (s) => (hasDigits(s) ? mapDigits(s.value, 0xff10) : null) },
  { name: 'zero-width spaces inside', apply: (s) => between(s.value, '\u200b') },
  { name: 'zero-width joiners inside', apply: (s) => between(s.value, '\u200d') },
  { name: 'word joiners inside', apply: (s) => between(s.value, '\u2060') },
  { name: 'soft hyphens inside', apply: (s) => between(s.value, '\u00ad') },
  { name: 'left-to-right marks inside', apply: (s) => between(s.value, '\u200e') },
  { name: 'no-break spaces between groups', apply: grouped('\u00a0') },
  { name: 'thin spaces between groups', apply: grouped('\u2009') },
  { name: 'ideographic spaces between groups', apply: grouped('\u3000') },
  { name: 'newlines between groups', apply: grouped('\n') },
  { name: 'double spaces between groups', apply: grouped('  ') },
  { name: 'dots between groups', apply: (s) => (s.name === 'us ssn' ? null : grouped('.')(s)) },
  { name: 'slashes between groups', apply: (s) => (s.name === 'us ssn' ? null : grouped('/')(s)) },
];

/** Luhn-invalid: the same digits with the check digit off by one. */
function notLuhn(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  if (sum % 10 !== 0) return digits;
  const last = Number(digits.at(-1));
  return digits.slice(0, -1) + String((last + 1) % 10);
}

/** Must pass the card and secret detectors untouched. */
export const NEAR_MISSES: readonly string[] = [
  `order ${notLuhn('4111111111111111')}`,
  `order no. ${notLuhn('4111111111111111').replace(/(\d{4})(?=\d)/g, '$1-')}`,
  `random ${notLuhn('8349205716349021')}`,
  '2026-12-05T05:11:50.123Z',
  'epoch ms 1733376710123',
  'ISBN 978-3-16-148410-0',
  'ISBN-13 9780306406157',
  'call +1 415 555 0100',
  'version 10.4.1.2024',
  'invoice INV-2026-000123',
  'AKIA is a prefix alone',
  'sk-learn is a library',
];

/** Whether the value is still recognisable in what went on: its significant characters in order, with every encoding folded back. */
export function leaks(out: string, sample: Sample): boolean {
  const folded = out
    .normalize('NFKC')
    .replace(/\p{Nd}/gu, (d) => String(digitValue(d)))
    .replace(/[^A-Za-z0-9@._-]/g, '');
  return folded.includes(sample.core);
}

/** A Unicode decimal digit's value: digits come in runs of ten starting at zero. */
function digitValue(d: string): number {
  const cp = d.codePointAt(0) ?? 0x30;
  let start = cp;
  while (/\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}
