import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_DETECTOR_NAMES, Classifier, type CustomDetectorConfig } from '../../src/stages/classify/classifier.ts';
import { MAX_EXPANSION, normalizeForDetection } from '../../src/stages/classify/normalize.ts';
import { compileSafePattern } from '../../src/stages/classify/safe-regex.ts';

const N = 100_000;
const BUDGET_MS = 50;
const rep = (s: string, n = N): string => s.repeat(Math.ceil(n / s.length)).slice(0, n);

/** Adversarial 100 kB inputs aimed at every detector's weak spots. */
const SHAPES: Record<string, (n: number) => string> = {
  digits: (n) => rep('4', n),
  ones: (n) => rep('1', n),
  digitSpace: (n) => rep('4 ', n),
  digitDash: (n) => rep('4-', n),
  digitSpace2: (n) => rep('41 ', n),
  a: (n) => 'a'.repeat(n),
  atHeavy: (n) => rep('@a', n),
  atOnly: (n) => '@'.repeat(n),
  atDot: (n) => rep('a.@', n),
  emailRun: (n) => `${'a'.repeat(n / 2)}@${'b'.repeat(n / 2 - 1)}`,
  domDots: (n) => rep('a@b.', n),
  begin: (n) => rep('-----BEGIN ', n),
  beginPk: (n) => rep('-----BEGIN RSA PRIVATE KEY-----', n),
  beginEnd: (n) => rep('-----BEGIN PRIVATE KEY-----\n-----END ', n),
  b64dots: (n) => rep('eyJhbGciOi.', n),
  eyJ: (n) => rep('eyJ', n),
  b64run: (n) => `eyJ${rep('QUJD', n - 3)}`,
  jwtish: (n) => rep('eyJhbGciOiJIUzI1NiJ9.e30.', n),
  xEq: (n) => `x=${rep('aB3$k9', n - 2)}`,
  pwEq: (n) => `password=${rep('aB3$k9Zq', n - 9)}`,
  pwRepeat: (n) => rep('password=', n),
  colonsEq: (n) => rep('token:=', n),
  hexColon: (n) => rep('a:', n),
  hexGroups: (n) => rep('ab12:', n),
  colons: (n) => ':'.repeat(n),
  ipDots: (n) => rep('1.', n),
  ip255: (n) => rep('255.', n),
  ibanDigits: (n) => `DE89${rep('1', n - 4)}`,
  ibanRepeat: (n) => rep('DE89 ', n),
  ibanUpper: (n) => rep('GB82 WEST ', n),
  sk: (n) => rep('sk-', n),
  skRun: (n) => `sk-${rep('a', n - 3)}`,
  skAnt: (n) => rep('sk-ant-', n),
  ghp: (n) => rep('ghp_', n),
  ghRun: (n) => `github_pat_${rep('a_', n - 11)}`,
  plus: (n) => rep('+1 ', n),
  paren: (n) => rep('(415) ', n),
  ssn: (n) => rep('123-45-', n),
  ssnLabel: (n) => rep('SSN ', n),
  mrn: (n) => rep('MRN: 1', n),
  npi: (n) => rep('NPI 1', n),
  akia: (n) => rep('AKIA', n),
  xox: (n) => rep('xoxb-', n),
  aws: (n) => rep('aws_secret_access_key=', n),
  words: (n) => rep('type 2 diabetes ', n),
  spaces: (n) => `type${' '.repeat(n - 4)}`,
  unicode: (n) => rep('é😀日', n),
  // What the normaliser (normalize.ts) removes, expands or folds, alone and between digits and token characters.
  zeroWidth: (n) => '\u200b'.repeat(n),
  zeroWidthMix: (n) => rep('\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066\ufe0f', n),
  tags: (n) => rep('\u{e0041}\u{e0001}', n),
  marks: (n) => `a${'\u0301'.repeat(n - 1)}`,
  markDigits: (n) => rep('4\u0336\u20e3', n),
  zwDigits: (n) => rep('4\u200b', n),
  zwSpaceDigits: (n) => rep('4\u200b ', n),
  zwAkia: (n) => rep('AKIA\u200b', n),
  zwSk: (n) => rep('s\u200bk\u200b-', n),
  zwEmail: (n) => rep('a\u200b@\u200bb\u200b.', n),
  fullDigits: (n) => rep('\uff14\u3000', n),
  fullSk: (n) => rep('\uff53\uff4b\uff0d', n),
  arabicDigits: (n) => rep('\u0664\u00a0', n),
  mathDigits: (n) => rep('\u{1d7dc}', n),
  ligatures: (n) => rep('\ufb01', n),
  expandDigits: (n) => rep('\u2469', n),
  expandDots: (n) => rep('\u2488@', n),
  keepWide: (n) => rep('\ufdfa\u3316', n),
  nbsp: (n) => rep('4\u00a0\u2009', n),
  sepRuns: (n) => rep('4 \n.', n),
  sepDots: (n) => rep('4111.', n),
  sepSlashes: (n) => rep('41/', n),
  sepDouble: (n) => rep('4111  ', n),
  sepLines: (n) => rep('415 555 2671\n', n),
  ssnDots: (n) => rep('123.45.', n),
  ssnLines: (n) => rep('123\n45\n', n),
  phoneRuns: (n) => rep('+1  415  ', n),
  emoji: (n) => rep('👩\u200d💻\u{1f3fd}', n),
};

/**

 * CPU time of `fn` on this process (milliseconds): what the scan itself costs, unlike wall time, which a busy machine
 * (the rest of the suite running in parallel) inflates.
 */
function cpuMs(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/**
 * Detectors scan the normalised text (normalize.ts), which is up to MAX_EXPANSION × the input when the
 * normaliser expands it ("ﬁ" → "fi"): time is compared per 100 kB scanned, so an expanded input gets the budget
 * of the text the detectors actually read. Inputs that are not expanded (all the others) keep the plain budget.
 */
function worstCase(c: Classifier): { ms: number; shape: string } {
  // warm the JIT on small inputs first: we measure algorithmic cost, not compilation
  for (const make of Object.values(SHAPES)) c.scan(make(2_000));
  let worst = { ms: 0, shape: '' };
  for (const [shape, make] of Object.entries(SHAPES)) {
    const text = make(N);
    assert.equal(text.length >= N - 1, true);
    const scale = Math.max(1, normalizeForDetection(text).text.length / text.length);
    assert.ok(scale <= MAX_EXPANSION, shape);
    let best = Infinity; // best of 2 to filter noise; a super-linear scan is slow every time
    for (let k = 0; k < 2; k++)
      best = Math.min(
        best,
        cpuMs(() => c.scan(text)),
      );
    if (best / scale > worst.ms) worst = { ms: best / scale, shape: scale > 1 ? `${shape} (${scale.toFixed(1)}× when normalised)` : shape };
  }
  return worst;
}

const PHI = ['diabetes', 'type 2 diabetes', `${'a'.repeat(40)}b`];

for (const name of BUILTIN_DETECTOR_NAMES) {
  test(`ReDoS: ${name} scans every 100 kB adversarial input in < ${BUDGET_MS} ms`, (t) => {
    const c = new Classifier({ phiTerms: PHI, only: [name] });
    const w = worstCase(c);
    t.diagnostic(`${name}: worst ${w.ms.toFixed(2)} ms on ${w.shape}`);
    assert.ok(w.ms < BUDGET_MS, `${name}: ${w.ms.toFixed(1)} ms on ${w.shape}`);
  });
}

test('ReDoS: allowed custom patterns and terms stay linear', (t) => {
  const custom: CustomDetectorConfig[] = [
    { name: 'acme_token', dataClass: 'SECRET', pattern: 'ACME-[A-Za-z0-9]+' },
    { name: 'word_at', dataClass: 'PII', pattern: '[a-z]+@corp' },
    { name: 'ranges', dataClass: 'PII', pattern: '[A-Z]{2,6}-\\d{4,10}' },
    { name: 'dotted', dataClass: 'PII', pattern: '(?:\\d{1,3}\\.){2}\\d{1,3}' },
    { name: 'terms', dataClass: 'PHI', terms: ['aaaa aaaa', 'a'.repeat(50)] },
  ];
  const c = new Classifier({ custom });
  for (const { name } of custom) {
    const w = worstCase(new Classifier({ custom, only: [name] }));
    t.diagnostic(`custom ${name}: worst ${w.ms.toFixed(2)} ms on ${w.shape}`);
    assert.ok(w.ms < BUDGET_MS, `${name}: ${w.ms.toFixed(1)} ms on ${w.shape}`);
  }
  // a 100 kB run just under what the custom pattern needs
  const ms = cpuMs(() => {
    c.scan(`ACME-${'a'.repeat(N)}`);
    c.scan('a'.repeat(N));
    c.scan(`${'A'.repeat(N)}-`);
  });
  assert.ok(ms < 3 * BUDGET_MS, `${ms.toFixed(1)} ms`);
  // long matches are still fully redacted (as consecutive capped pieces)
  const r = c.redact(`ACME-${'x'.repeat(200)}`);
  assert.ok(!r.text.includes('x'), r.text);
});

test('ReDoS: full classifier (all detectors) over a mixed adversarial corpus stays fast', (t) => {
  const c = new Classifier({ phiTerms: PHI });
  const w = worstCase(c);
  t.diagnostic(`all detectors: worst ${w.ms.toFixed(2)} ms on ${w.shape}`);
  assert.ok(w.ms < 4 * BUDGET_MS, `all: ${w.ms.toFixed(1)} ms on ${w.shape}`);
});

test('unsafe custom patterns are rejected at construction, naming the pattern', async (t) => {
  const unsafe: Record<string, string> = {
    nested_plus: '(a+)+$',
    nested_star: '(a*)*b',
    nested_bounded: '(a{1,5}){1,5}',
    nested_class: '([a-z]+)*x',
    alt_star: '(a|a)*b',
    alt_plus: '(?:foo|foobar)+',
    backref: '(a)\\1',
    named_backref: '(?<x>a)\\k<x>',
    lookahead: 'a(?=b)',
    neg_lookahead: 'a(?!b)',
    lookbehind: '(?<=a)b',
    neg_lookbehind: '(?<!a)b',
    double_unbounded: '\\w+\\w+x',
    two_runs: '[A-Z]+-\\d+',
    huge_bound: 'a{1,5000}',
    empty: '',
    matches_empty: 'a*',
    stacked: 'a**',
    invalid: '[a-',
    unbalanced: '(ab',
    modifiers: '(?i:a)',
  };
  for (const [name, pattern] of Object.entries(unsafe)) {
    await t.test(`refused: ${name} ${JSON.stringify(pattern)}`, () => {
      assert.throws(
        () => new Classifier({ custom: [{ name, dataClass: 'PII', pattern }] }),
        (err: Error) => err.message.includes(`"${name}"`),
        `${name}: ${pattern}`,
      );
    });
  }
  // allowed: fixed repetition of a group with a fixed inner count, classes with quantifier chars, escapes
  for (const p of ['(?:\\d{3}-){2}\\d{4}', 'EMP-\\d{6}', '[+*?]{1,3}x', 'a\\+b', 'x{2}y?', '(?<id>ID)-\\d{4,8}', 'foo|bar', '\\bTKT-[A-Z]{3}\\b']) {
    await t.test(`allowed: ${JSON.stringify(p)}`, () => {
      assert.doesNotThrow(() => compileSafePattern('ok', p), p);
    });
  }
  assert.equal(compileSafePattern('r', 'A[a-z]+x?').source, 'A[a-z]{1,32}x?');
  assert.equal(compileSafePattern('r', 'A\\d*?B').source, 'A\\d{0,31}?B');
  assert.equal(compileSafePattern('r', 'A\\d{3,}').source, 'A\\d{3,34}');
  assert.throws(() => compileSafePattern('r', '[A-Z]{2,10}-\\d{4,12}'), /backtracking/);
});
