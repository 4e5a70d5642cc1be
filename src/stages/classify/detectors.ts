/**
 * Built-in data-classification detectors. Every detector is linear-time on
 * adversarial input, by one of these constructions (see docs in each):
 *
 *  (B) a regex with only bounded quantifiers ({m,n}, ?): each match attempt
 *      inspects a bounded number of characters, so a global scan is O(n·L);
 *  (R) "literal prefix + run": a regex starting with a literal prefix,
 *      guarded by a lookbehind so it can only start at the beginning of a
 *      token, followed by single-class runs separated by literal characters
 *      not in the run's class (no ambiguity). A failed validation resumes
 *      after the candidate, so each character is visited O(1) times;
 *  (H) a hand-written scanner over disjoint runs of characters.
 *
 * Detectors see the normalised text (normalize.ts): ASCII digits for every
 * script's digits, ' ' for every space, '-' for every dash, no invisible
 * characters. The Classifier maps their offsets back to the original.
 */

import { normalizeForDetection } from './normalize.ts';

export type DataClass = 'PII' | 'PCI' | 'PHI' | 'SECRET';

export interface Finding {
  readonly detector: string;
  readonly dataClass: DataClass;
  readonly start: number;
  readonly end: number;
}

export interface Detector {
  readonly name: string;
  readonly dataClass: DataClass;
  /** Tie-break on equal-length overlaps: higher is more specific. */
  readonly priority: number;
  find(text: string): Finding[];
}

/* ------------------------------------------------------------------ helpers */

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
/** ASCII word char or any non-ASCII letter-ish code unit (conservative boundary). */
const WORD_RE = /[\p{L}\p{N}_]/u;
function isWordAt(text: string, i: number): boolean {
  if (i < 0 || i >= text.length) return false;
  const c = text.charCodeAt(i);
  if (c < 128) return isAlnum(c) || c === 95;
  if (c >= 0xd800 && c <= 0xdfff) return true;
  return WORD_RE.test(text[i] as string);
}

type Validate = (m: RegExpExecArray) => { start: number; end: number } | { resume: number } | null;

/**
 * Runs a global regex; `validate` returns the finding span, or null to resume
 * at `failResume` ('next': index+1 for bounded regexes, 'after': after the
 * candidate for prefix+run regexes), or an explicit resume index.
 */
function scanRegex(re: RegExp, text: string, det: { name: string; dataClass: DataClass }, validate: Validate, failResume: 'next' | 'after'): Finding[] {
  const out: Finding[] = [];
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const end = m.index + m[0].length;
    const r = validate(m);
    if (r && 'start' in r) {
      out.push({ detector: det.name, dataClass: det.dataClass, start: r.start, end: r.end });
      re.lastIndex = Math.max(r.end, m.index + 1);
    } else if (r && 'resume' in r) {
      re.lastIndex = Math.max(r.resume, m.index + 1);
    } else {
      re.lastIndex = failResume === 'next' || end === m.index ? m.index + 1 : end;
    }
  }
  return out;
}

const whole = (m: RegExpExecArray): { start: number; end: number } => ({ start: m.index, end: m.index + m[0].length });
/** Span of the trailing `len` characters of the match (labelled values). */
const tail = (m: RegExpExecArray, len: number): { start: number; end: number } => {
  const end = m.index + m[0].length;
  return { start: end - len, end };
};

function regexDetector(name: string, dataClass: DataClass, priority: number, re: RegExp, validate: Validate, failResume: 'next' | 'after'): Detector {
  return { name, dataClass, priority, find: (text) => scanRegex(re, text, { name, dataClass }, validate, failResume) };
}

/** Luhn over a digit array (values 0–9). */
function luhn(d: readonly number[], from: number, to: number): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = to - 1; i >= from; i--) {
    let v = d[i] as number;
    if (dbl) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let len = 0;
  for (const v of counts.values()) len += v;
  let h = 0;
  for (const v of counts.values()) {
    const p = v / len;
    h -= p * Math.log2(p);
  }
  return h;
}

function charClasses(s: string): number {
  let lower = 0;
  let upper = 0;
  let digit = 0;
  let other = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isLower(c)) lower = 1;
    else if (isUpper(c)) upper = 1;
    else if (isDigit(c)) digit = 1;
    else other = 1;
  }
  return lower + upper + digit + other;
}

/* ---------------------------------------------------------------------- PII */

/** (H) email: expand left/right from each '@' over disjoint runs; RFC-ish validation of the domain. */
const LOCAL = new Uint8Array(128);
const DOMAIN = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if (isAlnum(c)) {
    LOCAL[c] = 1;
    DOMAIN[c] = 1;
  }
}
for (const ch of "._%+-'") LOCAL[ch.charCodeAt(0)] = 1;
for (const ch of '.-') DOMAIN[ch.charCodeAt(0)] = 1;

function findEmails(text: string): Finding[] {
  const out: Finding[] = [];
  let from = 0;
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', Math.max(at + 1, from))) {
    let s = at;
    while (s > 0) {
      const c = text.charCodeAt(s - 1);
      if (c < 128 && LOCAL[c] === 1) s--;
      else break;
    }
    while (s < at && text.charCodeAt(s) === 46) s++;
    if (s === at || text.charCodeAt(at - 1) === 46 || at - s > 64) continue;
    let e = at + 1;
    while (e < text.length) {
      const c = text.charCodeAt(e);
      if (c < 128 && DOMAIN[c] === 1) e++;
      else break;
    }
    while (e > at + 1 && (text.charCodeAt(e - 1) === 46 || text.charCodeAt(e - 1) === 45)) e--;
    if (e - at - 1 > 253 || isWordAt(text, e)) continue;
    const labels = text.slice(at + 1, e).split('.');
    if (labels.length < 2) continue;
    const tld = labels[labels.length - 1] as string;
    if (!/^[A-Za-z]{2,63}$/.test(tld)) continue;
    if (!labels.every((l) => l.length >= 1 && l.length <= 63 && l.charCodeAt(0) !== 45 && l.charCodeAt(l.length - 1) !== 45)) continue;
    out.push({ detector: 'email', dataClass: 'PII', start: s, end: e });
    from = e;
  }
  return out;
}

/**
 * (B) phone: E.164 (+ and 8–15 digits) and NANP with separators (bare 10-digit runs are not phones). Between digits:
 * runs of up to 3 of space, tab, '.', '-' (not line breaks: a number that goes on on the next line is more often another number).
 */
const E164_RE = /(?<![\w+])\+[1-9](?:[ \t.-]{0,3}\d){7,14}(?![ .-]?\d)/g;
const NANP_RE = /(?<![\w+.-])(?:\+?1[ \t.-]{0,3})?(?:\([2-9]\d{2}\)[ \t.-]{0,3}|[2-9]\d{2}[ \t.-]{1,3})[2-9]\d{2}[ \t.-]{1,3}\d{4}(?!\w|[.-]\d)/g;
function findPhones(text: string): Finding[] {
  const det = { name: 'phone', dataClass: 'PII' as const };
  return [...scanRegex(E164_RE, text, det, whole, 'next'), ...scanRegex(NANP_RE, text, det, whole, 'next')];
}

/**
 * (B) US SSN: 123-45-6789 / 123 45 6789 / 123.45.6789, the same separator run (1–3 of space, tab, CR, LF, '.', '-') in both
 * places, with area/group/serial validity; not inside a longer chain of digit groups; bare 9 digits only after an "SSN" label.
 */
const SSN_RE = /(?<![\w-]|\d[ -])(\d{3})([ \t\r\n.-]{1,3})(\d{2})\2(\d{4})(?!\w|[ -]\d|\2\d)/g;
const SSN_LABELLED_RE = /\b(?:ssn|social security (?:number|no\.?))[\s:#=]{0,4}(?:is[\s:]{1,3})?(\d{9})(?!\w)/gi;
export function validSsn(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== '00' && serial !== '0000';
}
function findSsn(text: string): Finding[] {
  const det = { name: 'us_ssn', dataClass: 'PII' as const };
  return [
    ...scanRegex(
      SSN_RE,
      text,
      det,
      (m) => {
        // The lookbehind cannot see the separator (it is captured later): a digit and the same separator before means a longer chain.
        const sep = m[2] as string;
        if (m.index > sep.length && isDigit(text.charCodeAt(m.index - sep.length - 1)) && text.startsWith(sep, m.index - sep.length)) return null;
        return validSsn(m[1] as string, m[3] as string, m[4] as string) ? whole(m) : null;
      },
      'next',
    ),
    ...scanRegex(
      SSN_LABELLED_RE,
      text,
      det,
      (m) => {
        const d = m[1] as string;
        return validSsn(d.slice(0, 3), d.slice(3, 5), d.slice(5)) ? tail(m, 9) : null;
      },
      'next',
    ),
  ];
}

/** IBAN lengths per country (ISO 13616 registry, common subset); unknown countries: 15–34. */
const IBAN_LENGTHS: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  TN: 24,
  TR: 26,
  UA: 29,
  VG: 24,
  XK: 20,
};
export function ibanChecksumOk(compact: string): boolean {
  const re = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < re.length; i++) {
    const c = re.charCodeAt(i);
    if (isDigit(c)) rem = (rem * 10 + (c - 48)) % 97;
    else if (isUpper(c)) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}
const IBAN_START_RE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}/g;
/** (B+H) IBAN: candidate start, then ≤30 BBAN alnum chars with single spaces; ends only at group boundaries; mod-97. */
function findIban(text: string): Finding[] {
  return scanRegex(
    IBAN_START_RE,
    text,
    { name: 'iban', dataClass: 'PII' },
    (m) => {
      const s = m.index;
      const country = m[0].slice(0, 2);
      let compact = m[0];
      const ends: Array<[number, number]> = []; // [compact length, end offset]
      let i = s + 4;
      while (i < text.length && compact.length < 34) {
        const c = text.charCodeAt(i);
        if (isUpper(c) || isDigit(c)) {
          compact += text[i] as string;
          i++;
          if (!isAlnum(text.charCodeAt(i)) || i >= text.length) ends.push([compact.length, i]);
        } else if (c === 32 && i + 1 < text.length && (isUpper(text.charCodeAt(i + 1)) || isDigit(text.charCodeAt(i + 1))) && isAlnum(text.charCodeAt(i - 1))) {
          i++;
        } else break;
      }
      const want = IBAN_LENGTHS[country];
      for (let k = ends.length - 1; k >= 0; k--) {
        const [len, end] = ends[k] as [number, number];
        if (want !== undefined ? len !== want : len < 15 || len > 34) continue;
        if (isAlnum(text.charCodeAt(end))) continue;
        if (ibanChecksumOk(compact.slice(0, len))) return { start: s, end };
      }
      return null;
    },
    'next',
  );
}

/** (B) IPv4: four dotted octets each ≤ 255, not part of a longer dotted-number run. */
const IPV4_RE = /(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\.?\d)/g;
function findIpv4(text: string): Finding[] {
  return scanRegex(
    IPV4_RE,
    text,
    { name: 'ip_address', dataClass: 'PII' },
    (m) => ([m[1], m[2], m[3], m[4]].every((o) => Number(o) <= 255) ? whole(m) : null),
    'next',
  );
}

/** (H) IPv6: maximal runs of [0-9A-Fa-f:], full 8-group or '::'-compressed (≥ 2 groups) forms. */
export function validIpv6(s: string): boolean {
  if (s.includes(':::')) return false;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return false;
  const side = (x: string): string[] => (x === '' ? [] : x.split(':'));
  const parts = dbl === -1 ? s.split(':') : [...side(s.slice(0, dbl)), ...side(s.slice(dbl + 2))];
  if (dbl === -1 && parts.length !== 8) return false;
  if (dbl !== -1 && (parts.length < 2 || parts.length > 7)) return false;
  return parts.every((p) => p.length >= 1 && p.length <= 4);
}
function findIpv6(text: string): Finding[] {
  const out: Finding[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (!(isHex(c) || c === 58)) {
      i++;
      continue;
    }
    const s = i;
    let colons = 0;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (isHex(d)) i++;
      else if (d === 58) {
        colons++;
        i++;
      } else break;
    }
    if (colons < 2) continue;
    let e = i;
    if (text.charCodeAt(e - 1) === 58 && text.charCodeAt(e - 2) !== 58) e--; // trailing "addr:" punctuation
    const prev = s > 0 ? text.charCodeAt(s - 1) : 32;
    if (isWordAt(text, s - 1) || prev === 46) continue;
    if (isWordAt(text, i) || (text.charCodeAt(i) === 46 && isDigit(text.charCodeAt(i + 1)))) continue;
    if (validIpv6(text.slice(s, e))) out.push({ detector: 'ip_address', dataClass: 'PII', start: s, end: e });
  }
  return out;
}

/* ---------------------------------------------------------------------- PCI */

/** Known IIN ranges (from the first 4 digits) and allowed lengths. */
export function knownIin(p4: number, len: number): boolean {
  const p1 = Math.floor(p4 / 1000);
  const p2 = Math.floor(p4 / 100);
  const p3 = Math.floor(p4 / 10);
  if (p1 === 4) return len === 13 || len === 16 || len === 19; // Visa
  if (p2 >= 51 && p2 <= 55) return len === 16; // Mastercard
  if (p4 >= 2221 && p4 <= 2720) return len === 16; // Mastercard 2-series
  if (p2 === 34 || p2 === 37) return len === 15; // Amex
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return len >= 16; // Discover
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p3 >= 300 && p3 <= 305)) return len >= 14; // Diners
  if (p4 >= 3528 && p4 <= 3589) return len >= 16; // JCB
  if (p2 === 62) return len >= 16; // UnionPay
  if (p4 === 5018 || p4 === 5020 || p4 === 5038 || p4 === 5893 || p4 === 6304 || p4 === 6759 || (p4 >= 6761 && p4 <= 6763)) return len >= 13; // Maestro
  return false;
}

/** Characters a card number's digit groups may be separated by (on the normalised text: every Unicode space is ' ', every dash '-'). */
const CARD_SEP = new Uint8Array(128);
for (const ch of ' \t\n\r-./') CARD_SEP[ch.charCodeAt(0)] = 1;
/** Longest separator run between two digit groups: bounded, so a run of separators is never rescanned. */
const CARD_MAX_SEP = 3;

/**
 * (H) card numbers: maximal runs of digit groups separated by runs of 1–3 of
 * space, tab, CR, LF, '-', '.', '/'; candidates are consecutive groups
 * totalling 13–19 digits (≤ 19 groups per start: linear), known IIN, Luhn
 * valid; the longest candidate per start wins. A single space or dash between
 * groups (how cards have always been written) allows any grouping; any other
 * gap (double spaces, a line break, dots, slashes, mixes) needs card-like
 * groups — every group but the last of ≥ 4 digits — and '.' or '/' in every
 * gap or in none. That keeps lists of phone numbers (3-3-4), decimals
 * ("4.25 3.10 …") and dates ("12/05/2026 …") from adding up to a card.
 */
function findCards(text: string): Finding[] {
  const out: Finding[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const runStart = i;
    const digits: number[] = [];
    const gStart: number[] = [];
    const gEnd: number[] = [];
    const gDigits: number[] = [];
    // Per gap after group k: 1 = a single space or dash; else bit 2 = other, 4 = has '.', 8 = has '/'.
    const gap: number[] = [];
    while (true) {
      gStart.push(i);
      while (i < n && isDigit(text.charCodeAt(i))) {
        digits.push(text.charCodeAt(i) - 48);
        i++;
      }
      gEnd.push(i);
      gDigits.push(digits.length);
      let j = i;
      let kind = 2;
      while (j < n && j - i < CARD_MAX_SEP) {
        const c = text.charCodeAt(j);
        if (c >= 128 || CARD_SEP[c] !== 1) break;
        if (c === 46) kind |= 4;
        else if (c === 47) kind |= 8;
        j++;
      }
      if (j > i && isDigit(text.charCodeAt(j))) {
        const c = text.charCodeAt(i);
        gap.push(j === i + 1 && (c === 32 || c === 45) ? 1 : kind);
        i = j;
        continue;
      }
      break;
    }
    if (digits.length < 13) continue; // no candidate in it: most digit runs in prose ("94 percent", "2026")
    const leftOk = !isWordAt(text, runStart - 1);
    const rightOk = !isWordAt(text, i);
    const G = gStart.length;
    // Luhn in O(1) per candidate: pre[p][k] sums digits[0..k) with digit j doubled iff j % 2 === p;
    // for a candidate [base, end) the doubled digits are those with j % 2 === end % 2.
    const D = digits.length;
    const pre0 = new Int32Array(D + 1);
    const pre1 = new Int32Array(D + 1);
    for (let j = 0; j < D; j++) {
      const v = digits[j] as number;
      const dv = v * 2 > 9 ? v * 2 - 9 : v * 2;
      pre0[j + 1] = (pre0[j] as number) + (j % 2 === 0 ? dv : v);
      pre1[j + 1] = (pre1[j] as number) + (j % 2 === 1 ? dv : v);
    }
    const luhnRange = (base: number, end: number): boolean => {
      const pre = end % 2 === 0 ? pre0 : pre1;
      return ((pre[end] as number) - (pre[base] as number)) % 10 === 0;
    };
    // Groups a..b: any grouping when every gap is a single space or dash; otherwise every group but the last has ≥ 4 digits
    // and '.' / '/' are in every gap or in none. Checked only for IIN- and Luhn-valid candidates: ≤ 19 steps each.
    const shapeOk = (a: number, b: number): boolean => {
      let other = 0;
      let dots = 0;
      let slashes = 0;
      let short = 0;
      for (let k = a; k < b; k++) {
        const g = gap[k] as number;
        if (g !== 1) other++;
        if ((g & 4) !== 0) dots++;
        if ((g & 8) !== 0) slashes++;
        if ((gDigits[k] as number) - (k === 0 ? 0 : (gDigits[k - 1] as number)) < 4) short++;
      }
      return other === 0 || (short === 0 && (dots === 0 || dots === b - a) && (slashes === 0 || slashes === b - a));
    };
    let a = 0;
    while (a < G) {
      if (a === 0 && !leftOk) {
        a++;
        continue;
      }
      const base = a === 0 ? 0 : (gDigits[a - 1] as number);
      const p4 =
        base + 4 <= digits.length
          ? (digits[base] as number) * 1000 + (digits[base + 1] as number) * 100 + (digits[base + 2] as number) * 10 + (digits[base + 3] as number)
          : 0;
      let best = -1;
      for (let b = a; b < G; b++) {
        const len = (gDigits[b] as number) - base;
        if (len > 19) break;
        if (len < 13 || (b === G - 1 && !rightOk)) continue;
        if (knownIin(p4, len) && luhnRange(base, base + len) && shapeOk(a, b)) best = b;
      }
      if (best >= 0) {
        out.push({ detector: 'credit_card', dataClass: 'PCI', start: gStart[a] as number, end: gEnd[best] as number });
        a = best + 1;
      } else a++;
    }
  }
  return out;
}

/* ---------------------------------------------------------------------- PHI */

/** (B) MRN, labelled: `MRN[:#]? <6–10 digits>` or "medical record number". */
const MRN_RE = /\b(?:mrn|medical record (?:number|no\.?|#))[\s:#=]{0,4}(\d{6,10})(?!\d)/gi;

/**
 * (B) NPI: 10 digits starting with 1 or 2, Luhn valid over "80840" + the 10
 * digits, AND labelled: "NPI" or "national provider" within the 40 characters
 * before the number (bare 10-digit numbers are too common to flag alone).
 */
const NPI_RE = /(?<![\w.-])[12]\d{9}(?!\w|[.-]\d)/g;
export function npiChecksumOk(ten: string): boolean {
  const d = `80840${ten}`.split('').map(Number);
  return luhn(d, 0, d.length);
}
const NPI_CONTEXT_RE = /npi|national provider/i;

/** Case-insensitive whole-word term matcher: a trie over folded UTF-16 code units. O(n · longest term). */
interface TrieNode {
  next: Map<number, TrieNode>;
  term: boolean;
}
function fold(c: number): number {
  if (c < 128) return isUpper(c) ? c + 32 : c === 9 || c === 10 || c === 13 ? 32 : c;
  if (c >= 0xd800 && c <= 0xdfff) return c;
  const l = String.fromCharCode(c).toLowerCase();
  return l.length === 1 ? l.charCodeAt(0) : c;
}
export class TermMatcher {
  private readonly root: TrieNode = { next: new Map(), term: false };
  readonly size: number;
  constructor(terms: readonly string[]) {
    let size = 0;
    for (const raw of terms) {
      // Terms go through the same normalisation as the text they are matched against.
      const t = normalizeForDetection(raw).text.trim().replace(/\s+/g, ' ');
      if (t.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < t.length; i++) {
        const k = fold(t.charCodeAt(i));
        let nx = node.next.get(k);
        if (!nx) {
          nx = { next: new Map(), term: false };
          node.next.set(k, nx);
        }
        node = nx;
      }
      node.term = true;
      size++;
    }
    this.size = size;
  }
  find(text: string, name: string, dataClass: DataClass): Finding[] {
    const out: Finding[] = [];
    if (this.size === 0) return out;
    const n = text.length;
    let i = 0;
    while (i < n) {
      let node = this.root.next.get(fold(text.charCodeAt(i)));
      if (!node || isWordAt(text, i - 1)) {
        i++;
        continue;
      }
      let best = -1;
      let j = i + 1;
      while (true) {
        if (node.term && !isWordAt(text, j)) best = j;
        if (j >= n) break;
        const fc = fold(text.charCodeAt(j));
        if (fc === 32 && fold(text.charCodeAt(j - 1)) === 32) {
          j++;
          continue;
        } // whitespace runs match one space
        const nx: TrieNode | undefined = node.next.get(fc);
        if (!nx) break;
        node = nx;
        j++;
      }
      if (best > 0) {
        out.push({ detector: name, dataClass, start: i, end: best });
        i = best;
      } else i++;
    }
    return out;
  }
}

/* ------------------------------------------------------------------- SECRET */

const AWS_KEY_RE = /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;
const AWS_SECRET_RE = /(?<![A-Za-z0-9])aws_?secret_?(?:access_?)?key["']?\s{0,3}[:=]\s{0,3}["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/gi;
const GITHUB_RE = /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}[A-Za-z0-9]*|github_pat_[A-Za-z0-9_]{22}[A-Za-z0-9_]*)/g;
const OPENAI_RE = /(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20}[A-Za-z0-9_-]*/g;
const ANTHROPIC_RE = /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20}[A-Za-z0-9_-]*/g;
const SLACK_RE = /(?<![A-Za-z0-9_-])xox[abprs]-[A-Za-z0-9-]{10}[A-Za-z0-9-]*/g;
const JWT_RE = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

/** Token bodies must mix character classes (so kebab-case prose like "sk-this-is-a-long-name" is not a key). */
const mixed = (m: RegExpExecArray, prefixLen: number): boolean => {
  const body = m[0].slice(prefixLen);
  let lower = false;
  let upper = false;
  let digit = false;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    lower ||= isLower(c);
    upper ||= isUpper(c);
    digit ||= isDigit(c);
  }
  return Number(lower) + Number(upper) + Number(digit) >= 2 && digit;
};

export function jwtHeaderOk(seg: string): boolean {
  if (seg.length > 8192) return false;
  const json = Buffer.from(seg, 'base64url').toString('utf8').trim();
  if (!json.endsWith('}') || !json.includes('"alg"')) return false;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)['alg'] === 'string';
  } catch {
    return false;
  }
}

/**
 * (H) PEM private key blocks. BEGIN headers are found with indexOf; the footer
 * search is cached ("no valid footer after q"), so repeated headers cost O(n)
 * in total. An unterminated block is redacted through the end of its base64 body.
 */
const PK_HEADER_RE = /-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----/y;
const PK_FOOTER_RE = /-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----/y;
function findPrivateKeys(text: string): Finding[] {
  const out: Finding[] = [];
  let noFooterFrom = Infinity;
  let pos = 0;
  while (true) {
    const p = text.indexOf('-----BEGIN ', pos);
    if (p === -1) break;
    PK_HEADER_RE.lastIndex = p;
    const h = PK_HEADER_RE.exec(text);
    if (!h) {
      pos = p + 1;
      continue;
    }
    const hEnd = p + h[0].length;
    let footerEnd = -1;
    if (hEnd < noFooterFrom) {
      let q = hEnd;
      while (true) {
        const e = text.indexOf('-----END ', q);
        if (e === -1) {
          noFooterFrom = hEnd;
          break;
        }
        PK_FOOTER_RE.lastIndex = e;
        const f = PK_FOOTER_RE.exec(text);
        if (f) {
          footerEnd = e + f[0].length;
          break;
        }
        q = e + 1;
      }
    }
    let end = footerEnd;
    if (end === -1) {
      end = hEnd;
      while (end < text.length) {
        const c = text.charCodeAt(end);
        if (isAlnum(c) || c === 43 || c === 47 || c === 61 || c === 32 || c === 9 || c === 10 || c === 13) end++;
        else break;
      }
      while (end > hEnd && /\s/.test(text[end - 1] as string)) end--;
    }
    out.push({ detector: 'private_key', dataClass: 'SECRET', start: p, end });
    pos = end;
  }
  return out;
}

/**
 * (H) high-entropy values after a secret-looking key: at each ':' or '=',
 * the identifier to the left (≤ 64 chars, optional quote/spaces) must name a
 * secret; the value to the right (optional quote, up to whitespace/quote/
 * delimiter) must be ≥ 16 chars, Shannon entropy ≥ threshold bits/char, and
 * mix ≥ 2 character classes. Matched values are skipped whole, so value
 * scans are disjoint: O(n).
 */
const SECRET_KEY_RE = /pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth[_-]?key/i;
const IDENT = new Uint8Array(128);
for (let c = 0; c < 128; c++) if (isAlnum(c)) IDENT[c] = 1;
for (const ch of '_.-') IDENT[ch.charCodeAt(0)] = 1;
const VALUE_STOP = new Set([32, 9, 10, 13, 34, 39, 96, 44, 59, 60, 62, 41, 93, 125]);

function findHighEntropy(text: string, threshold: number): Finding[] {
  const out: Finding[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const sep = text.charCodeAt(i);
    if (sep !== 58 && sep !== 61) continue;
    let j = i - 1;
    let skipped = 0;
    while (j >= 0 && skipped < 3 && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 34 || text.charCodeAt(j) === 39)) {
      j--;
      skipped++;
    }
    const keyEnd = j + 1;
    while (j >= 0 && keyEnd - j <= 64) {
      const c = text.charCodeAt(j);
      if (c < 128 && IDENT[c] === 1) j--;
      else break;
    }
    const key = text.slice(j + 1, keyEnd);
    if (key.length === 0 || !SECRET_KEY_RE.test(key)) continue;
    let k = i + 1;
    let sp = 0;
    while (k < n && sp < 3 && text.charCodeAt(k) === 32) {
      k++;
      sp++;
    }
    if (k < n && (text.charCodeAt(k) === 34 || text.charCodeAt(k) === 39)) k++;
    const vs = k;
    while (k < n && !VALUE_STOP.has(text.charCodeAt(k))) k++;
    const value = text.slice(vs, k);
    if (
      value.length >= 16 &&
      !value.startsWith('[REDACTED:') &&
      !/^https?:\/\//i.test(value) &&
      charClasses(value) >= 2 &&
      shannonEntropy(value) >= threshold
    ) {
      out.push({ detector: 'high_entropy_secret', dataClass: 'SECRET', start: vs, end: k });
    }
    i = Math.max(i, k - 1);
  }
  return out;
}

/* ------------------------------------------------------------------ registry */

export const DEFAULT_ENTROPY_THRESHOLD = 3.0;

export const BUILTIN_DETECTOR_NAMES = [
  'email',
  'phone',
  'us_ssn',
  'iban',
  'ip_address',
  'credit_card',
  'mrn',
  'npi',
  'phi_term',
  'aws_access_key',
  'aws_secret_key',
  'github_token',
  'openai_key',
  'anthropic_key',
  'slack_token',
  'private_key',
  'jwt',
  'high_entropy_secret',
] as const;

export interface BuiltinOptions {
  phiTerms?: readonly string[];
  entropyThreshold?: number;
}

export function builtinDetectors(opts: BuiltinOptions = {}): Detector[] {
  const threshold = opts.entropyThreshold ?? DEFAULT_ENTROPY_THRESHOLD;
  const phi = new TermMatcher(opts.phiTerms ?? []);
  return [
    { name: 'email', dataClass: 'PII', priority: 40, find: findEmails },
    { name: 'phone', dataClass: 'PII', priority: 20, find: findPhones },
    { name: 'us_ssn', dataClass: 'PII', priority: 60, find: findSsn },
    { name: 'iban', dataClass: 'PII', priority: 65, find: findIban },
    { name: 'ip_address', dataClass: 'PII', priority: 30, find: (t) => [...findIpv4(t), ...findIpv6(t)] },
    { name: 'credit_card', dataClass: 'PCI', priority: 70, find: findCards },
    regexDetector('mrn', 'PHI', 50, MRN_RE, (m) => tail(m, (m[1] as string).length), 'next'),
    regexDetector(
      'npi',
      'PHI',
      55,
      NPI_RE,
      (m) => {
        if (!npiChecksumOk(m[0])) return null;
        return NPI_CONTEXT_RE.test(text40(m.input, m.index)) ? whole(m) : null;
      },
      'next',
    ),
    { name: 'phi_term', dataClass: 'PHI', priority: 10, find: (t) => phi.find(t, 'phi_term', 'PHI') },
    regexDetector('aws_access_key', 'SECRET', 80, AWS_KEY_RE, whole, 'next'),
    regexDetector('aws_secret_key', 'SECRET', 78, AWS_SECRET_RE, (m) => tail(m, 40), 'next'),
    regexDetector('github_token', 'SECRET', 85, GITHUB_RE, whole, 'after'),
    regexDetector('openai_key', 'SECRET', 86, OPENAI_RE, (m) => (mixed(m, 3) ? whole(m) : null), 'after'),
    regexDetector('anthropic_key', 'SECRET', 87, ANTHROPIC_RE, (m) => (mixed(m, 7) ? whole(m) : null), 'after'),
    regexDetector('slack_token', 'SECRET', 84, SLACK_RE, (m) => (mixed(m, 5) ? whole(m) : null), 'after'),
    { name: 'private_key', dataClass: 'SECRET', priority: 100, find: findPrivateKeys },
    regexDetector(
      'jwt',
      'SECRET',
      90,
      JWT_RE,
      (m) => {
        const seg = m[0].slice(0, m[0].indexOf('.'));
        return jwtHeaderOk(seg) ? whole(m) : { resume: m.index + seg.length + 1 };
      },
      'after',
    ),
    { name: 'high_entropy_secret', dataClass: 'SECRET', priority: 5, find: (t) => findHighEntropy(t, threshold) },
  ];
}

function text40(text: string, index: number): string {
  return text.slice(Math.max(0, index - 40), index);
}
