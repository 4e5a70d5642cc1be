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
 *     ("ﬃ", "…", "⑽", "½", U+FDFA, squared katakana words) is not applied:
 *     the bound keeps the normalised text ≤ MAX_EXPANSION × the original, so
 *     no input costs a detector more than twice its length in plain text. The
 *     price: "ﬃ"/"ﬄ" inside a token still break it (a known gap).
 *     Code points are normalised one by one (no canonical composition across
 *     characters): that keeps the map exact.
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
 *
 * Not undone: look-alike letters of other scripts (Cyrillic "А" for "A"),
 * spelled-out digits, and encodings such as base64 or leetspeak.
 */

/** Longest NFKC decomposition (UTF-16 units) applied; longer ones leave the code point as it is. */
export const MAX_EXPANSION = 2;

/**
 * Code points that may change. \p{Changes_When_NFKC_Casefolded} is a superset of
 * "changes under NFKC" (it adds case folding and the default ignorables): a
 * cheap, exact prefilter, verified by test/stages/classify/normalize.test.ts.
 */
const CANDIDATE_RE = /[[\p{Changes_When_NFKC_Casefolded}\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\p{Z}\p{Nd}\p{Pd}\p{M}]--[\t\n\r\x20-\x7E]]/v;
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
 * Unicode encodes decimal digits in contiguous runs of ten, 0 to 9 (checked against ICU's numbering systems in
 * normalize.test.ts): the value is the distance from the run's zero, mod 10 where runs of ten follow each other.
 */
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

/** What a code point becomes, or null when it stays as it is whatever comes before it. */
function foldCodePoint(cp: number): Fold | null {
  const ch = String.fromCodePoint(cp);
  if (!CANDIDATE_RE.test(ch)) return null; // one regex test, cheaper than the work below on a first sight
  let nf = ch.normalize('NFKC');
  if (nf.length > MAX_EXPANSION) nf = ch;
  let out = '';
  for (const c of nf) out += foldOne(c);
  const mark = out !== '' && MARKS_RE.test(out);
  return out === ch && !mark ? null : { out, mark };
}

/**
 * Folds, computed once per code point per process: for the BMP a dense table
 * (undefined = not computed yet) and a byte per code unit known to stay; for
 * the astral planes a bit set of code points known to stay (emoji, historic
 * scripts) and a map of the others (prefilter candidates: a few thousand).
 * Bounded by Unicode, not by traffic.
 */
const BMP_FOLDS: Array<Fold | null | undefined> = new Array<Fold | null | undefined>(0x10000);
const ASTRAL_FOLDS = new Map<number, Fold>();
const ASTRAL_STAYS = new Uint8Array(0x100000 >> 3);
/** 1: known to stay (never set for high surrogates: they are looked at as pairs). */
const BMP_STAYS = new Uint8Array(0x10000);
for (let c = 0; c < 128; c++) bmpFold(c);

function bmpFold(c: number): Fold | null {
  let f = BMP_FOLDS[c];
  if (f === undefined) {
    f = foldCodePoint(c);
    BMP_FOLDS[c] = f;
    if (f === null) BMP_STAYS[c] = 1;
  }
  return f;
}

function astralFold(cp: number): Fold | null {
  const k = cp - 0x10000;
  if (((ASTRAL_STAYS[k >> 3] as number) & (1 << (k & 7))) !== 0) return null;
  const known = ASTRAL_FOLDS.get(cp);
  if (known !== undefined) return known;
  const f = foldCodePoint(cp);
  if (f === null) ASTRAL_STAYS[k >> 3] = (ASTRAL_STAYS[k >> 3] as number) | (1 << (k & 7));
  else ASTRAL_FOLDS.set(cp, f);
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
  /** Edits, 4 numbers each: nStart, nEnd, oStart, oEnd; sorted by nStart. */
  readonly #edits: readonly number[];

  constructor(original: string, text: string, edits: readonly number[]) {
    this.original = original;
    this.text = text;
    this.#edits = edits;
  }

  /** Whether the detectors see the original itself (offsets need no mapping). */
  get unchanged(): boolean {
    return this.text === this.original;
  }

  /** The index (in edits) of the last edit whose normalised start is ≤ p, or -1. */
  #editAt(p: number): number {
    const ed = this.#edits;
    let lo = 0;
    let hi = ed.length >> 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((ed[mid << 2] as number) <= p) lo = mid + 1;
      else hi = mid;
    }
    return (lo - 1) << 2;
  }

  /**
   * The original [start, end) that produced normalised [start, end): every
   * original code unit that contributed to it, widened to whole code points.
   */
  toOriginal(start: number, end: number): { start: number; end: number } {
    const ed = this.#edits;
    let s = start;
    let e = end;
    if (ed.length > 0) {
      const ks = this.#editAt(start);
      if (ks >= 0) s = start < (ed[ks + 1] as number) ? (ed[ks + 2] as number) : start - (ed[ks + 1] as number) + (ed[ks + 3] as number);
      const ke = this.#editAt(end - 1);
      if (ke >= 0) e = end - 1 < (ed[ke + 1] as number) ? (ed[ke + 3] as number) : end - (ed[ke + 1] as number) + (ed[ke + 3] as number);
    }
    const o = this.original;
    if (s > 0 && isLow(o.charCodeAt(s)) && isHigh(o.charCodeAt(s - 1))) s--;
    if (e > 0 && e < o.length && isHigh(o.charCodeAt(e - 1)) && isLow(o.charCodeAt(e))) e++;
    return { start: s, end: e };
  }
}

const NO_EDITS: readonly number[] = Object.freeze([]);

export function normalizeForDetection(text: string): NormalizedText {
  // The prefilter finds the first code point that may change with a native scan; most texts have none.
  const first = text.search(CANDIDATE_RE);
  if (first === -1) return new NormalizedText(text, text, NO_EDITS);

  const n = text.length;
  let out = '';
  const ed: number[] = [];
  let copyFrom = 0; // start of the unchanged stretch not yet in `out`
  let outBase = 0; // normalised length of everything before copyFrom
  let lastOut = -1; // the last normalised code unit before copyFrom (-1: none)
  let i = first;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (BMP_STAYS[c] === 1) {
      // The common case in a text that needs folding somewhere: a code unit known to stay, one typed-array read.
      i++;
      continue;
    }
    let w = 1;
    let f: Fold | null;
    if (c < 0xd800 || c > 0xdbff) f = bmpFold(c);
    else if (i + 1 < n && isLow(text.charCodeAt(i + 1))) {
      w = 2;
      f = astralFold(((c - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00) + 0x10000);
    } else f = null; // a lone surrogate stays
    if (f === null) {
      i += w;
      continue;
    }
    const at = i;
    const pos = at + w;
    i = pos;
    const prev = at > copyFrom ? text.charCodeAt(at - 1) : lastOut;
    let r = f.out;
    if (f.mark) {
      if (isAsciiAlnum(prev)) r = '';
      else if (r === text.slice(at, pos)) continue; // a combining mark that stays
    }
    const outLen = outBase + (at - copyFrom);
    if (at > copyFrom) out += text.slice(copyFrom, at);
    copyFrom = pos;
    const last = ed.length - 4; // the last edit, or < 0
    if (r.length === 0) {
      outBase = outLen;
      lastOut = prev;
      if (outLen === 0) {
        // Removed before any output: an empty edit at 0, extended by further leading removals.
        if (last >= 0) ed[last + 3] = pos;
        else ed.push(0, 0, at, pos);
      } else if (last >= 0 && ed[last + 1] === outLen) {
        ed[last + 3] = pos; // the unit before is an edit's last: it grows
      } else {
        // The unit before is unmapped, so it is at - 1 in the original (at - 2 for both units of a pair).
        const pair = outLen >= 2 && isLow(text.charCodeAt(at - 1)) && isHigh(text.charCodeAt(at - 2)) && (last < 0 || (ed[last + 1] as number) <= outLen - 2);
        const back = pair ? 2 : 1;
        ed.push(outLen - back, outLen, at - back, pos);
      }
      continue;
    }
    out += r;
    if (r.length !== w) ed.push(outLen, outLen + r.length, at, pos);
    outBase = outLen + r.length;
    lastOut = r.charCodeAt(r.length - 1);
  }
  if (copyFrom === 0) return new NormalizedText(text, text, NO_EDITS);
  out += text.slice(copyFrom);
  return new NormalizedText(text, out, ed);
}
