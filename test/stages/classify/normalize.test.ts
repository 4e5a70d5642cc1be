import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_EXPANSION, normalizeForDetection } from '../../../src/stages/classify/normalize.ts';
import { Prng } from './prng.ts';

const norm = (s: string): string => normalizeForDetection(s).text;
const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Cf}]$/u;
const SPACE = /^\p{Z}$/u;
const DIGIT = /^\p{Nd}$/u;
const DASH = /^\p{Pd}$/u;
const MARK = /^\p{M}$/u;
const CONTROL = /^\p{Cc}$/u;

test('printable ASCII and text with nothing to fold come back as the same string, unmapped', () => {
  for (const t of ['', 'The quarterly report: 4111 1111 1111 1111, bob@example.com.\n\tOK\r\n', 'Grüße « “quoted” » ’s 日本語 😀 é ñ ÅÉ']) {
    const n = normalizeForDetection(t);
    assert.equal(n.text, t);
    assert.equal(n.unchanged, true);
    assert.deepEqual(n.toOriginal(0, t.length), { start: 0, end: t.length });
  }
});

test('every code point of Unicode: removed, a space, a digit, a dash, NFKC, or itself', () => {
  const counts = { removed: 0, space: 0, digit: 0, dash: 0, nfkc: 0, capped: 0 };
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp === 0xd800) cp = 0xe000; // lone surrogates: see the mapping test
    const ch = String.fromCodePoint(cp);
    const got = norm(ch);
    const nf = ch.normalize('NFKC');
    const at = hex(cp);
    if (cp === 9 || cp === 10 || cp === 13) assert.equal(got, ch, at);
    else if (cp === 11 || cp === 12 || cp === 0x85) assert.equal(got, ' ', `${at}: VT, FF and NEL are line breaks`);
    else if (IGNORABLE.test(ch) || CONTROL.test(ch)) {
      assert.equal(got, '', `${at} is removed`);
      counts.removed++;
    } else if (SPACE.test(ch)) {
      assert.equal(got, ' ', `${at} is a space`);
      counts.space++;
    } else if (DIGIT.test(ch)) {
      assert.match(got, /^[0-9]$/, `${at} is a digit`);
      counts.digit++;
    } else if (DASH.test(ch)) {
      assert.equal(got, '-', `${at} is a dash`);
      counts.dash++;
    } else if (nf !== ch && nf.length <= MAX_EXPANSION) {
      // What NFKC gives, then folded the same way: ASCII results exactly, the others changed.
      if (/^[\x20-\x7e]+$/.test(nf)) assert.equal(got, nf, at);
      else assert.notEqual(got, ch, `${at} changes under NFKC`);
      counts.nfkc++;
    } else if (nf !== ch) {
      assert.equal(got, ch, `${at}: NFKC longer than ${MAX_EXPANSION} units is not applied`);
      counts.capped++;
    } else assert.equal(got, ch, `${at} stays`);
  }
  // Each branch was taken by many code points (a wrong property name would leave one empty).
  for (const [k, v] of Object.entries(counts)) assert.ok(v > 10, `${k}: ${v}`);
});

test('digits of every numbering system ICU knows fold to the right ASCII digit', () => {
  let systems = 0;
  for (const ns of Intl.supportedValuesOf('numberingSystem')) {
    const fmt = new Intl.NumberFormat(`en-u-nu-${ns}`, { useGrouping: false });
    if (fmt.resolvedOptions().numberingSystem !== ns) continue;
    const s = fmt.format(9876543210);
    const cps = [...s];
    if (cps.length !== 10 || !cps.every((c) => DIGIT.test(c))) continue; // algorithmic systems (roman, hanidec…)
    systems++;
    assert.equal(norm(s), '9876543210', `${ns}: ${s}`);
  }
  assert.ok(systems >= 40, `${systems} decimal numbering systems`);
});

test('the characters people hide values with', () => {
  const removed = [
    0x200b, // zero-width space
    0x200c, // zero-width non-joiner
    0x200d, // zero-width joiner
    0x2060, // word joiner
    0x00ad, // soft hyphen
    0xfeff, // BOM / zero-width no-break space
    0x200e,
    0x200f, // LRM, RLM
    0x202a,
    0x202b,
    0x202c,
    0x202d,
    0x202e, // bidi embeddings/overrides
    0x2066,
    0x2067,
    0x2068,
    0x2069, // bidi isolates
    0x180e, // Mongolian vowel separator
    0x034f, // combining grapheme joiner
    0xfe00,
    0xfe0f, // variation selectors
    0xe0100,
    0xe01ef, // variation selectors supplement
    0xe0001,
    0xe0041,
    0xe007f, // tag characters
    0x061c, // Arabic letter mark
    0x3164, // Hangul filler
  ];
  for (const cp of removed) assert.equal(norm(`4${String.fromCodePoint(cp)}2`), '42', hex(cp));
  for (const cp of [0x00a0, 0x2002, 0x2007, 0x2009, 0x200a, 0x202f, 0x205f, 0x3000, 0x1680, 0x2028, 0x2029]) {
    assert.equal(norm(`4${String.fromCodePoint(cp)}2`), '4 2', hex(cp));
  }
  for (const cp of [0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0xfe58, 0xfe63, 0xff0d])
    assert.equal(norm(`4${String.fromCodePoint(cp)}2`), '4-2', hex(cp));
  assert.equal(norm('ＡＫＩＡ４１１１ｓｋ－'), 'AKIA4111sk-');
  assert.equal(norm('𝐀𝐊𝐈𝐀 𝟒𝟏𝟏𝟏 ①②③ ²³'), 'AKIA 4111 123 23');
  assert.equal(norm('٤١١١ ۴۱۱۱ ४१११ ৪১১১ ๔๑๑๑ ４１１１'), '4111 4111 4111 4111 4111 4111');
  assert.equal(norm('ﬁle ⑩ ™ ㎏'), 'file 10 TM kg');
  // longer than MAX_EXPANSION: left alone
  assert.equal(norm('ﬃ ⑽ … ﷺ'), 'ﬃ ⑽ … ﷺ');
});

test('combining marks: removed after an ASCII letter or digit (also after removed ones), kept elsewhere', () => {
  assert.equal(norm('4\u0336 1\u0336\u0336 A\u0301 ４\u20e3'), '4 1 A 4');
  assert.equal(norm('4\ufe0f\u20e3'), '4', 'keycap: variation selector removed, enclosing keycap after a digit removed');
  assert.equal(norm('4\u200b\u0301'), '4', 'a mark after an invisible character after a digit');
  assert.equal(norm('é\u0301 क\u0301 -\u0301'), 'é\u0301 क\u0301 -\u0301');
  assert.equal(norm('\u0301\u0301a'), '\u0301\u0301a', 'leading marks stay');
  // every combining mark, after 'a'
  for (let cp = 0x300; cp <= 0x1e94a; cp++) {
    const ch = String.fromCodePoint(cp);
    if (MARK.test(ch) && !IGNORABLE.test(ch) && ch.normalize('NFKC') === ch) assert.equal(norm(`a${ch}`), 'a', hex(cp));
  }
});

/** Code points to build random strings from: ASCII, NFKC-changing, astral, marks, invisible, spaces, lone surrogates. */
const POOL: readonly string[] = [
  ...'abcXYZ019 -.@_',
  'ﬁ',
  'ﬀ',
  'Ａ',
  '４',
  '①',
  '⑩',
  '㎏',
  '™',
  '½',
  'ﬃ',
  '𝟒',
  '𝐀',
  '٤',
  '😀',
  '👩',
  '𐐷',
  '\u0301',
  '\u20e3',
  '\u0336',
  '\u200b',
  '\u200d',
  '\u00ad',
  '\ufe0f',
  '\u{e0041}',
  '\u202e',
  '\u00a0',
  '\u3000',
  '\u2013',
  'é',
  'e\u0301',
  '\ud800',
  '\udc00',
];

function boundaryOk(s: string, i: number): boolean {
  return !(i > 0 && i < s.length && isLow(s.charCodeAt(i)) && isHigh(s.charCodeAt(i - 1)));
}

test('offset mapping: random spans map to code-point boundaries inside the original, monotonically, covering what produced them', () => {
  const rng = new Prng(0x5eed1);
  let spans = 0;
  for (let iter = 0; iter < 400; iter++) {
    let original = '';
    const len = 1 + rng.int(30);
    for (let k = 0; k < len; k++) original += rng.pick(POOL);
    const n = normalizeForDetection(original);
    const N = n.text.length;
    if (N === 0) continue;
    const ctx = `seed ${rng.seed} iteration ${iter}: ${JSON.stringify(original)} → ${JSON.stringify(n.text)}`;
    for (let k = 0; k < 20; k++) {
      const s = rng.int(N);
      const e = s + 1 + rng.int(N - s);
      const o = n.toOriginal(s, e);
      spans++;
      assert.ok(o.start >= 0 && o.start < o.end && o.end <= original.length, `${ctx} [${s},${e}) → [${o.start},${o.end})`);
      assert.ok(boundaryOk(original, o.start) && boundaryOk(original, o.end), `${ctx} [${s},${e}) → [${o.start},${o.end}) splits a pair`);
      // What the original span normalises to contains the normalised span (nothing that produced it was left out).
      assert.ok(norm(original.slice(o.start, o.end)).includes(n.text.slice(s, e)), `${ctx} [${s},${e}) → [${o.start},${o.end})`);
      // Growing a span never shrinks its image.
      const e2 = e + rng.int(N - e + 1);
      const s2 = rng.int(s + 1);
      const o2 = n.toOriginal(s2, e2);
      assert.ok(o2.start <= o.start && o2.end >= o.end, `${ctx} monotonic`);
    }
    // The whole normalised text maps to the original from its first kept code point to the end of its last (and what follows it).
    const all = n.toOriginal(0, N);
    assert.ok(norm(original.slice(0, all.start)) === '', `${ctx}: only removed characters before the first kept one`);
  }
  assert.ok(spans > 5000);
});

test('offset mapping: exact spans', () => {
  const cases: Array<[string, number, number, string]> = [
    // [original, normalised start, normalised end, expected original span]
    ['x ４１ y', 2, 4, '４１'],
    ['x 𝟒𝟏 y', 2, 4, '𝟒𝟏'],
    ['x 4\u200b1 y', 2, 4, '4\u200b1'],
    ['x 41\u200b\u200b y', 2, 4, '41\u200b\u200b'], // removed characters right after a value go with it
    ['\u200b\u200b41 y', 0, 2, '41'], // …but not the ones before it
    ['x ﬁle y', 2, 6, 'ﬁle'],
    ['x ﬁle y', 3, 6, 'ﬁle'], // half a ligature is the whole ligature
    ['x ﬁle y', 2, 3, 'ﬁ'],
    ['😀\u200b4', 0, 2, '😀\u200b'],
    ['😀\u200b4', 1, 2, '😀\u200b'], // never half a pair
    ['a\u0301\u0301b', 0, 1, 'a\u0301\u0301'],
    ['4\ufe0f\u20e31\ufe0f\u20e3', 0, 2, '4\ufe0f\u20e31\ufe0f\u20e3'],
  ];
  for (const [original, s, e, want] of cases) {
    const o = normalizeForDetection(original).toOriginal(s, e);
    assert.equal(original.slice(o.start, o.end), want, `${JSON.stringify(original)} [${s},${e})`);
  }
});

test('normalisation is linear and the normalised text at most MAX_EXPANSION × the original', () => {
  const N = 100_000;
  const rep = (s: string): string => s.repeat(Math.ceil(N / s.length)).slice(0, N);
  // Every code point that changes, cycled.
  let every = '';
  for (let cp = 0x80; cp <= 0x10ffff; cp++) {
    if (cp === 0xd800) cp = 0xe000;
    const ch = String.fromCodePoint(cp);
    if (ch.normalize('NFKC') !== ch || /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\p{Z}\p{Nd}\p{Pd}]/u.test(ch)) every += ch;
  }
  for (const t of [rep('\u200b'), rep('4\u200b'), rep('ﬁ'), rep('⑩'), rep('𝟒'), rep('a\u0301'), rep('\u{e0041}'), rep(every), rep('😀\u200d')]) {
    const n = normalizeForDetection(t);
    assert.ok(n.text.length <= MAX_EXPANSION * t.length);
    // CPU time of this thread, best of 3 (other processes on the machine only add wall time); a quadratic pass over
    // 100 000 characters would take seconds, a linear one takes a few milliseconds.
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const t0 = process.threadCpuUsage();
      const m = normalizeForDetection(t);
      m.toOriginal(0, m.text.length);
      const used = process.threadCpuUsage(t0);
      best = Math.min(best, (used.user + used.system) / 1000);
    }
    assert.ok(best < 150, `${best.toFixed(1)} ms of CPU on ${JSON.stringify(t.slice(0, 8))}…`);
  }
});
