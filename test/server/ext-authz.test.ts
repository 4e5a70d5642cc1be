/**
 * The ext_authz Check answer over the fake ports (no Envoy): what the
 * request-headers phase decides about the query and the client's headers
 * reaches Envoy as OkHttpResponse header edits. Envoy 1.40 applies a `:path`
 * set this way (test/e2e/hygiene.test.ts runs it through the real binary).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createCheckHandler } from '../../src/server/ext-authz.ts';
import { rig, USER_KEY } from '../pipeline/fakes.ts';

const check = (path: string, headers: Record<string, string> = {}): ReturnType<ReturnType<typeof createCheckHandler>> =>
  createCheckHandler(
    rig().processor,
    pino({ level: 'silent' }),
  )({
    attributes: {
      request: {
        http: {
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}`, ...headers },
          body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] }),
        },
      },
    },
  });

test('ext_authz: an allowed request gets its :path without the query, and the client-origin headers removed', async () => {
  const res = await check('/v1/chat/completions?foo=bar', {
    'x-forwarded-for': '203.0.113.7',
    'x-real-ip': '203.0.113.7',
    forwarded: 'for=203.0.113.7',
    'proxy-authorization': 'Basic eA==',
    cookie: 'a=b',
  });
  const ok = res.ok_response;
  assert.ok(ok !== undefined, JSON.stringify(res));
  const set = new Map((ok.headers ?? []).map((o) => [o.header?.key, o.header?.value]));
  assert.equal(set.get(':path'), '/v1/chat/completions');
  for (const h of ['x-forwarded-for', 'x-real-ip', 'forwarded', 'proxy-authorization', 'cookie', 'authorization']) {
    assert.ok(ok.headers_to_remove?.includes(h), `${h} is removed`);
  }
});

test('ext_authz: a credential in the query is denied with 400 credential_in_query', async () => {
  const res = await check(`/v1/chat/completions?api_key=${USER_KEY}`);
  assert.equal(res.denied_response?.status?.code, 400);
  const body = JSON.parse(res.denied_response?.body ?? '{}') as { error: { code: string } };
  assert.equal(body.error.code, 'credential_in_query');
});
