import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicErrorToOpenAI, openAIErrorToAnthropic } from '../../../src/families/translate/error-bodies.ts';

const anthropicError = (type: string, message = 'boom') => ({ type: 'error', error: { type, message }, request_id: 'req_1' });
const openAIError = (type: string, code: string | null = null, message = 'boom') => ({ error: { message, type, param: null, code } });

const A_TO_O: ReadonlyArray<readonly [number, string, string, string | null]> = [
  [400, 'invalid_request_error', 'invalid_request_error', null],
  [401, 'authentication_error', 'authentication_error', 'invalid_api_key'],
  [402, 'billing_error', 'insufficient_quota', 'insufficient_quota'],
  [403, 'permission_error', 'permission_error', null],
  [404, 'not_found_error', 'not_found_error', null],
  [413, 'request_too_large', 'invalid_request_error', 'request_too_large'],
  [429, 'rate_limit_error', 'rate_limit_error', 'rate_limit_exceeded'],
  [500, 'api_error', 'server_error', null],
  [504, 'timeout_error', 'server_error', 'timeout'],
  [529, 'overloaded_error', 'server_error', 'overloaded'],
];

for (const [status, from, type, code] of A_TO_O) {
  test(`Anthropic ${status} ${from} → OpenAI type ${type}, code ${String(code)}`, () => {
    assert.deepEqual(anthropicErrorToOpenAI(status, anthropicError(from)), { error: { message: 'boom', type, param: null, code } });
  });
}

const A_BY_STATUS: ReadonlyArray<readonly [number, string, string | null]> = [
  [401, 'authentication_error', 'invalid_api_key'],
  [404, 'not_found_error', null],
  [429, 'rate_limit_error', 'rate_limit_exceeded'],
  [502, 'server_error', null],
  [529, 'server_error', 'overloaded'],
  [418, 'invalid_request_error', null],
];
for (const [status, type, code] of A_BY_STATUS) {
  test(`Anthropic ${status} with an unknown error type → OpenAI ${type} (by status)`, () => {
    assert.deepEqual(anthropicErrorToOpenAI(status, anthropicError('brand_new_error')).error, { message: 'boom', type, param: null, code });
  });
}

const O_TO_A: ReadonlyArray<readonly [number, string, string | null, string]> = [
  [400, 'invalid_request_error', null, 'invalid_request_error'],
  // OpenAI reports a bad key as invalid_request_error with 401: the status decides.
  [401, 'invalid_request_error', 'invalid_api_key', 'authentication_error'],
  [401, 'authentication_error', 'invalid_api_key', 'authentication_error'],
  [403, 'permission_error', null, 'permission_error'],
  [404, 'invalid_request_error', 'model_not_found', 'not_found_error'],
  [413, 'invalid_request_error', 'request_too_large', 'request_too_large'],
  [429, 'rate_limit_error', 'rate_limit_exceeded', 'rate_limit_error'],
  [429, 'insufficient_quota', 'insufficient_quota', 'billing_error'],
  [500, 'server_error', null, 'api_error'],
  [502, 'server_error', null, 'api_error'],
  [503, 'server_error', null, 'overloaded_error'],
  [504, 'server_error', 'upstream_timeout', 'timeout_error'],
  [422, 'invalid_request_error', null, 'invalid_request_error'],
  // In a stream the status is 200: the type decides.
  [200, 'server_error', null, 'api_error'],
  [200, 'rate_limit_error', null, 'rate_limit_error'],
];

for (const [status, type, code, want] of O_TO_A) {
  test(`OpenAI ${status} ${type}${code === null ? '' : `/${code}`} → Anthropic ${want}`, () => {
    assert.deepEqual(openAIErrorToAnthropic(status, openAIError(type, code)), { type: 'error', error: { type: want, message: 'boom' } });
  });
}

test('a body given as text or bytes is parsed', () => {
  const text = JSON.stringify(anthropicError('rate_limit_error', 'slow down'));
  assert.equal(anthropicErrorToOpenAI(429, text).error.message, 'slow down');
  assert.equal(anthropicErrorToOpenAI(429, Buffer.from(text)).error.message, 'slow down');
  assert.equal(
    openAIErrorToAnthropic(400, new Uint8Array(Buffer.from(JSON.stringify(openAIError('invalid_request_error', null, 'bad'))))).error.message,
    'bad',
  );
});

test('a plain-text body (a proxy page) becomes the message, clipped', () => {
  assert.deepEqual(openAIErrorToAnthropic(503, 'upstream connect error or disconnect/reset before headers'), {
    type: 'error',
    error: { type: 'overloaded_error', message: 'upstream connect error or disconnect/reset before headers' },
  });
  assert.equal(anthropicErrorToOpenAI(502, 'x'.repeat(500)).error.message.length, 201);
});

test('an empty or shapeless body gets a message naming the status', () => {
  assert.equal(anthropicErrorToOpenAI(500, '').error.message, 'The model server answered with HTTP status 500.');
  assert.equal(openAIErrorToAnthropic(500, { what: 1 }).error.message, 'The model server answered with HTTP status 500.');
  assert.equal(openAIErrorToAnthropic(500, null).error.type, 'api_error');
});

test('a bare error object (no envelope) is read too', () => {
  assert.deepEqual(anthropicErrorToOpenAI(429, { type: 'rate_limit_error', message: 'm' }).error, {
    message: 'm',
    type: 'rate_limit_error',
    param: null,
    code: 'rate_limit_exceeded',
  });
});

test('round trip: every Anthropic error type survives OpenAI and back with its status', () => {
  for (const [status, from] of A_TO_O) {
    const back = openAIErrorToAnthropic(status, anthropicErrorToOpenAI(status, anthropicError(from)));
    assert.equal(back.error.type, from, `${status} ${from}`);
  }
});
