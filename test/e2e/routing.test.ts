/**
 * Routing through real Envoy: a tenant's own deployment of a model, and a
 * deployment's upstream credential injected by the sidecar — the client's key
 * never reaches the model server, the provider's never reaches the client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;
const secrets = mkdtempSync(join(tmpdir(), 'igw-creds-'));

before(async () => {
  writeFileSync(join(secrets, 'provider-key'), 'sk-upstream-secret-123\n');
  stack = await startTestStack({
    keys: [{ principal: 'alice', tenant: 'research' }, { principal: 'anna', tenant: 'team-a' }],
    models: [
      { id: 'chat-large', endpoints: ['chat'], cluster: 'demo-upstream', model: 'shared-large', overrides: [{ tenants: ['team-a'], target: { cluster: 'demo-upstream', model: 'team-a-dedicated' } }] },
      { id: 'hosted', endpoints: ['chat'], cluster: 'demo-upstream', model: 'provider-model', credential: 'provider-key' },
      { id: 'hosted-missing', endpoints: ['chat'], cluster: 'demo-upstream', model: 'x', credential: 'no-such-secret' },
    ],
    config: { routing: { credentialsDir: secrets } },
  });
});

after(async () => {
  await stack.stop();
});

const ask = (principal: string, model: string) => stack.client(principal).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
const lastBody = () => stack.upstream.requests.at(-1)?.body as { model: string };

test("a tenant's own deployment of a logical model", async () => {
  await ask('alice', 'chat-large');
  assert.equal(lastBody().model, 'shared-large');
  await ask('anna', 'chat-large');
  assert.equal(lastBody().model, 'team-a-dedicated');
  assert.equal(stack.upstream.requests.at(-1)?.headers['x-gateway-deployment-model'], 'team-a-dedicated');
});

test("the deployment's credential is injected; the client's key never goes upstream", async () => {
  stack.upstream.clearRequests();
  const r = await ask('alice', 'hosted');
  assert.ok(r.choices[0]?.message.content);
  const up = stack.upstream.requests.at(-1);
  assert.equal(up?.headers['authorization'], 'Bearer sk-upstream-secret-123');
  assert.ok(!JSON.stringify(up?.headers).includes(stack.files.keys['alice'] ?? 'missing'));
  await ask('alice', 'chat-large');
  assert.equal(stack.upstream.requests.at(-1)?.headers['authorization'], undefined, 'no credential for deployments without one');
});

test('a missing credential fails closed with 503 and nothing upstream', async () => {
  stack.upstream.clearRequests();
  try {
    await ask('alice', 'hosted-missing');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'upstream_credential_unavailable');
  }
  assert.equal(stack.upstream.requests.length, 0);
});
