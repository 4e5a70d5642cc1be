/**
 * What the detectors see: the text with the encodings people use to slip a
 * value past a character-for-character scanner undone, plus a map back to the
 * original so findings (and therefore redaction) cover exactly the original
 * code units that produced them.
 *
 * Per code point, in this order:
 *  1. Unicode NFKC of the code point alone (full-width forms, mathematical
 *     alphanumerics, ligatures, circled/superscript digits, compatibility
 *     spaces…). A decomposition longer than MAX_EXPANSION UTF-16 units
 *     (U+FDFA, squared katakana words, "rad∕s") is not applied: none of them
 *     yields anything a detector looks for, and the bound keeps the normalised
 *     text ≤ MAX_EXPANSION × the original, so detectors stay linear in the
 *     input. Code points are normalised one by one (no canonical composition
 *     across characters): that keeps the map exact.
 *  2. On each code point of that result:
 *     - removed: default-ignorable code points (\p{Default_Ignorable_Code_Point}:
 *       zero-width space/joiners, word joiner, soft hyphen, BOM, bidi
 *       controls, variation selectors, tag characters, Hangul fillers…),
 *       format characters (\p{Cf}) and control characters other than tab,
 *       LF, CR, VT, FF, NEL;
 *     - to an ASCII space: every \p{Z} (NBSP, thin/ideographic spaces, line
 *       and paragraph separators) and VT, FF, NEL;
 *     - to ASCII 0–9: every decimal digit (\p{Nd}, any script);
 *     - to '-': every dash (\p{Pd}: hyphen, en/em dash, minus-like dashes…);
 *     - removed: combining marks (\p{M}) that follow an ASCII letter or digit
 *       of the normalised text (a mark over "4" or "A" leaves it readable as
 *       "4" or "A"; marks on other letters are kept, they make other letters).
 *
 * Pure ASCII text without control characters (the common case) is returned as
 * it is, with no map; text whose non-ASCII code points are all left alone
 * (curly quotes, accented letters, CJK, emoji) likewise.
 */

/** Longest NFKC decomposition (UTF-16 units) applied; longer ones leave the code point as it is. */
export const MAX_EXPANSION = 3;

/**
 * Code points that may change. \p{Changes_When_NFKC_Casefolded} is a superset of
 * "changes under NFKC" (it adds case folding and the default ignorables): a
 * cheap, exact prefilter, verified by test/stages/classify/normalize.test.ts.
 */
const CANDIDATE_RE = /[[\p{Changes_When_NFKC_Casefolded}\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\p{Z}\p{Nd}\p{Pd}\p{M}]--[\t\n\r\x20-\x7E]]/gv;
const DROP_RE = /^[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}]$/u;
const SPACE_RE = /^\p{Z}$/u;
const DIGIT_RE = /^\p{Nd}$/u;
const DASH_RE = /^\p{Pd}$/u;
const MARKS_RE = /^\p{M}+$/u;

/** ASCII code point → replacement: itself, '' (removed control) or ' ' (VT, FF). */
const ASCII_FOLD: readonly string[] = Array.from({ length: 128 }, (_, c) => {
  if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127)) return String.fromCharCode(c);
  return c === 11 || c === 12 ? ' ' : '';
});

interface Fold {
  /** The replacement, context-free ('' = removed). */
  readonly out: string;
  /** Only combining marks: removed after an ASCII letter or digit. */
  readonly mark: boolean;
}

/**
 * Per code point, computed once per process. Only code points matching
 * CANDIDATE_RE are ever looked up (about 13,600 of them), so the cache is
 * bounded by Unicode itself, not by the traffic.
 */
const FOLDS = new Map<number, Fold>();

/** Decimal digits come in runs of ten, 0 to 9 (a Unicode stability policy): the value is the distance from the run's zero. */
function digitValue(cp: number): number {
  let zero = cp;
  while (zero > 0 && DIGIT_RE.test(String.fromCodePoint(zero - 1))) zero--;
  return (cp - zero) % 10;
}

function foldOne(ch: string): string {
  const q = ch.codePointAt(0) as number;
  if (q < 128) return ASCII_FOLD[q] as string;
  if (q === 0x85) return ' '; // NEL is a line break
  if (DROP_RE.test(ch)) return '';
  if (SPACE_RE.test(ch)) return ' ';
  if (DIGIT_RE.test(ch)) return String.fromCharCode(48 + digitValue(q));
  if (DASH_RE.test(ch)) return '-';
  return ch;
}

function foldOf(cp: number): Fold {
  const cached = FOLDS.get(cp);
  if (cached !== undefined) return cached;
  const ch = String.fromCodePoint(cp);
  let nf = ch.normalize('NFKC');
  if (nf.length > MAX_EXPANSION) nf = ch;
  let out = '';
  for (const c of nf) out += foldOne(c);
  const f: Fold = { out, mark: out !== '' && MARKS_RE.test(out) };
  FOLDS.set(cp, f);
  return f;
}

const isAsciiAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/**
 * A normalised text and its map to the original. The map is a sorted list of
 * edits — normalised [nStart, nEnd) came from original [oStart, oEnd) — for
 * the places where lengths differ (removals, expansions, astral → BMP);
 * between edits, and for same-length replacements, offsets shift by a
 * constant. A removed code point is attached to the edit of the normalised
 * unit before it, so a span ending there also covers it (a zero-width
 * character or combining mark right after a value is redacted with it);
 * removals at the very start form an empty edit.
 */
export class NormalizedText {
  readonly text: string;
  readonly original: string;
  readonly #nStart: readonly number[];
  readonly #nEnd: readonly number[];
  readonly #oStart: readonly number[];
  readonly #oEnd: readonly number[];

  constructor(original: string, text: string, edits: { nStart: number[]; nEnd: number[]; oStart: number[]; oEnd: number[] } | null) {
    this.original = original;
    this.text = text;
    this.#nStart = edits?.nStart ?? [];
    this.#nEnd = edits?.nEnd ?? [];
    this.#oStart = edits?.oStart ?? [];
    this.#oEnd = edits?.oEnd ?? [];
  }

  /** Whether the detectors see the original itself (offsets need no mapping). */
  get unchanged(): boolean {
    return this.text === this.original;
  }

  /** The last edit whose normalised start is ≤ p, or -1. */
  #editAt(p: number): number {
    let lo = 0;
    let hi = this.#nStart.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#nStart[mid] as number) <= p) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /**
   * The original [start, end) that produced normalised [start, end): every
   * original code unit that contributed to it, widened to whole code points.
   */
  toOriginal(start: number, end: number): { start: number; end: number } {
    let s = start;
    let e = end;
    if (this.#nStart.length > 0) {
      const ks = this.#editAt(start);
      if (ks >= 0) s = start < (this.#nEnd[ks] as number) ? (this.#oStart[ks] as number) : start - (this.#nEnd[ks] as number) + (this.#oEnd[ks] as number);
      const ke = this.#editAt(end - 1);
      if (ke >= 0) e = end - 1 < (this.#nEnd[ke] as number) ? (this.#oEnd[ke] as number) : end - (this.#nEnd[ke] as number) + (this.#oEnd[ke] as number);
    }
    const o = this.original;
    if (s > 0 && isLow(o.charCodeAt(s)) && isHigh(o.charCodeAt(s - 1))) s--;
    if (e > 0 && e < o.length && isHigh(o.charCodeAt(e - 1)) && isLow(o.charCodeAt(e))) e++;
    return { start: s, end: e };
  }
}

export function normalizeForDetection(text: string): NormalizedText {
  const re = CANDIDATE_RE;
  re.lastIndex = 0;
  let m = re.exec(text);
  if (m === null) return new NormalizedText(text, text, null);

  const parts: string[] = [];
  const nStart: number[] = [];
  const nEnd: number[] = [];
  const oStart: number[] = [];
  const oEnd: number[] = [];
  let changed = false;
  let pos = 0; // original code units before this are accounted for
  let copyFrom = 0; // start of the unchanged stretch not yet in `parts`
  let outLen = 0; // normalised length of everything before `pos`
  let prevAlnum = false; // the last normalised unit is an ASCII letter or digit
  for (; m !== null; m = re.exec(text)) {
    const at = m.index;
    if (at > pos) {
      outLen += at - pos;
      prevAlnum = isAsciiAlnum(text.charCodeAt(at - 1));
    }
    const cp = text.codePointAt(at) as number;
    const w = cp > 0xffff ? 2 : 1;
    pos = at + w;
    const f = foldOf(cp);
    const r = f.mark && prevAlnum ? '' : f.out;
    if (r.length === w && r === text.slice(at, pos)) {
      // Left as it is (an uppercase letter: case folding is not ours to do).
      outLen += w;
      prevAlnum = false;
      continue;
    }
    changed = true;
    parts.push(text.slice(copyFrom, at));
    copyFrom = pos;
    const last = nStart.length - 1;
    if (r.length === 0) {
      if (outLen === 0) {
        // Removed before any output: an empty edit at 0 (extended by further leading removals).
        if (last >= 0) oEnd[last] = pos;
        else {
          nStart.push(0);
          nEnd.push(0);
          oStart.push(at);
          oEnd.push(pos);
        }
      } else if (last >= 0 && nEnd[last] === outLen) {
        oEnd[last] = pos;
      } else {
        // Attach to the normalised unit before it: itself unmapped, so at - 1 in the original (both units of a pair).
        const pair =
          outLen >= 2 && at >= 2 && isLow(text.charCodeAt(at - 1)) && isHigh(text.charCodeAt(at - 2)) && (last < 0 || (nEnd[last] as number) <= outLen - 2);
        nStart.push(outLen - (pair ? 2 : 1));
        nEnd.push(outLen);
        oStart.push(at - (pair ? 2 : 1));
        oEnd.push(pos);
      }
      continue;
    }
    parts.push(r);
    if (r.length !== w) {
      nStart.push(outLen);
      nEnd.push(outLen + r.length);
      oStart.push(at);
      oEnd.push(pos);
    }
    outLen += r.length;
    prevAlnum = isAsciiAlnum(r.charCodeAt(r.length - 1));
  }
  if (!changed) return new NormalizedText(text, text, null);
  parts.push(text.slice(copyFrom));
  return new NormalizedText(text, parts.join(''), nStart.length > 0 ? { nStart, nEnd, oStart, oEnd } : null);
}
