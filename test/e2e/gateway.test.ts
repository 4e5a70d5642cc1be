/**
 * One request through the real thing: the official openai client → Envoy →
 * sidecar (own process) → demo model server. Each test states what the
 * client saw, what the model server received, and what was recorded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestStack, scrapeMetrics, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

let stack: TestStack;
/** Every x-request-id a client saw, to check the audit has exactly these. */
const seenRequestIds: string[] = [];

before(async () => {
  stack = await startTestStack({
    keys: [
      { principal: 'alice', org: 'acme', tenant: 'research', tier: 'gold' },
      { principal: 'bob', org: 'acme', tenant: 'sales', models: ['embed-demo'] },
      { principal: 'erin', endpoints: ['embeddings'] },
    ],
    models: [
      { id: 'gpt-demo', endpoints: ['chat', 'completions'], cluster: 'demo-upstream', model: 'demo-model' },
      { id: 'embed-demo', endpoints: ['embeddings'], cluster: 'demo-upstream', model: 'demo-embedder' },
      { id: 'gpt-down', endpoints: ['chat'], cluster: 'dead-upstream', model: 'x' },
      { id: 'gpt-misrouted', endpoints: ['chat'], cluster: 'no-such-cluster', model: 'x' },
    ],
    // A cluster whose port nothing listens on.
    extraClusters: [{ name: 'dead-upstream', host: '127.0.0.1', port: 1 }],
  });
});

after(async () => {
  await stack.stop();
});

function lastUpstream(): RecordedRequest {
  const r = stack.upstream.requests.at(-1);
  assert.ok(r, 'the model server received a request');
  return r;
}

function header(r: RecordedRequest, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

async function expectError(fn: () => Promise<unknown>, status: number, code: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, `an OpenAI APIError, got ${String(err)}`);
    assert.equal(err.status, status, JSON.stringify(err.error));
    assert.equal(err.code, code, JSON.stringify(err.error));
    const id = (err.headers as Headers | undefined)?.get('x-request-id');
    assert.ok(id !== null && id !== undefined && id !== '', 'error responses carry x-request-id');
    seenRequestIds.push(id);
    return err;
  }
  assert.fail(`expected a ${status} ${code}`);
}

describe('permitted requests', () => {
  test('chat completion: model rewritten, identity injected, client x-gateway-* and credentials dropped', async () => {
    stack.upstream.clearRequests();
    const client = stack.client('alice', {
      'x-gateway-tenant': 'evil-tenant',
      'x-gateway-target-cluster': 'dead-upstream',
      'x-gateway-anything': '1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'Hello there' }] }).withResponse();
    assert.match(data.choices[0]?.message.content ?? '', /^Demo reply to: Hello there/);
    const requestId = response.headers.get('x-request-id');
    assert.ok(requestId);
    seenRequestIds.push(requestId);

    assert.equal(stack.upstream.requests.length, 1);
    const up = lastUpstream();
    assert.equal((up.body as { model: string }).model, 'demo-model');
    assert.equal(header(up, 'x-request-id'), requestId);
    assert.equal(header(up, 'x-gateway-principal'), 'alice');
    assert.equal(header(up, 'x-gateway-org'), 'acme');
    assert.equal(header(up, 'x-gateway-tenant'), 'research');
    assert.equal(header(up, 'x-gateway-tier'), 'gold');
    assert.equal(header(up, 'x-gateway-auth-method'), 'api_key');
    assert.equal(header(up, 'x-gateway-model'), 'gpt-demo');
    assert.equal(header(up, 'x-gateway-anything'), undefined);
    assert.equal(header(up, 'x-gateway-target-cluster'), undefined, 'the routing header stays inside Envoy');
    assert.equal(header(up, 'authorization'), undefined);
    assert.match(header(up, 'traceparent') ?? '', /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    assert.notEqual(header(up, 'traceparent'), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  });

  test('streaming chat: text arrives in chunks, usage counted, the added usage chunk is not shown', async () => {
    stack.upstream.clearRequests();
    const client = stack.client();
    const stream = await client.chat.completions
      .create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'Stream please' }] })
      .withResponse();
    seenRequestIds.push(stream.response.headers.get('x-request-id') ?? 'missing');
    assert.equal(stream.response.headers.get('content-length'), null);
    let text = '';
    let chunks = 0;
    for await (const chunk of stream.data) {
      chunks++;
      assert.equal(chunk.usage ?? null, null, 'no usage chunk: the client did not ask for one');
      text += chunk.choices[0]?.delta.content ?? '';
    }
    assert.ok(chunks >= 12, `got ${chunks} chunks`);
    assert.match(text, /^Demo reply to: Stream please/);
    const sent = lastUpstream().body as { model: string; stream_options?: { include_usage?: boolean } };
    assert.equal(sent.model, 'demo-model');
    assert.equal(sent.stream_options?.include_usage, true, 'the gateway asked the server to count');
    const rec = readAudit(stack.files.auditFile).find((r) => r.requestId === stream.response.headers.get('x-request-id'));
    assert.ok(rec);
    assert.equal(rec.usage?.source, 'counted');
    assert.equal(rec.usage?.completionTokens, 12);
  });

  test('streaming chat with include_usage: the client gets its usage chunk', async () => {
    const stream = await stack
      .client()
      .chat.completions.create({ model: 'gpt-demo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'count me' }] })
      .withResponse();
    seenRequestIds.push(stream.response.headers.get('x-request-id') ?? 'missing');
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream.data) if (chunk.usage) usage = chunk.usage;
    assert.equal(usage?.completion_tokens, 12);
  });

  test('legacy completions and embeddings are routed to their deployments', async () => {
    const c = await stack.client().completions.create({ model: 'gpt-demo', prompt: 'Say hi' }).withResponse();
    seenRequestIds.push(c.response.headers.get('x-request-id') ?? 'missing');
    assert.match(c.data.choices[0]?.text ?? '', /Demo reply/);
    const e = await stack
      .client('bob')
      .embeddings.create({ model: 'embed-demo', input: ['one', 'two'] })
      .withResponse();
    seenRequestIds.push(e.response.headers.get('x-request-id') ?? 'missing');
    assert.equal(e.data.data.length, 2);
    assert.equal(e.data.data[0]?.embedding.length, 16);
    assert.equal((lastUpstream().body as { model: string }).model, 'demo-embedder');
  });

  test('/v1/models lists what the caller may use, answered by the gateway', async () => {
    stack.upstream.clearRequests();
    const all = await stack.client('alice').models.list().withResponse();
    seenRequestIds.push(all.response.headers.get('x-request-id') ?? 'missing');
    assert.deepEqual(all.data.data.map((m) => m.id).sort(), ['embed-demo', 'gpt-demo', 'gpt-down', 'gpt-misrouted']);
    const bobs = await stack.client('bob').models.list().withResponse();
    seenRequestIds.push(bobs.response.headers.get('x-request-id') ?? 'missing');
    assert.deepEqual(
      bobs.data.data.map((m) => m.id),
      ['embed-demo'],
    );
    const one = await stack.client('bob').models.retrieve('embed-demo').withResponse();
    seenRequestIds.push(one.response.headers.get('x-request-id') ?? 'missing');
    assert.equal(one.data.id, 'embed-demo');
    assert.equal(stack.upstream.requests.length, 0, 'the model server was not asked');
  });
});

describe('refused requests never reach the model server', () => {
  test('401 without a key, with a malformed key, with an unknown key', async () => {
    stack.upstream.clearRequests();
    const noKey = new OpenAI({ baseURL: stack.baseURL, apiKey: 'placeholder', maxRetries: 0, defaultHeaders: { authorization: null } });
    await expectError(() => noKey.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'x' }] }), 401, 'missing_api_key');
    const bad = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-not-a-gateway-key', maxRetries: 0 });
    const err = await expectError(() => bad.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'x' }] }), 401, 'invalid_api_key');
    assert.equal((err.error as { type?: string }).type, 'authentication_error');
    const unknown = new OpenAI({ baseURL: stack.baseURL, apiKey: `igw_${'A'.repeat(40)}000000`, maxRetries: 0 });
    await expectError(() => unknown.models.list(), 401, 'invalid_api_key');
    assert.equal(stack.upstream.requests.length, 0);
  });

  test('404 model_not_found names the param; 403 for a model the key may not use', async () => {
    stack.upstream.clearRequests();
    const err = await expectError(
      () => stack.client().chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
      404,
      'model_not_found',
    );
    assert.equal(err.param, 'model');
    await expectError(
      () => stack.client('bob').chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'x' }] }),
      403,
      'model_not_allowed',
    );
    await expectError(() => stack.client().embeddings.create({ model: 'gpt-demo', input: 'x' }), 404, 'model_not_found');
    assert.equal(stack.upstream.requests.length, 0);
  });

  test("403 endpoint_not_allowed for an endpoint outside the key's allowlist", async () => {
    stack.upstream.clearRequests();
    await expectError(
      () => stack.client('erin').chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'x' }] }),
      403,
      'endpoint_not_allowed',
    );
    await expectError(() => stack.client('erin').models.list(), 403, 'endpoint_not_allowed');
    const ok = await stack.client('erin').embeddings.create({ model: 'embed-demo', input: 'x' }).withResponse();
    seenRequestIds.push(ok.response.headers.get('x-request-id') ?? 'missing');
    assert.equal(stack.upstream.requests.length, 1);
  });

  test('bad bodies: not JSON, wrong content type, unknown path', async (t) => {
    stack.upstream.clearRequests();
    const key = stack.files.keys['alice'] ?? '';
    const post = (path: string, body: string, type = 'application/json') =>
      fetch(`${stack.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': type }, body });
    for (const [name, send, status, code] of [
      ['not JSON', () => post('/v1/chat/completions', '{not json'), 400, 'invalid_request_body'],
      ['wrong content type', () => post('/v1/chat/completions', '{"model":"gpt-demo"}', 'text/plain'), 415, 'unsupported_content_type'],
      ['unknown path', () => post('/v1/fine_tuning/jobs', '{}'), 404, 'unknown_url'],
    ] as const) {
      await t.test(name, async () => {
        const res = await send();
        assert.equal(res.status, status);
        assert.equal(res.headers.get('content-type'), 'application/json');
        const body = (await res.json()) as { error: { code: string; type: string; param: unknown } };
        assert.equal(body.error.code, code);
        assert.equal(body.error.param ?? null, null);
        seenRequestIds.push(res.headers.get('x-request-id') ?? 'missing');
      });
    }
    assert.equal(stack.upstream.requests.length, 0);
  });
});

describe("Envoy's own errors arrive in our format", () => {
  test('upstream down → 503 upstream_unavailable', async () => {
    const err = await expectError(
      () => stack.client().chat.completions.create({ model: 'gpt-down', messages: [{ role: 'user', content: 'x' }] }),
      503,
      'upstream_unavailable',
    );
    assert.equal((err.error as { type?: string }).type, 'server_error');
  });

  test('snapshot names a cluster Envoy lacks → 503 upstream_unavailable', async () => {
    await expectError(
      () => stack.client().chat.completions.create({ model: 'gpt-misrouted', messages: [{ role: 'user', content: 'x' }] }),
      503,
      'upstream_unavailable',
    );
  });
});

describe('evidence', () => {
  test('token usage shows in Prometheus metrics by org, tenant and model', async () => {
    const m = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
    const completion = m.get('inference_gateway_tokens_total{org="acme",tenant="research",model="gpt-demo",kind="completion",source="counted"}');
    assert.ok(completion !== undefined && completion >= 36, `completion tokens: ${completion}`);
    assert.ok((m.get('inference_gateway_requests_total{endpoint="chat",model="gpt-demo",decision="deny",status="403"}') ?? 0) === 0);
    assert.equal(m.get('inference_gateway_requests_total{endpoint="chat",model="none",decision="deny",status="404"}'), 1);
  });

  test('the audit file holds exactly one record per request, denied ones included, without secrets', async () => {
    const records = readAudit(stack.files.auditFile);
    const ids = records.map((r) => r.requestId);
    assert.equal(new Set(ids).size, ids.length, 'no request recorded twice');
    assert.deepEqual([...ids].sort(), [...seenRequestIds].sort());
    const raw = JSON.stringify(records);
    for (const key of Object.values(stack.files.keys)) assert.ok(!raw.includes(key), 'no API key in the audit');
    assert.ok(!raw.includes('Hello there'), 'no prompt text in the audit');
    const denied = records.filter((r) => r.outcome === 'denied');
    assert.ok(denied.length >= 8);
    for (const r of denied) assert.equal(r.decision.action, 'deny');
  });
});
