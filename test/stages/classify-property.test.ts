import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Classifier, redactionLabel, type Finding } from '../../src/stages/classify/classifier.ts';

const c = new Classifier({
  phiTerms: ['diabetes', 'type 2 diabetes', 'hiv'],
  custom: [
    { name: 'emp_id', dataClass: 'PII', pattern: 'EMP-\\d{6}' },
    { name: 'codename', dataClass: 'SECRET', terms: ['blue falcon'] },
  ],
});

/** Fragments that hit (or nearly hit) every detector, so generated text is not only noise. */
const FRAGMENTS = [
  'bob@example.com',
  'a@b',
  '@',
  '+1 415 555 2671',
  '(415) 555-2671',
  '123-45-6789',
  '666-12-3456',
  'SSN: 123456789',
  'DE89 3704 0044 0532 0130 00',
  'GB82WEST12345698765432',
  '192.168.1.1',
  '999.1.1.1',
  '2001:db8::1',
  'fe80::1ff:fe23:4567:890a',
  '4111 1111 1111 1111',
  '4111111111111112',
  '378282246310005',
  'MRN: 1234567',
  'NPI 1234567893',
  'Type 2 Diabetes',
  'HIV',
  'AKIAIOSFODNN7EXAMPLE',
  `ghp_${'a1B2'.repeat(9)}`,
  'sk-proj-abcDEF1234567890abcdefGHIJ',
  'sk-ant-api03-AbCdEf0123456789xyz',
  'xoxb-123456789012-abcdefABCDEF',
  '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
  '-----BEGIN ',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln',
  'password=Xk9#mQ2$vL8pR4wZ',
  'token: ',
  '=',
  ':',
  'EMP-123456',
  'blue falcon',
  '[REDACTED:EMAIL]',
  ' ',
  '\n',
  '-',
  '.',
  '😀',
  'é',
  '0',
  '9',
];
const textArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc
    .array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 4 })), { maxLength: 25 })
    .map((xs) => xs.join('')),
);

function wellFormed(text: string, fs: readonly Finding[]): void {
  let prevEnd = 0;
  for (const f of fs) {
    assert.ok(Number.isInteger(f.start) && Number.isInteger(f.end));
    assert.ok(f.start >= 0 && f.end <= text.length && f.start < f.end, `bounds ${f.start}-${f.end} of ${text.length}`);
    assert.ok(f.start >= prevEnd, 'sorted and non-overlapping');
    prevEnd = f.end;
  }
}

test('property: scan never throws; findings are in bounds, sorted, non-overlapping', () => {
  fc.assert(
    fc.property(textArb, (text) => {
      wellFormed(text, c.scan(text));
    }),
    { numRuns: 2000 },
  );
});

test('property: redaction replaces exactly the findings and re-scanning finds nothing at the placeholders', () => {
  fc.assert(
    fc.property(textArb, (text) => {
      const { text: out, findings } = c.redact(text);
      wellFormed(text, findings);
      // rebuild the placeholder positions in the redacted text
      const holes: Array<{ start: number; end: number; detector: string }> = [];
      let pos = 0;
      let delta = 0;
      for (const f of findings) {
        const label = redactionLabel(f.detector);
        const start = f.start + delta;
        assert.equal(out.slice(start, start + label.length), label);
        assert.equal(out.slice(pos + delta, start), text.slice(pos, f.start));
        holes.push({ start, end: start + label.length, detector: f.detector });
        delta += label.length - (f.end - f.start);
        pos = f.end;
      }
      assert.equal(out.slice(pos + delta), text.slice(pos));
      for (const g of c.scan(out)) {
        for (const h of holes) {
          const overlaps = g.start < h.end && h.start < g.end;
          assert.ok(!(overlaps && g.detector === h.detector), `re-detected ${g.detector} at ${g.start}-${g.end} in ${JSON.stringify(out)}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
});
