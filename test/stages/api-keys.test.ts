import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey, parseApiKey, hashApiKey, KEY_LENGTH } from '../../src/stages/auth/api-key-format.ts';
import { ApiKeyAuthenticator, presentedApiKey } from '../../src/stages/auth/api-keys.ts';
import { GatewayError } from '../../src/openai/errors.ts';

function entry(k: { id: string; hash: string }, extra: Partial<{ expiresAt: string; models: string[] }> = {}) {
  return { id: k.id, hash: k.hash, principal: 'alice', org: 'acme', tenant: 'research', tier: 'standard', roles: [], models: extra.models ?? ['*'], endpoints: ['*' as const], ...(extra.expiresAt === undefined ? {} : { expiresAt: extra.expiresAt }) };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  return 'accepted';
}

test('generated keys have the documented shape and a valid checksum', () => {
  const k = generateApiKey();
  assert.equal(k.key.length, KEY_LENGTH);
  assert.match(k.key, /^igw_[0-9A-Za-z]{46}$/);
  assert.deepEqual(parseApiKey(k.key), { ok: true, id: k.id });
  assert.equal(k.hash, hashApiKey(k.key));
  assert.match(k.hash, /^sha256:[0-9a-f]{64}$/);
});

test('any single-character change breaks the checksum', () => {
  const k = generateApiKey();
  for (let i = 4; i < k.key.length; i++) {
    const c = k.key[i] === 'a' ? 'b' : 'a';
    const bad = k.key.slice(0, i) + c + k.key.slice(i + 1);
    assert.equal(parseApiKey(bad).ok, false, `position ${i}`);
  }
});

test('authenticates a configured key and refuses unknown, tampered and expired ones', () => {
  const good = generateApiKey();
  const expired = generateApiKey();
  const unknown = generateApiKey();
  let now = Date.parse('2026-01-01T00:00:00Z');
  const auth = new ApiKeyAuthenticator([entry(good), entry(expired, { expiresAt: '2026-01-01T00:00:01Z' })], () => now);
  const id = auth.authenticate(good.key);
  assert.equal(id.principal, 'alice');
  assert.equal(id.keyId, good.id);
  assert.equal(id.models, '*');
  assert.equal(code(() => auth.authenticate(expired.key)), 'accepted');
  now += 1000;
  assert.equal(code(() => auth.authenticate(expired.key)), 'invalid_api_key');
  assert.equal(code(() => auth.authenticate(unknown.key)), 'invalid_api_key');
  assert.equal(code(() => auth.authenticate('sk-not-ours')), 'invalid_api_key');
  assert.equal(code(() => auth.authenticate(good.key.slice(0, -1) + (good.key.endsWith('A') ? 'B' : 'A'))), 'invalid_api_key');
});

test('a key with a valid checksum but a hash mismatch is refused (same id, different secret)', () => {
  const good = generateApiKey();
  const other = generateApiKey();
  const auth = new ApiKeyAuthenticator([{ ...entry(good), hash: other.hash }]);
  assert.equal(code(() => auth.authenticate(good.key)), 'invalid_api_key');
});

test('error messages never contain the key', () => {
  const k = generateApiKey();
  const auth = new ApiKeyAuthenticator([]);
  try {
    auth.authenticate(k.key);
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    assert.ok(!err.message.includes(k.key.slice(12)), err.message);
  }
});

test('presented key comes from Bearer or x-api-key', () => {
  assert.equal(presentedApiKey('Bearer abc', undefined), 'abc');
  assert.equal(presentedApiKey('bearer   abc ', undefined), 'abc');
  assert.equal(presentedApiKey(undefined, 'xyz'), 'xyz');
  assert.equal(presentedApiKey(undefined, undefined), null);
  assert.equal(code(() => presentedApiKey('Basic Zm9vOmJhcg==', undefined)), 'invalid_api_key');
  assert.equal(code(() => presentedApiKey('Bearer a, Bearer b', undefined)), 'invalid_api_key');
});
