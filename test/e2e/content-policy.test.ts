/**
 * Classification and data policy through real Envoy with the openai client:
 * each class detected (and near misses not), each decision — permit, redact,
 * deny — on requests, and redaction of generated text in buffered and
 * streamed responses, also when a value is split across SSE chunks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({
    keys: [
      { principal: 'alice', tenant: 'research' },
      { principal: 'doc', tenant: 'clinic', roles: ['clinician'] },
    ],
    config: {
      policy: {
        version: 'policy-42',
        phiTerms: ['diabetes'],
        rules: [
          { name: 'no-secrets', classes: ['SECRET'], action: 'deny' },
          { name: 'clinicians', match: { roles: ['clinician'] }, classes: ['PHI'], action: 'permit' },
          { name: 'phi', classes: ['PHI'], action: 'redact' },
          { name: 'cards', classes: ['PCI'], action: 'redact' },
        ],
        defaultAction: 'permit',
        streamHoldBackChars: 64,
      },
    },
  });
});

after(async () => {
  await stack.stop();
});

function sent(): { content: string; headers: Record<string, string | string[] | undefined> } {
  const r = stack.upstream.requests.at(-1);
  assert.ok(r, 'the request reached the model server');
  const body = r.body as { messages: Array<{ content: string }> };
  return { content: body.messages.at(-1)?.content ?? '', headers: r.headers };
}

const ask = (content: string, principal = 'alice', headers: Record<string, string> = {}) =>
  stack.client(principal, headers).chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content }] });

test('a card number is redacted before the model sees it; classes and decision go upstream', async () => {
  await ask('Charge 4111 1111 1111 1111 please, mail me at jane@example.com');
  const s = sent();
  assert.equal(s.content, 'Charge [REDACTED:CREDIT_CARD] please, mail me at jane@example.com', 'PII is permitted, PCI redacted');
  assert.equal(s.headers['x-gateway-policy-decision'], 'redact');
  assert.equal(s.headers['x-gateway-policy-version'], 'policy-42');
  assert.equal(s.headers['x-gateway-data-classes'], 'credit_card=1,email=1');
});

test('near misses are not detected: Luhn-invalid card, invalid SSN area, bad IBAN checksum', async () => {
  const text = 'ids 4111 1111 1111 1112 and 666-12-3456 and DE89 3704 0044 0532 0130 01';
  await ask(text);
  assert.equal(sent().content, text);
  assert.equal(sent().headers['x-gateway-data-classes'], 'none');
});

test('a secret is refused with 403 naming the class, never the value; nothing reaches the model', async () => {
  stack.upstream.clearRequests();
  try {
    await ask('my key is AKIAIOSFODNN7EXAMPLE ok');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 403);
    assert.equal(err.code, 'data_policy_denied');
    assert.match(err.message, /SECRET/);
    assert.ok(!err.message.includes('AKIA'), 'the value is never echoed');
  }
  assert.equal(stack.upstream.requests.length, 0);
});

test('per role: PHI terms are redacted for others and permitted for clinicians', async () => {
  await ask('patient has diabetes');
  assert.equal(sent().content, 'patient has [REDACTED:PHI_TERM]');
  await ask('patient has diabetes', 'doc');
  assert.equal(sent().content, 'patient has diabetes');
});

test('generated text: a card number is redacted in a buffered response', async () => {
  const r = await ask('hi', 'alice', { 'x-demo-reply': encodeURIComponent('Your card 5555 5555 5555 4444 is on file') });
  assert.equal(r.choices[0]?.message.content, 'Your card [REDACTED:CREDIT_CARD] is on file');
});

test('generated text: a card number split over many SSE chunks is redacted, the stream stays valid', async () => {
  const stream = await stack
    .client('alice', { 'x-demo-reply': encodeURIComponent('Sure, use 4111 1111 1111 1111 for the test, it always works fine here') })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, 'Sure, use [REDACTED:CREDIT_CARD] for the test, it always works fine here');
});

test('the audit record holds classes and the decision with the policy version, never the values', () => {
  const recs = readAudit(stack.files.auditFile);
  const redacted = recs.find((r) => (r as unknown as { classification: { request: Record<string, number> } }).classification.request['credit_card'] === 1);
  assert.ok(redacted);
  assert.equal((redacted.decision as unknown as { action: string; policyVersion: string }).action, 'redact');
  assert.equal((redacted.decision as unknown as { policyVersion: string }).policyVersion, 'policy-42');
  // Random identifiers and hashes (hex, UUIDs) may contain '4111' by chance: the values are looked for everywhere else.
  const raw = JSON.stringify(recs.map((r) => ({ ...r, chain: null, requestId: null, traceId: null })));
  assert.deepEqual(
    ['4111', 'AKIA', 'jane@example.com', '5555 5555'].filter((value) => raw.includes(value)),
    [],
    'values in the audit',
  );
});
