/**
 * The query-string check on its own: which parameters count as credentials,
 * which do not (the query parameters real clients send), what the refusal
 * says, and that an attacker-sized query costs linear time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GATEWAY_KEY_PREFIX, refuseQueryCredentials, splitTarget } from '../../src/pipeline/query.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { generateApiKey, KEY_PREFIX } from '../../src/crypto/api-key-format.ts';

const KEY = generateApiKey().key;
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

function refusal(query: string): GatewayError | null {
  try {
    refuseQueryCredentials(query);
    return null;
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
}

test('splitTarget: the path before the first ?, the query after it', () => {
  assert.deepEqual(splitTarget('/v1/chat/completions'), { path: '/v1/chat/completions', query: null });
  assert.deepEqual(splitTarget('/v1/chat/completions?'), { path: '/v1/chat/completions', query: '' });
  assert.deepEqual(splitTarget('/v1/models?a=1?b=2'), { path: '/v1/models', query: 'a=1?b=2' });
  assert.deepEqual(splitTarget(''), { path: '', query: null });
});

for (const [why, query] of [
  ['api_key', `api_key=${KEY}`],
  ['api-key, any value', 'api-key=whatever'],
  ['apiKey (case and separators do not matter)', 'apiKey=x'],
  ['key (Google style)', 'key=AIzaSomething'],
  ['x-api-key', 'x-api-key=sk-ant-123'],
  ['an …_api_key name', 'openai_api_key=sk-1'],
  ['access_token (RFC 6750 §2.3)', 'access_token=abc'],
  ['token', 'token=abc'],
  ['authorization', 'authorization=Bearer%20abc'],
  ['password', 'password=hunter2'],
  ['a percent-encoded name', 'api%5Fkey=x'],
  ['after harmless parameters', 'limit=10&before_id=m1&key=x'],
  [';-separated', 'limit=10;token=x'],
  ['a gateway key under any name', `q=${KEY}`],
  ['a gateway key, percent-encoded', `q=${encodeURIComponent(KEY).replace('_', '%5F')}`],
  ['a gateway key as a bare name', KEY],
  ['a JWT under any name', `id=${JWT}`],
  ['a JWT after "Bearer "', `h=Bearer+${JWT}`],
] as const) {
  test(`refused: ${why}`, () => {
    const err = refusal(query);
    assert.ok(err !== null, `${query} must be refused`);
    assert.equal(err.code, 'credential_in_query');
    assert.equal(err.status, 400);
    assert.match(err.message, /Authorization: Bearer/);
    assert.equal(err.message.includes(KEY), false, 'a key is never echoed');
    assert.equal(err.message.includes(JWT), false, 'a token is never echoed');
  });
}

for (const [why, query] of [
  ['no query', null],
  ['an empty query', ''],
  ["Anthropic's model list paging", 'limit=20&after_id=claude-x&before_id=claude-y'],
  ["the Anthropic SDK's beta flag", 'beta=true'],
  ["Azure's api-version", 'api-version=2024-10-21'],
  ['a pagination cursor named …token', 'page_token=abc&next_token=def'],
  ['a parameter whose name merely contains "key"', 'monkey=1&keyboard=2'],
  ['a model name', 'model=gpt-4o'],
  ['a malformed escape', 'x=%E0%A4%A'],
  ['the prefix alone, without a key id', 'q=igw_'],
] as const) {
  test(`allowed: ${why}`, () => assert.equal(refusal(query as string), null));
}

test('the refusal names the parameter (bounded), and a name that is itself a key is not echoed', () => {
  assert.match(refusal('api_key=1')?.message ?? '', /\(parameter 'api_key'\)/);
  const long = `${'x'.repeat(200)}_api_key`;
  const msg = refusal(`${long}=1`)?.message ?? '';
  assert.ok(msg.includes(`'${'x'.repeat(64)}…'`), msg);
  assert.match(refusal(KEY)?.message ?? '', /as a parameter name/);
});

test("the key pattern uses the key format's prefix (pipeline/ may not import crypto/)", () => {
  assert.equal(GATEWAY_KEY_PREFIX, KEY_PREFIX);
});

test('an attacker-sized query is checked in linear time', () => {
  // ~64 KiB of near-misses for both patterns (Envoy's default header limit is 60 KiB).
  for (const query of ['eyJ'.repeat(22_000), `${'eyJa.'.repeat(13_000)}`, 'igw_'.repeat(16_000), `a=${'igw_abc'.repeat(9_000)}`, '&'.repeat(64_000)]) {
    const t0 = process.hrtime.bigint();
    refusal(query);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(ms < 200, `${query.slice(0, 12)}…: ${ms} ms`);
  }
});
