import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Classifier, redactionLabel } from '../../../src/stages/classify/classifier.ts';
import { knownIin } from '../../../src/stages/classify/detectors.ts';
import { SseRedactor, type RedactFn } from '../../../src/families/openai/sse-redact.ts';
import { Prng } from './prng.ts';

const c = new Classifier({ phiTerms: ['diabetes'] });

/** Full-width form of printable ASCII (U+FF01–FF5E; space → U+3000). */
const wide = (s: string): string => s.replace(/[!-~]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0)).replace(/ /g, '\u3000');
/** The same digits in the script whose zero is `zero`. */
const digitsIn = (s: string, zero: number): string => s.replace(/[0-9]/g, (d) => String.fromCodePoint(zero + Number(d)));

function luhnOk(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let v = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  return sum % 10 === 0;
}
/** The check digit that makes `digits` + it Luhn-valid. */
function luhnDigit(digits: string): string {
  for (let d = 0; d <= 9; d++) if (luhnOk(digits + String(d))) return String(d);
  throw new Error('unreachable');
}

/**
 * Encoded values, each inside a sentence: the detector must find it, the
 * finding must be exactly `value` in the original text, and redaction must
 * replace exactly it.
 */
const GH = `ghp_${'a1B2'.repeat(9)}`;
const EVASIONS: ReadonlyArray<{ name: string; value: string; detector: string }> = [
  { name: 'full-width digits and ideographic spaces', value: wide('4111 1111 1111 1111'), detector: 'credit_card' },
  { name: 'Arabic-Indic digits', value: digitsIn('4111 1111 1111 1111', 0x660), detector: 'credit_card' },
  { name: 'extended Arabic-Indic digits, no separators', value: digitsIn('5555555555554444', 0x6f0), detector: 'credit_card' },
  { name: 'Devanagari digits, SSN', value: digitsIn('123-45-6789', 0x966), detector: 'us_ssn' },
  { name: 'mathematical bold digits (astral)', value: digitsIn('4111 1111 1111 1111', 0x1d7ce), detector: 'credit_card' },
  { name: 'digits of mixed scripts', value: '٤१১๑ １1𝟏1 ۱١११ 1111', detector: 'credit_card' },
  { name: 'zero-width spaces between digits', value: '4111\u200b1111\u200b1111\u200b1111', detector: 'credit_card' },
  { name: 'zero-width joiner inside a group', value: '41\u200d11 1111 1111 1111', detector: 'credit_card' },
  { name: 'soft hyphens', value: '4111\u00ad1111\u00ad1111\u00ad1111', detector: 'credit_card' },
  { name: 'word joiner and BOM in an SSN', value: '123\u2060-45-\ufeff6789', detector: 'us_ssn' },
  { name: 'bidi override inside a card', value: '4111 11\u202e11 1111 1111', detector: 'credit_card' },
  {
    name: 'keycap digits (variation selector + enclosing keycap)',
    value: [...'4111111111111111'].map((d) => `${d}\ufe0f\u20e3`).join(''),
    detector: 'credit_card',
  },
  {
    name: 'strike-through combining marks on an SSN',
    value: [...'123-45-6789'].map((ch) => (/\d/.test(ch) ? `${ch}\u0336` : ch)).join(''),
    detector: 'us_ssn',
  },
  { name: 'NBSP between groups', value: '4111\u00a01111\u00a01111\u00a01111', detector: 'credit_card' },
  { name: 'thin spaces between groups', value: '4111\u20091111\u20091111\u20091111', detector: 'credit_card' },
  { name: 'ideographic spaces between groups', value: '4111\u30001111\u30001111\u30001111', detector: 'credit_card' },
  { name: 'a line break between groups', value: '4111 1111\n1111 1111', detector: 'credit_card' },
  { name: 'CRLF between groups', value: '5555\r\n5555\r\n5555\r\n4444', detector: 'credit_card' },
  { name: 'double spaces', value: '4111  1111  1111  1111', detector: 'credit_card' },
  { name: 'dots', value: '4111.1111.1111.1111', detector: 'credit_card' },
  { name: 'slashes', value: '4111/1111/1111/1111', detector: 'credit_card' },
  { name: 'en dashes', value: '4111–1111–1111–1111', detector: 'credit_card' },
  { name: 'a mix of separator runs', value: '5555 - 5555\n5555  4444', detector: 'credit_card' },
  { name: 'Amex grouping over lines', value: '3782\n822463\n10005', detector: 'credit_card' },
  { name: 'SSN with double spaces', value: '123  45  6789', detector: 'us_ssn' },
  { name: 'SSN with dots', value: '123.45.6789', detector: 'us_ssn' },
  { name: 'SSN over lines', value: '123\n45\n6789', detector: 'us_ssn' },
  { name: 'phone with thin spaces', value: '+1\u2009415\u2009555\u20092671', detector: 'phone' },
  { name: 'phone with double spaces', value: '+44  20  7946  0958', detector: 'phone' },
  { name: 'NANP with NBSP and an en dash', value: '(415)\u00a0555\u20132671', detector: 'phone' },
  { name: 'AWS key id with a zero-width space', value: 'AKIA\u200bIOSFODNN7EXAMPLE', detector: 'aws_access_key' },
  { name: 'AWS key id with zero-width characters throughout', value: 'A\u200cK\u200dI\u2060A\ufeffIOSFODNN7EXAMPLE', detector: 'aws_access_key' },
  { name: 'AWS key id in full-width letters', value: wide('AKIAIOSFODNN7EXAMPLE'), detector: 'aws_access_key' },
  { name: 'AWS key id in mathematical bold', value: '𝐀𝐊𝐈𝐀𝐈𝐎𝐒𝐅𝐎𝐃𝐍𝐍𝟕𝐄𝐗𝐀𝐌𝐏𝐋𝐄', detector: 'aws_access_key' },
  { name: 'GitHub token with a zero-width joiner after the prefix', value: `ghp_\u200d${GH.slice(4)}`, detector: 'github_token' },
  { name: 'GitHub token with tag characters inside', value: `gh\u{e0070}p_${GH.slice(4, 10)}\u{e0041}${GH.slice(10)}`, detector: 'github_token' },
  { name: 'OpenAI key with a zero-width space after sk-', value: 'sk-\u200bproj-abcDEF1234567890abcdefGHIJ', detector: 'openai_key' },
  { name: 'OpenAI key with soft hyphens', value: 's\u00adk-proj-abc\u00adDEF1234567890abcdefGHIJ', detector: 'openai_key' },
  { name: 'Anthropic key with a zero-width space inside the prefix', value: 'sk-\u200bant-api03-AbCdEf0123456789xyzXYZ', detector: 'anthropic_key' },
  { name: 'Anthropic key in full-width letters', value: wide('sk-ant-api03-AbCdEf0123456789xyzXYZ'), detector: 'anthropic_key' },
  { name: 'email with a full-width at sign', value: 'bob\uff20example.com', detector: 'email' },
  { name: 'email with a bidi control inside the domain', value: 'bob@exa\u202emple.com', detector: 'email' },
  { name: 'IPv4 in full-width digits and dots', value: wide('192.168.1.10'), detector: 'ip_address' },
  { name: 'IBAN with NBSPs', value: 'DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000', detector: 'iban' },
  { name: 'PHI term with a soft hyphen', value: 'dia\u00adbetes', detector: 'phi_term' },
  { name: 'PHI term in full-width letters', value: wide('Diabetes'), detector: 'phi_term' },
];

test('encoded values are found with the right detector and redacted exactly', async (t) => {
  for (const { name, value, detector } of EVASIONS) {
    await t.test(name, () => {
      const before = 'Please note: ';
      const after = ' — thanks.';
      const text = `${before}${value}${after}`;
      const found = c.scan(text);
      assert.deepEqual(
        found.map((f) => [f.detector, text.slice(f.start, f.end)]),
        [[detector, value]],
        `${name}: ${JSON.stringify(text)}`,
      );
      const out = c.redact(text).text;
      assert.equal(out, `${before}${redactionLabel(detector)}${after}`);
      // …and not found in what is left.
      assert.deepEqual(c.scan(out), []);
    });
  }
});

/** A phone list whose digits, read across the line break, would be a Visa number (415 555 2671 415 55x: 16 digits). */
const PHONE_2 = `415 55${luhnDigit('415555267141555')} 2672`;
/** Prices with four decimals that would add up to a Luhn-valid Visa number. */
const PRICES = `4123.4567 8901.234${luhnDigit('412345678901234')}`;
/** m/d/yyyy dates, one per line, whose digits would be a 13-digit Visa number. */
const DATES = `4/12/2026\n5/1/202${luhnDigit('412202651202')}`;

test('near misses pass untouched', () => {
  // The crafted ones really are Luhn-valid with a known IIN: without the separator rules they would be cards.
  for (const [shape, len] of [
    [`415 555 2671\n${PHONE_2}`, 16],
    [PRICES, 16],
    [DATES, 13],
  ] as const) {
    const digits = shape.replace(/\D/g, '').slice(0, len);
    assert.ok(luhnOk(digits) && knownIin(Number(digits.slice(0, 4)), len), shape);
  }
  const misses = [
    // order numbers
    'Order 402-4567890-1234567 shipped',
    'order no. 4111 1111 1111 1112',
    'Ticket #2026-000123-4567',
    // timestamps
    '2026-12-05T10:11:12.123Z',
    'at 2026-12-05 10:11:12',
    'ts=1733356800123',
    '20261205101112',
    '2026.12.05 10.11.12',
    // ISBNs
    'ISBN 978-3-16-148410-0',
    'ISBN-10 0-306-40615-2',
    'ISBN 978 0 306 40615 7',
    // random 16-digit strings that fail Luhn, however they are written
    '4111111111111112',
    '4111  1111\n1111 1112',
    '4111.1111.1111.1112',
    '4111/1111/1111/1112',
    wide('4111 1111 1111 1112'),
    digitsIn('4111 1111 1111 1112', 0x660),
    '4111\u200b1111\u200b1111\u200b1112',
    // dates
    '2026-12-05',
    '2026/12/05',
    '05.12.2026',
    digitsIn('2026-12-05', 0x660),
    wide('2026-12-05'),
    DATES,
    // numbers that only add up to a card across different kinds of gaps
    PRICES,
    '4.25 3.10 2.75 1.50 0.99 4.12 7.7',
    'v4.1.1.1 build 1111.1111',
    // not an SSN: separators differ, or part of a longer chain
    '123-45 6789',
    '123.45.6789.1',
    '1.123.45.6789',
    '123  45 6789',
  ];
  for (const text of misses) {
    assert.deepEqual(c.scan(text), [], JSON.stringify(text));
    assert.equal(c.redact(text).text, text);
  }
  // phone-like numbers that are not cards: phones, never a card
  for (const text of [
    `415 555 2671\n${PHONE_2}`,
    '+1 415 555 2671\n+1 415 555 2672',
    '+44 20 7946 0958',
    '(415) 555-2671\n(415) 555-2672',
    '415\u00a0555\u00a02671',
  ]) {
    const found = c.scan(text);
    assert.ok(found.length > 0 && found.every((f) => f.detector === 'phone'), `${JSON.stringify(text)}: ${JSON.stringify(found)}`);
  }
});

/** Default-ignorable and format characters, BMP and astral. */
const INVISIBLE: readonly string[] = [
  ...'\u200b\u200c\u200d\u2060\u2061\u2063\ufeff\u00ad\u034f\u061c\u180e\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufe00\ufe0f\u3164',
  '\u{e0001}',
  '\u{e0020}',
  '\u{e0041}',
  '\u{e007f}',
  '\u{e0100}',
  '\u{e01ef}',
  '\u{1d173}',
];
/** Zeros of decimal digit sets in many scripts (BMP and astral). */
const ZEROS: readonly number[] = [
  0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xe50, 0xed0, 0xf20, 0x1040, 0x17e0, 0x1810, 0x1946, 0x1b50, 0xa8d0,
  0xa9d0, 0xff10, 0x104a0, 0x11066, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e950, 0x1fbf0,
];
/** Known-detected values, with digits where the detector has them. */
const VALUES: ReadonlyArray<{ value: string; detector: string }> = [
  { value: '4111 1111 1111 1111', detector: 'credit_card' },
  { value: '5555555555554444', detector: 'credit_card' },
  { value: '123-45-6789', detector: 'us_ssn' },
  { value: 'AKIAIOSFODNN7EXAMPLE', detector: 'aws_access_key' },
  { value: GH, detector: 'github_token' },
  { value: 'bob.smith42@example.com', detector: 'email' },
];
const ITERATIONS = 300;

/** Finds `detector` over exactly `value` in `text` = "note: " + value + " ok", and redaction leaves only the frame. */
function assertCaught(text: string, value: string, detector: string, ctx: string): void {
  const found = c.scan(text);
  assert.deepEqual(
    found.map((f) => [f.detector, text.slice(f.start, f.end)]),
    [[detector, value]],
    `${ctx}: ${JSON.stringify(text)}`,
  );
  assert.equal(c.redact(text).text, `note: ${redactionLabel(detector)} ok`, ctx);
}

test('property: invisible characters inserted anywhere inside a value are found and redacted with it', () => {
  assert.ok(INVISIBLE.every((ch) => /^[\p{Default_Ignorable_Code_Point}\p{Cf}]$/u.test(ch)));
  const rng = new Prng(20261205);
  for (const { value, detector } of VALUES) {
    for (let it = 0; it < ITERATIONS; it++) {
      const cps = [...value];
      // 1–6 insertions strictly inside the value (between two of its code points), so the frame stays as it is
      const k = 1 + rng.int(6);
      for (let j = 0; j < k; j++) cps.splice(1 + rng.int(cps.length - 1), 0, rng.pick(INVISIBLE));
      const v = cps.join('');
      assertCaught(`note: ${v} ok`, v, detector, `seed ${rng.seed} #${it} ${detector}`);
    }
  }
});

test('property: ASCII digits replaced by decimal digits of other scripts are found and redacted whole', () => {
  assert.ok(ZEROS.every((z) => /^\p{Nd}$/u.test(String.fromCodePoint(z)) && /^\p{Nd}$/u.test(String.fromCodePoint(z + 9))));
  const rng = new Prng(0xd191);
  for (const { value, detector } of VALUES) {
    for (let it = 0; it < ITERATIONS; it++) {
      const v = value.replace(/[0-9]/g, (d) => (rng.next() < 0.6 ? String.fromCodePoint(rng.pick(ZEROS) + Number(d)) : d));
      assertCaught(`note: ${v} ok`, v, detector, `seed ${rng.seed} #${it} ${detector}`);
    }
  }
});

test('property: all of it at once (other digits, invisible characters, combining marks on letters and digits, full-width forms)', () => {
  const rng = new Prng(7);
  const MARKS = ['\u0301', '\u0336', '\u20e3', '\u0323'];
  for (const { value, detector } of VALUES) {
    for (let it = 0; it < ITERATIONS; it++) {
      let v = '';
      for (const ch of value) {
        let x = ch;
        const r = rng.next();
        if (/[0-9]/.test(ch) && r < 0.3) x = String.fromCodePoint(rng.pick(ZEROS) + Number(ch));
        else if (/[!-~]/.test(ch) && r < 0.5) x = wide(ch);
        if (/[A-Za-z0-9]/.test(ch) && rng.next() < 0.2) x += rng.pick(MARKS);
        if (v !== '' && rng.next() < 0.15) v += rng.pick(INVISIBLE);
        v += x;
      }
      assertCaught(`note: ${v} ok`, v, detector, `seed ${rng.seed} #${it} ${detector}`);
    }
  }
});

test('stream redaction (SSE hold-back) over the normalised classifier: an encoded card split over token events', () => {
  const redact: RedactFn = (text) => {
    const found = c.scan(text);
    return { text: c.redact(text, found).text, spans: found };
  };
  const ev = (content: string): string =>
    `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
  const tokens = ['My card is ', '４１１１\u200b', '1111', '\u00a0١١١١', '\u200d 1111', '\u200b and ', 'AKIA\u200b', 'IOSFODNN7EXAMPLE', ' bye'];
  const r = new SseRedactor(redact, 32);
  let out = '';
  for (const tok of tokens) out += r.push(Buffer.from(ev(tok)), false).toString();
  out += r.push(Buffer.from('data: [DONE]\n\n'), true).toString();
  let text = '';
  for (const block of out.split('\n\n')) {
    if (!block.startsWith('data: ') || block === 'data: [DONE]') continue;
    text += (JSON.parse(block.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '';
  }
  // The zero-width space right after the card goes with it (removed characters belong to what precedes them).
  assert.equal(text, 'My card is [REDACTED:CREDIT_CARD] and [REDACTED:AWS_ACCESS_KEY] bye');
});

test('custom patterns and terms see the normalised text too; offsets stay the original ones', () => {
  const custom = new Classifier({
    custom: [
      { name: 'employee_id', dataClass: 'PII', pattern: 'EMP-\\d{6}' },
      { name: 'codename', dataClass: 'SECRET', terms: ['blue falcon'] },
    ],
  });
  const text = `id ${wide('EMP-123456')}, EMP\u2011١٢٣٤٥٦ and EMP-12\u200b3456 on b\u00adlue\u00a0fal\u200dcon`;
  assert.deepEqual(
    custom.scan(text).map((f) => [f.detector, text.slice(f.start, f.end)]),
    [
      ['employee_id', wide('EMP-123456')],
      ['employee_id', 'EMP\u2011١٢٣٤٥٦'],
      ['employee_id', 'EMP-12\u200b3456'],
      ['codename', 'b\u00adlue\u00a0fal\u200dcon'],
    ],
  );
  assert.equal(custom.redact(text).text, 'id [REDACTED:EMPLOYEE_ID], [REDACTED:EMPLOYEE_ID] and [REDACTED:EMPLOYEE_ID] on [REDACTED:CODENAME]');
});
