/**
 * What reaches the model server, the audit record and the access log,
 * through real Envoy with the official SDKs, for both ways Envoy asks the
 * sidecar (ext_proc and ext_authz): a query string stops at the gateway, a
 * credential sent in one is refused with an error that says to use the
 * header, and the client's forwarding headers, proxy credentials and cookies
 * never reach the model server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

const HI = [{ role: 'user' as const, content: 'hi' }];
/** Everything a client (or a proxy in front of the gateway) may claim about where the request came from. */
const ORIGIN_HEADERS = {
  'x-forwarded-for': '203.0.113.7',
  'x-real-ip': '203.0.113.7',
  forwarded: 'for=203.0.113.7;proto=https;host=evil.example',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-port': '8443',
  'x-forwarded-prefix': '/admin',
  'proxy-authorization': 'Basic dXNlcjpwYXNz',
  cookie: 'session=s3cr3t',
};

for (const filter of ['ext_proc', 'ext_authz'] as const) {
  describe(`through Envoy's ${filter} filter`, () => {
    let stack: TestStack;
    let key: string;

    before(async () => {
      stack = await startTestStack({ filter, accessLog: true, keys: [{ principal: 'alice' }] });
      key = stack.files.keys['alice'] ?? '';
      assert.match(key, /^igw_/);
    });

    after(async () => {
      await stack?.stop();
    });

    const client = (opts: { query?: Record<string, string>; headers?: Record<string, string | null> } = {}): OpenAI =>
      new OpenAI({ baseURL: stack.baseURL, apiKey: key, maxRetries: 0, timeout: 20_000, defaultQuery: opts.query, defaultHeaders: opts.headers });

    function lastUpstream(): RecordedRequest {
      const r = stack.upstream.requests.at(-1);
      assert.ok(r !== undefined, 'the model server saw no request');
      return r;
    }

    async function refusal(fn: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
      try {
        await fn();
      } catch (err) {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        return err;
      }
      assert.fail('the request was not refused');
    }

    test('a query string does not reach the model server, and the audit record holds the path only', async () => {
      stack.upstream.clearRequests();
      const r = await client({ query: { foo: 'bar', debug: '1' } }).chat.completions.create({ model: 'gpt-demo', messages: HI });
      assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
      assert.equal(lastUpstream().path, '/v1/chat/completions');
      const rec = readAudit(stack.files.auditFile).at(-1);
      assert.equal(rec?.outcome, 'completed');
      assert.equal(rec?.path, '/v1/chat/completions');
    });

    test('a real API key in ?api_key= is refused with credential_in_query (use the header), before it is checked; nothing reaches the model; it is recorded without the query', async () => {
      stack.upstream.clearRequests();
      const before = readAudit(stack.files.auditFile).length;
      // With the key in the header as well (the SDK always sends it) and without any header credential.
      for (const c of [client({ query: { api_key: key } }), client({ query: { api_key: key }, headers: { authorization: null } })]) {
        const err = await refusal(() => c.chat.completions.create({ model: 'gpt-demo', messages: HI }));
        assert.equal(err.status, 400);
        assert.equal(err.code, 'credential_in_query');
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.match(err.message, /query string \(parameter 'api_key'\)/);
        assert.match(err.message, /Authorization: Bearer/);
        assert.equal(err.message.includes(key), false);
      }
      assert.equal(stack.upstream.requests.length, 0);
      const records = readAudit(stack.files.auditFile).slice(before);
      assert.equal(records.length, 2);
      for (const rec of records) {
        assert.equal(rec.path, '/v1/chat/completions');
        assert.equal(rec.outcome, 'denied');
        assert.equal(rec.decision.code, 'credential_in_query');
        assert.equal(rec.identity, null, 'authentication was not attempted');
      }
    });

    test('a gateway key under any parameter name, e.g. on the model list, is refused too', async () => {
      const err = await refusal(() => client({ query: { q: key } }).models.list());
      assert.equal(err.code, 'credential_in_query');
    });

    test("an Anthropic client gets the refusal in Anthropic's envelope", async () => {
      const anthropic = new Anthropic({ baseURL: stack.url, apiKey: key, maxRetries: 0, timeout: 20_000, defaultQuery: { key } });
      try {
        await anthropic.messages.create({ model: 'gpt-demo', max_tokens: 16, messages: HI });
        assert.fail('the request was not refused');
      } catch (err) {
        assert.ok(err instanceof Anthropic.BadRequestError, String(err));
        const body = err.error as { type: string; error: { type: string; message: string } };
        assert.equal(body.type, 'error');
        assert.equal(body.error.type, 'invalid_request_error');
        assert.match(body.error.message, /query string \(parameter 'key'\)/);
      }
    });

    test("the client's forwarding headers, proxy credentials and cookies do not reach the model server, nor does its address", async () => {
      stack.upstream.clearRequests();
      await client({ headers: ORIGIN_HEADERS }).chat.completions.create({ model: 'gpt-demo', messages: HI });
      const seen = lastUpstream().headers;
      for (const name of [...Object.keys(ORIGIN_HEADERS), 'authorization', 'x-envoy-external-address']) {
        assert.equal(seen[name], undefined, `${name} reached the model server: ${String(seen[name])}`);
      }
      // Envoy's own, from the client's connection (its route lookup needs it): the scheme, never the client's claim.
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(JSON.stringify(seen).includes('203.0.113.7'), false);
    });

    test("the key sent in a query appears in neither the audit file nor Envoy's access log", async () => {
      const audit = readFileSync(stack.files.auditFile, 'utf8');
      assert.equal(audit.includes(key), false);
      assert.equal(audit.includes('?'), false, 'no query in any record');
      const logFile = stack.accessLog;
      assert.ok(logFile !== null);
      const read = () =>
        readFileSync(logFile, 'utf8')
          .trim()
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { path: string; status: string | number });
      // Envoy writes the log out every 100 ms here (test/helpers/stack.ts): wait for the requests above.
      const lines = await waitFor(() => (existsSync(logFile) && read().length >= 6 ? read() : null), { what: 'the requests above in the access log' });
      assert.ok(lines.some((l) => Number(l.status) === 400));
      for (const l of lines) assert.equal(l.path.includes('?'), false, `access log path with a query: ${l.path}`);
      assert.equal(readFileSync(logFile, 'utf8').includes(key), false);
    });
  });
}
