/**
 * Conservative static safety check for deployer-supplied (custom) regexes.
 *
 * V8's irregexp is a backtracking engine, so an arbitrary pattern can take
 * exponential (e.g. `(a+)+$`) or polynomial (e.g. `\w+\w+x`, or even a lone
 * `[a-z]+x` under a global search) time. A custom pattern is accepted only if:
 *
 *  - it has no backreferences (`\1`, `\k<name>`) and no lookaround
 *    (`(?=`, `(?!`, `(?<=`, `(?<!`) and no inline modifier groups;
 *  - no group with a variable quantifier (min ≠ max: `*`, `+`, `?`, `{m,n}`)
 *    contains another variable quantifier or an alternation (no nested
 *    quantifiers, no quantified ambiguous alternation);
 *  - unbounded quantifiers are rewritten to bounded ones of width 32:
 *    `*` → `{0,31}`, `+` → `{1,32}`, `{m,}` → `{m,m+31}`. A match that then stops inside a
 *    word token ([A-Za-z0-9_]) is extended to the token's end by the
 *    classifier, so a long secret is redacted whole. Bounded maxima above
 *    1000 are rejected;
 *  - the product of all quantifier widths (max − min + 1) is ≤ 64. That
 *    bounds the backtracking paths tried per start position, so a global scan
 *    is O(n · 64 · |pattern|): linear in the text. In practice one unbounded
 *    quantifier plus a few `?`/small ranges, e.g. `ACME-[A-Z0-9]+` or
 *    `[A-Z]{2,8}-\d{4,12}`; `[A-Z]+-\d+` is rejected (write bounded ranges);
 *  - it does not match the empty string.
 *
 * The check is deliberately stricter than necessary: a false rejection is a
 * config error at startup; a false acceptance is a CPU DoS in the data path.
 */

export const QUANTIFIER_CAP = 32;
export const MAX_COST = 64;
const MAX_BOUND = 1000;

interface Frame {
  cost: number;
  variable: boolean;
  alt: boolean;
}

interface Quant {
  min: number;
  max: number;
  len: number;
  lazy: boolean;
}

function parseQuantifier(src: string, i: number): Quant | null {
  const c = src[i];
  let q: Quant | null = null;
  if (c === '*') q = { min: 0, max: Infinity, len: 1, lazy: false };
  else if (c === '+') q = { min: 1, max: Infinity, len: 1, lazy: false };
  else if (c === '?') q = { min: 0, max: 1, len: 1, lazy: false };
  else if (c === '{') {
    const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(src.slice(i, i + 16));
    if (m) {
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' || m[3] === undefined ? Infinity : Number(m[3]);
      q = { min, max, len: m[0].length, lazy: false };
    }
  }
  if (q && src[i + q.len] === '?') {
    q.lazy = true;
    q.len += 1;
  }
  return q;
}

export class UnsafePatternError extends Error {
  override readonly name = 'UnsafePatternError';
}

/** Validates and rewrites a custom pattern; returns a global RegExp. Throws UnsafePatternError naming `name`. */
export function compileSafePattern(name: string, source: string): RegExp {
  const fail = (why: string): never => {
    throw new UnsafePatternError(`classifier: custom pattern "${name}" rejected: ${why}`);
  };
  if (source.length === 0) fail('empty pattern');
  if (source.length > 1000) fail('pattern longer than 1000 characters');
  const stack: Frame[] = [{ cost: 1, variable: false, alt: false }];
  let out = '';
  let i = 0;
  const n = source.length;
  const top = (): Frame => stack[stack.length - 1] as Frame;
  const bump = (f: Frame, by: number): void => {
    f.cost *= by;
    if (f.cost > MAX_COST) fail(`too much backtracking potential (quantifier width product > ${MAX_COST})`);
  };
  /** After an atom: apply a following quantifier (if any). `group` is the closed group's frame. */
  const afterAtom = (group: Frame | null): void => {
    const q = parseQuantifier(source, i);
    const parent = top();
    if (!q) {
      if (group) {
        bump(parent, group.cost);
        parent.variable ||= group.variable;
        parent.alt ||= group.alt;
      }
      return;
    }
    if (q.max !== Infinity && q.max < q.min) fail('quantifier range out of order');
    if (q.min > MAX_BOUND || (q.max !== Infinity && q.max > MAX_BOUND)) fail(`quantifier bound above ${MAX_BOUND}`);
    const max = q.max === Infinity ? q.min + QUANTIFIER_CAP - 1 : q.max;
    const variable = max !== q.min;
    const width = max - q.min + 1;
    i += q.len;
    out += q.max === Infinity || source[i - q.len] === '{' ? `{${q.min},${max}}` : q.min === 0 ? '?' : '';
    if (q.lazy) out += '?';
    if (group) {
      if (variable) {
        if (group.variable) fail('nested quantifiers');
        if (group.alt) fail('quantified alternation');
        bump(parent, width);
      } else {
        bump(parent, group.cost ** q.min);
        parent.alt ||= group.alt;
      }
      parent.variable ||= variable || group.variable;
    } else {
      bump(parent, width);
      parent.variable ||= variable;
    }
    if (parseQuantifier(source, i)) fail('stacked quantifiers');
  };

  while (i < n) {
    const c = source[i] as string;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined) fail('trailing backslash');
      if (/[1-9]/.test(next as string)) fail('backreference');
      if (next === 'k' && source[i + 2] === '<') fail('backreference');
      out += c + (next as string);
      i += 2;
      if (next === 'b' || next === 'B') {
        if (parseQuantifier(source, i)) fail('quantified assertion');
        continue;
      }
      afterAtom(null);
    } else if (c === '[') {
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < n && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      if (j >= n) fail('unterminated character class');
      out += source.slice(i, j + 1);
      i = j + 1;
      afterAtom(null);
    } else if (c === '(') {
      if (source.startsWith('(?=', i) || source.startsWith('(?!', i) || source.startsWith('(?<=', i) || source.startsWith('(?<!', i)) fail('lookaround');
      if (source.startsWith('(?:', i)) {
        out += '(?:';
        i += 3;
      } else if (source.startsWith('(?<', i)) {
        const close = source.indexOf('>', i);
        if (close === -1) fail('unterminated group name');
        out += source.slice(i, close + 1);
        i = close + 1;
      } else if (source[i + 1] === '?') fail('unsupported group syntax');
      else {
        out += '(';
        i += 1;
      }
      stack.push({ cost: 1, variable: false, alt: false });
    } else if (c === ')') {
      if (stack.length === 1) fail('unbalanced parenthesis');
      const g = stack.pop() as Frame;
      out += ')';
      i += 1;
      afterAtom(g);
    } else if (c === '|') {
      top().alt = true;
      out += c;
      i += 1;
    } else if (c === '^' || c === '$') {
      out += c;
      i += 1;
      if (parseQuantifier(source, i)) fail('quantified assertion');
    } else if (c === '*' || c === '+' || c === '?' || (c === '{' && parseQuantifier(source, i))) {
      fail('nothing to repeat');
    } else {
      out += c;
      i += 1;
      afterAtom(null);
    }
  }
  if (stack.length !== 1) fail('unbalanced parenthesis');
  let re: RegExp;
  try {
    re = new RegExp(out, 'g');
    if (new RegExp(`^(?:${out})$`).test('')) fail('matches the empty string');
  } catch (err) {
    if (err instanceof UnsafePatternError) throw err;
    return fail(`invalid regex: ${(err as Error).message}`);
  }
  return re;
}
