/**
 * ext_authz cannot rewrite a body, so the data policy's *redact* cannot be
 * applied there (issue #13 item 4): through real Envoy's ext_authz filter a
 * request the policy would redact is refused, unless the deployer set
 * policy.extAuthzRedact: permit — then it reaches the model as sent and the
 * audit record says it was not redacted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

const POLICY = { rules: [{ name: 'cards', classes: ['PCI'], action: 'redact' }] };
const CARD = '4111 1111 1111 1111';
let strict: TestStack;
let lenient: TestStack;

before(async () => {
  strict = await startTestStack({ filter: 'ext_authz', config: { policy: POLICY } });
  lenient = await startTestStack({ filter: 'ext_authz', config: { policy: { ...POLICY, extAuthzRedact: 'permit' } } });
});

after(async () => {
  await strict?.stop();
  await lenient?.stop();
});

test('ext_authz, default: a card the policy would redact is refused with 403 data_policy_denied; nothing reaches the model', async () => {
  strict.upstream.clearRequests();
  await assert.rejects(
    strict.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: `my card ${CARD}` }] }),
    (err: unknown) => err instanceof OpenAI.PermissionDeniedError && err.code === 'data_policy_denied' && /ext_authz/.test(err.message),
  );
  assert.equal(strict.upstream.requests.length, 0);
  const ok = await strict.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'nothing to redact' }] });
  assert.ok(ok.choices.length > 0);
});

test('ext_authz, extAuthzRedact: permit: the request reaches the model as sent, and the audit record says it was not redacted', async () => {
  lenient.upstream.clearRequests();
  await lenient.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: `my card ${CARD}` }] });
  const up = lenient.upstream.requests.at(-1);
  assert.ok(JSON.stringify(up?.body).includes(CARD), 'ext_authz cannot rewrite the body: the deployer chose to let it through');
  const rec = readAudit(lenient.files.auditFile).at(-1) as unknown as { decision: { action: string; unredacted: boolean } };
  assert.deepEqual(rec.decision, { ...rec.decision, action: 'redact', unredacted: true });
});
