import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineCredentials } from '../../src/stages/auth/identity.ts';
import type { Credential } from '../../src/pipeline/identity.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { presentedCredentials } from '../../src/stages/auth/presented.ts';

const grants = { org: 'acme', tenant: 'research', tier: null, roles: [] as string[], models: '*' as const, endpoints: '*' as const };
const key: Credential = { ...grants, method: 'api_key', principal: 'svc-key', keyId: 'AbCdEfGh', tier: 'gold', models: new Set(['m1', 'm2']) };
const jwt: Credential = {
  ...grants,
  method: 'jwt',
  principal: 'alice@acme',
  issuer: 'https://idp',
  subject: 'alice',
  roles: ['analyst'],
  models: new Set(['m2', 'm3']),
};
const mtls: Credential = {
  ...grants,
  method: 'mtls',
  principal: 'team-a-app',
  spiffeId: 'spiffe://prod/ns/a/sa/app',
  certSubject: null,
  certDigest: 'ab',
  roles: ['workload'],
};

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  return 'accepted';
}

test('one credential is an identity', () => {
  const id = combineCredentials([key], 'chat', []);
  assert.deepEqual([id.principal, id.org, id.tenant, id.tier, id.keyId], ['svc-key', 'acme', 'research', 'gold', 'AbCdEfGh']);
  assert.deepEqual(id.methods, ['api_key']);
});

test('precedence: JWT names the principal, then API key, then the workload; restrictions intersect, roles unite', () => {
  const id = combineCredentials([mtls, key, jwt], 'chat', []);
  assert.equal(id.principal, 'alice@acme');
  assert.deepEqual(id.methods, ['jwt', 'api_key', 'mtls']);
  assert.deepEqual(id.models, new Set(['m2']));
  assert.deepEqual(id.roles, ['analyst', 'workload']);
  assert.equal(id.tier, 'gold', 'the first credential that names a tier');
  assert.equal(id.mtls?.spiffeId, 'spiffe://prod/ns/a/sa/app');
});

test('credentials naming different tenants or orgs conflict', () => {
  assert.equal(
    refusal(() => combineCredentials([key, { ...jwt, tenant: 'sales' }], 'chat', [])),
    'credential_conflict',
  );
  assert.equal(
    refusal(() => combineCredentials([key, { ...mtls, org: 'other' }], 'chat', [])),
    'credential_conflict',
  );
  assert.equal(combineCredentials([key, { ...jwt, tenant: null }], 'chat', []).tenant, 'research', 'a credential silent on tenant does not conflict');
});

test('no credential, or none naming a tenant, is refused', () => {
  assert.equal(
    refusal(() => combineCredentials([], 'chat', [])),
    'missing_api_key',
  );
  assert.equal(
    refusal(() => combineCredentials([{ ...jwt, tenant: null }], 'chat', [])),
    'additional_credential_required',
  );
});

test('requirement rules demand combinations, by tenant and endpoint, first match wins', () => {
  const rules = [
    { tenant: 'research', endpoints: ['embeddings' as const], methods: ['api_key' as const] },
    { tenant: 'research', methods: ['mtls' as const, 'api_key' as const] },
  ];
  assert.equal(
    refusal(() => combineCredentials([key], 'chat', rules)),
    'additional_credential_required',
  );
  assert.equal(
    refusal(() => combineCredentials([mtls], 'chat', rules)),
    'additional_credential_required',
  );
  assert.deepEqual(combineCredentials([key, mtls], 'chat', rules).methods, ['api_key', 'mtls']);
  assert.deepEqual(combineCredentials([key], 'embeddings', rules).methods, ['api_key'], 'the embeddings rule matched first');
  assert.equal(combineCredentials([{ ...key, tenant: 'sales' }], 'chat', rules).tenant, 'sales', 'rules for another tenant do not apply');
});

test('presented credentials: API key by prefix, JWT by shape, anything else refused', async (t) => {
  assert.deepEqual(presentedCredentials('Bearer igw_abc', undefined), { apiKey: 'igw_abc', jwt: null, opaque: null });
  assert.deepEqual(presentedCredentials('Bearer aaa.bbb.ccc', 'igw_k'), { apiKey: 'igw_k', jwt: 'aaa.bbb.ccc', opaque: null });
  assert.deepEqual(presentedCredentials(undefined, undefined), { apiKey: null, jwt: null, opaque: null });
  for (const bad of ['Basic Zm9v', 'Bearer sk-openai-style', 'Bearer a b', `Bearer ${'a'.repeat(70_000)}`]) {
    await t.test(`refused: ${bad.slice(0, 30)}`, () => {
      assert.equal(
        refusal(() => presentedCredentials(bad, undefined)),
        'invalid_api_key',
        bad.slice(0, 20),
      );
    });
  }
  assert.equal(
    refusal(() => presentedCredentials('Bearer igw_a', 'igw_b')),
    'invalid_api_key',
  );
});

test('presented credentials: with introspection configured, a non-key non-JWT bearer is an opaque token (b64token shape only)', () => {
  assert.deepEqual(presentedCredentials('Bearer sk-opaque_Tok.en~+/==', undefined, true), { apiKey: null, jwt: null, opaque: 'sk-opaque_Tok.en~+/==' });
  assert.deepEqual(presentedCredentials('Bearer aaa.bbb.ccc', undefined, true), { apiKey: null, jwt: 'aaa.bbb.ccc', opaque: null }, 'a JWT stays a JWT');
  assert.deepEqual(presentedCredentials('Bearer igw_abc', undefined, true), { apiKey: 'igw_abc', jwt: null, opaque: null });
  assert.equal(
    refusal(() => presentedCredentials('Bearer a=b', undefined, true)),
    'invalid_api_key',
  );
});
