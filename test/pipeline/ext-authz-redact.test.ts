/** ext_authz cannot rewrite a body: the data policy's *redact* refuses there, unless the deployer chose to let it pass (issue #13 item 4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import { rig, USER_KEY } from './fakes.ts';

const head = new Map(
  Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }),
);
const body = (text: string) => Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: text }] }));

test('ext_authz: a request the policy would redact is refused (403 data_policy_denied), and audited as denied', async () => {
  const g = rig();
  const { state } = await g.processor.requestHeaders(head, false, NO_CONNECTION_INFO, 'ext_authz');
  const r = await g.processor.requestBody(state, body('pay with CARD-4111'));
  assert.equal(r.kind, 'respond');
  if (r.kind !== 'respond') return;
  assert.equal(r.status, 403);
  assert.match(r.body.toString(), /data_policy_denied/);
  assert.match(r.body.toString(), /cannot be redacted on this path \(ext_authz\)/);
  assert.equal(g.audit.records[0]?.decision.action, 'deny');
  assert.equal(g.audit.records[0]?.decision.unredacted, false);
});

test('ext_authz with extAuthzRedact: permit: the request goes on as sent, and its record says it was not redacted', async () => {
  const g = rig({ extAuthzRedact: 'permit' });
  const { state } = await g.processor.requestHeaders(head, false, NO_CONNECTION_INFO, 'ext_authz');
  const r = await g.processor.requestBody(state, body('pay with CARD-4111'));
  assert.equal(r.kind, 'continue');
  await g.processor.authorized(state);
  const rec = g.audit.records[0];
  assert.equal(rec?.decision.action, 'redact');
  assert.equal(rec?.decision.unredacted, true);
});

test('ext_proc redacts as always; a request with nothing to redact passes ext_authz untouched', async () => {
  const g = rig();
  const { state } = await g.processor.requestHeaders(head, false, NO_CONNECTION_INFO, 'ext_proc');
  const r = await g.processor.requestBody(state, body('pay with CARD-4111'));
  assert.equal(r.kind, 'continue');
  assert.match(r.kind === 'continue' ? (r.body?.toString() ?? '') : '', /\[REDACTED:CARD\]/);
  const g2 = rig();
  const s2 = await g2.processor.requestHeaders(head, false, NO_CONNECTION_INFO, 'ext_authz');
  assert.equal((await g2.processor.requestBody(s2.state, body('nothing here'))).kind, 'continue');
});
