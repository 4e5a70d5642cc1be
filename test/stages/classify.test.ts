import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Classifier, summarize, redactionLabel, type Finding } from '../../src/stages/classify/classifier.ts';

const all = new Classifier({ phiTerms: ['diabetes', 'type 2 diabetes', 'HIV', 'schizophrénie'] });

function hits(text: string, c: Classifier = all): Array<[string, string]> {
  return c.scan(text).map((f) => [f.detector, text.slice(f.start, f.end)]);
}
function only(name: string, text: string, c: Classifier = all): string[] {
  return hits(text, c)
    .filter(([d]) => d === name)
    .map(([, s]) => s);
}

function jwt(header: object, payload: object = { sub: 'alice' }): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b(header)}.${b(payload)}.c2lnbmF0dXJlX2J5dGVz`;
}

test('email: true positives and near misses', () => {
  assert.deepEqual(only('email', 'mail bob.smith+tag@mail.example.co.uk, or alice@example.com.'), ['bob.smith+tag@mail.example.co.uk', 'alice@example.com']);
  assert.deepEqual(only('email', 'a@b, @example.com, user@localhost, x@y.c, foo@-bar.com, twitter @handle, a@@b.com'), []);
  assert.deepEqual(only('email', '.leading.dot@example.org'), ['leading.dot@example.org']);
});

test('phone: E.164 and NANP formats; bare digit runs and short numbers are not phones', () => {
  assert.deepEqual(only('phone', 'call +14155552671 or +44 20 7946 0958 or (415) 555-2671 or 415-555-2671 or 415.555.2671 or 1-800-555-0199'), [
    '+14155552671',
    '+44 20 7946 0958',
    '(415) 555-2671',
    '415-555-2671',
    '415.555.2671',
    '1-800-555-0199',
  ]);
  assert.deepEqual(only('phone', 'order 4155552671, v1.2.3, 123-456-7890 (area 1xx), 415-155-2671, +123, +0123456789'), []);
});

test('us_ssn: formats and validity ranges; bare 9 digits only when labelled', () => {
  assert.deepEqual(only('us_ssn', 'ssn 123-45-6789 and 078 05 1120'), ['123-45-6789', '078 05 1120']);
  assert.deepEqual(only('us_ssn', 'SSN: 123456789; social security number 219099999'), ['123456789', '219099999']);
  assert.deepEqual(
    only('us_ssn', '000-12-3456 666-12-3456 900-12-3456 999-12-3456 123-00-4567 123-45-0000 123456789 123-45 6789 1123-45-6789 123-45-67890'),
    [],
  );
  assert.deepEqual(only('us_ssn', 'SSN: 666123456'), []);
});

test('iban: mod-97, spaces allowed, country lengths; wrong check digits rejected', () => {
  assert.deepEqual(only('iban', 'pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 today'), ['DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432']);
  assert.deepEqual(only('iban', 'FR14 2004 1010 0505 0001 3M02 606.'), ['FR14 2004 1010 0505 0001 3M02 606']);
  assert.deepEqual(only('iban', 'DE88 3704 0044 0532 0130 00, GB82WEST12345698765433, DE89370400440532013000X, DE8937040044'), []);
});

test('ip_address: IPv4 octet range and IPv6 forms', () => {
  assert.deepEqual(only('ip_address', 'from 192.168.1.10, 10.0.0.1 and 255.255.255.255.'), ['192.168.1.10', '10.0.0.1', '255.255.255.255']);
  assert.deepEqual(only('ip_address', '999.1.1.1 256.0.0.1 1.2.3 1.2.3.4.5 v1.2.3.4'), []);
  assert.deepEqual(only('ip_address', 'v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334, fe80::1ff:fe23:4567:890a and 2001:db8::1.'), [
    '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
    'fe80::1ff:fe23:4567:890a',
    '2001:db8::1',
  ]);
  assert.deepEqual(only('ip_address', 'std::vector 12:30:45 00:1A:2B:3C:4D:5E 1::2::3 12345::1 ::'), []);
});

test('credit_card: Luhn + IIN, separators; invalid numbers rejected', () => {
  assert.deepEqual(only('credit_card', 'visa 4111 1111 1111 1111, mc 5555-5555-5555-4444, amex 378282246310005, disc 6011111111111117, mc2 2223003122003222'), [
    '4111 1111 1111 1111',
    '5555-5555-5555-4444',
    '378282246310005',
    '6011111111111117',
    '2223003122003222',
  ]);
  assert.deepEqual(only('credit_card', '4111 1111 1111 1112, 1234567812345670, 41111111111111111111111, x4111111111111111, 3782822463100051'), []);
  // a card followed by more digit groups: the longest valid prefix run is found
  assert.deepEqual(only('credit_card', 'card 4111 1111 1111 1111 exp 12 28'), ['4111 1111 1111 1111']);
});

test('mrn and npi (labelled) with checksum; phi terms are whole-word, case-insensitive', () => {
  assert.deepEqual(only('mrn', 'MRN: 1234567, mrn#00123456, Medical record number 9876543210'), ['1234567', '00123456', '9876543210']);
  assert.deepEqual(only('mrn', 'MRN 12345, MRN 12345678901, 1234567'), []);
  assert.deepEqual(only('npi', 'Provider NPI: 1234567893'), ['1234567893']);
  assert.deepEqual(only('npi', 'NPI 1234567890, NPI 1234567891, NPI 3234567893'), []);
  assert.deepEqual(only('npi', 'order number 1234567893 shipped'), []);
  assert.deepEqual(only('phi_term', 'Dx: Type 2  Diabetes; hiv+ patient; prediabetes; diabetesX; SCHIZOPHRÉNIE'), ['Type 2  Diabetes', 'hiv', 'SCHIZOPHRÉNIE']);
});

test('secrets: cloud/vendor tokens and near misses', () => {
  const gh = `ghp_${'a1B2'.repeat(9)}`;
  assert.deepEqual(hits(`aws AKIAIOSFODNN7EXAMPLE ASIAY34FZKBOKMUTVV7A ${gh}`), [
    ['aws_access_key', 'AKIAIOSFODNN7EXAMPLE'],
    ['aws_access_key', 'ASIAY34FZKBOKMUTVV7A'],
    ['github_token', gh],
  ]);
  assert.deepEqual(only('aws_secret_key', 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY']);
  assert.deepEqual(only('github_token', `github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz gho_short`), [
    'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
  ]);
  assert.deepEqual(hits('k1 sk-proj-abcDEF1234567890abcdefGHIJ k2 sk-ant-api03-AbCdEf0123456789xyzXYZ-_q'), [
    ['openai_key', 'sk-proj-abcDEF1234567890abcdefGHIJ'],
    ['anthropic_key', 'sk-ant-api03-AbCdEf0123456789xyzXYZ-_q'],
  ]);
  assert.deepEqual(only('slack_token', 'xoxb-123456789012-123456789012-abcdefABCDEF and xoxp-not-a-token-at-all'), [
    'xoxb-123456789012-123456789012-abcdefABCDEF',
  ]);
  assert.deepEqual(hits('AKIAIOSFODNN7EXAMPL sk-this-is-a-long-kebab-name task-abcdefghijklmnopqrstuvwxyz123 ghp_abc'), []);
});

test('private key blocks (terminated and truncated) and JWTs', () => {
  const pem =
    '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yQ==\n-----END RSA PRIVATE KEY-----';
  assert.deepEqual(hits(`key:\n${pem}\nthanks`), [['private_key', pem]]);
  assert.deepEqual(hits('-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIE'), [
    ['private_key', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIE'],
  ]);
  assert.deepEqual(hits('-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'), []);
  const t = jwt({ alg: 'HS256', typ: 'JWT' });
  assert.deepEqual(hits(`Authorization: Bearer ${t}`), [['jwt', t]]);
  assert.deepEqual(hits(`${jwt({ typ: 'JWT' })} eyJub3Rqc29u.eyJhIjoxfQ.sig file.tar.gz`), []);
});

test('high-entropy values after secret-looking keys', () => {
  assert.deepEqual(hits('DB_PASSWORD=Xk9#mQ2$vL8pR4wZ'), [['high_entropy_secret', 'Xk9#mQ2$vL8pR4wZ']]);
  assert.deepEqual(hits('{"client_secret": "d8e8fca2dc0f896fd7cb4cb0031ba249"}'), [['high_entropy_secret', 'd8e8fca2dc0f896fd7cb4cb0031ba249']]);
  assert.deepEqual(
    hits(
      'password=aaaaaaaaaaaaaaaaaaaa token: hello world secret=internationalization description=Xk9#mQ2$vL8pR4wZ9 api_key=short1A token=https://example.com/Path?x=1',
    ),
    [],
  );
  const low = new Classifier({ entropyThreshold: 4.5, only: ['high_entropy_secret'] });
  assert.deepEqual(hits('DB_PASSWORD=Xk9#mQ2$vL8pR4wZ', low), []);
});

test('custom patterns and terms', () => {
  const c = new Classifier({
    custom: [
      { name: 'employee_id', dataClass: 'PII', pattern: 'EMP-\\d{6}' },
      { name: 'project-codename', dataClass: 'SECRET', terms: ['Blue Falcon', 'nightjar'] },
      { name: 'ticket', dataClass: 'PII', pattern: 'TKT-[A-Z0-9]+', terms: ['ticket zero'] },
    ],
  });
  const text = 'EMP-123456 works on blue falcon and NIGHTJAR (not nightjars), TKT-AB12 and ticket zero';
  assert.deepEqual(hits(text, c), [
    ['employee_id', 'EMP-123456'],
    ['project-codename', 'blue falcon'],
    ['project-codename', 'NIGHTJAR'],
    ['ticket', 'TKT-AB12'],
    ['ticket', 'ticket zero'],
  ]);
  assert.equal(
    c.redact(text).text,
    '[REDACTED:EMPLOYEE_ID] works on [REDACTED:PROJECT_CODENAME] and [REDACTED:PROJECT_CODENAME] (not nightjars), [REDACTED:TICKET] and [REDACTED:TICKET]',
  );
  assert.throws(() => new Classifier({ custom: [{ name: 'bad', dataClass: 'PII' }] }), /bad/);
  assert.throws(() => new Classifier({ custom: [{ name: 'email', dataClass: 'PII', terms: ['x'] }] }), /duplicate/);
  assert.throws(() => new Classifier({ only: ['nope'] }), /unknown detector/);
});

test('redaction output is exact; summarize counts names only', () => {
  const text = 'Card 4111-1111-1111-1111 for bob@example.com, SSN 123-45-6789.';
  const r = all.redact(text);
  assert.equal(r.text, 'Card [REDACTED:CREDIT_CARD] for [REDACTED:EMAIL], SSN [REDACTED:US_SSN].');
  assert.deepEqual(summarize(r.findings), { credit_card: 1, email: 1, us_ssn: 1 });
  assert.equal(redactionLabel('my.custom-name'), '[REDACTED:MY_CUSTOM_NAME]');
  // explicit findings: overlapping/out-of-range ones are dropped, longest kept
  const given: Finding[] = [
    { detector: 'email', dataClass: 'PII', start: 29, end: 44 },
    { detector: 'phi_term', dataClass: 'PHI', start: 29, end: 32 },
    { detector: 'us_ssn', dataClass: 'PII', start: 50, end: 999 },
  ];
  const r2 = all.redact(text, given);
  assert.equal(r2.text, 'Card 4111-1111-1111-1111 for [REDACTED:EMAIL], SSN 123-45-6789.');
  assert.equal(r2.findings.length, 1);
  assert.equal(all.redact('nothing here').text, 'nothing here');
});

test('overlaps: the longest / most specific finding wins', () => {
  // key=value whose value is also an OpenAI key: same span, the specific detector wins
  assert.deepEqual(hits('api_key=sk-proj-abcDEF1234567890abcdefGHIJ'), [['openai_key', 'sk-proj-abcDEF1234567890abcdefGHIJ']]);
  // an E.164 phone inside a longer card-like run: the card (longer) wins
  assert.deepEqual(hits('4111 1111 1111 1111'), [['credit_card', '4111 1111 1111 1111']]);
  // a phi term inside an email local part: the email wins
  assert.deepEqual(hits('hiv.clinic@example.org'), [['email', 'hiv.clinic@example.org']]);
  // labelled NPI that is also an MRN-shaped 10-digit value: both labels → each span detected once
  const f = all.scan('MRN: 1234567893');
  assert.equal(f.length, 1);
});

test('unicode around matches: offsets are UTF-16 indices into the original string', () => {
  const text = '😀 Grüße — bob@example.com ☕ 𝔘𝔫𝔦 4111 1111 1111 1111 日本語 192.168.0.1 é';
  const f = all.scan(text);
  assert.deepEqual(
    f.map((x) => [x.detector, text.slice(x.start, x.end)]),
    [
      ['email', 'bob@example.com'],
      ['credit_card', '4111 1111 1111 1111'],
      ['ip_address', '192.168.0.1'],
    ],
  );
  assert.equal(all.redact(text).text, '😀 Grüße — [REDACTED:EMAIL] ☕ 𝔘𝔫𝔦 [REDACTED:CREDIT_CARD] 日本語 [REDACTED:IP_ADDRESS] é');
});
