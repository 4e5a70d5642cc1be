/**
 * The gRPC server driven with Envoy's message sequences (no Envoy): one
 * answer per message, in order; immediate responses; SSE mode override;
 * protocol violations and cancellation; ext_authz parity; health.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { startSidecar, type Sidecar } from '../../src/app.ts';
import { clientConstructors, type ExternalProcessorClient, type AuthorizationClient, type HealthClient } from '../../src/server/proto/clients.ts';
import type { CheckResponse, ProcessingRequestInput, ProcessingResponse, HeaderValueOptionInput } from '../../src/server/proto/types.ts';
import { writeGatewayFiles, readAudit, type GatewayFiles } from '../helpers/fixtures.ts';
import { waitFor, withDeadline } from '../helpers/wait.ts';

let files: GatewayFiles;
let sidecar: Sidecar;
let extProc: ExternalProcessorClient;
let authz: AuthorizationClient;
let health: HealthClient;

before(async () => {
  files = writeGatewayFiles({ keys: [{ principal: 'alice' }, { principal: 'bob', models: ['embed-demo'] }] });
  sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  const ctors = clientConstructors();
  const target = `unix:${files.socketPath}`;
  extProc = new ctors.ExternalProcessor(target, grpc.credentials.createInsecure());
  authz = new ctors.Authorization(target, grpc.credentials.createInsecure());
  health = new ctors.Health(target, grpc.credentials.createInsecure());
});

after(async () => {
  extProc.close();
  authz.close();
  health.close();
  await sidecar.shutdown('test over');
});

function headers(map: Record<string, string>) {
  return { headers: Object.entries(map).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) };
}

function requestHead(extra: Record<string, string> = {}, endOfStream = false): ProcessingRequestInput {
  return {
    request_headers: {
      headers: headers({
        ':method': 'POST',
        ':path': '/v1/chat/completions',
        ':authority': 'gateway',
        'content-type': 'application/json',
        authorization: `Bearer ${files.keys['alice'] ?? ''}`,
        'x-request-id': 'req-0000-aaaa-1111',
        ...extra,
      }),
      end_of_stream: endOfStream,
    },
  };
}

const chatBody = (model = 'gpt-demo', extra: object = {}): ProcessingRequestInput => ({
  request_body: { body: Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra })), end_of_stream: true },
});

/** A scripted Envoy: sends each message after the previous answer, collects answers and the final status. */
class EnvoyScript {
  readonly call: grpc.ClientDuplexStream<ProcessingRequestInput, ProcessingResponse>;
  readonly answers: ProcessingResponse[] = [];
  readonly status: Promise<grpc.StatusObject>;
  #waiters: Array<(r: ProcessingResponse) => void> = [];

  constructor() {
    this.call = extProc.Process();
    this.call.on('data', (r: ProcessingResponse) => {
      this.answers.push(r);
      this.#waiters.shift()?.(r);
    });
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.call.on('error', () => undefined);
  }

  send(msg: ProcessingRequestInput): Promise<ProcessingResponse> {
    const answered = new Promise<ProcessingResponse>((resolve) => this.#waiters.push(resolve));
    this.call.write(msg);
    return answered;
  }

  async end(): Promise<grpc.StatusObject> {
    this.call.end();
    return this.status;
  }
}

function setHeaders(options: HeaderValueOptionInput[] | undefined): Map<string, string> {
  return new Map((options ?? []).map((o) => [o.header?.key ?? '', Buffer.from(o.header?.raw_value ?? '').toString()]));
}

test('no key: an immediate 401 in our format, marked for Envoy to pass through, stream closed OK', async () => {
  const envoy = new EnvoyScript();
  const a = await envoy.send(requestHead({ authorization: '' }));
  assert.equal(a.response, 'immediate_response');
  const ir = a.immediate_response;
  assert.equal(ir?.status?.code, 'Unauthorized');
  assert.ok(ir?.details?.startsWith('inference_gateway'));
  const body = JSON.parse(Buffer.from(ir?.body ?? '').toString()) as { error: { code: string; type: string } };
  assert.deepEqual([body.error.code, body.error.type], ['missing_api_key', 'authentication_error']);
  assert.equal((await envoy.end()).code, grpc.status.OK);
});

test('the full buffered sequence: sanitize, route, rewrite, meter, audit — then a clean close', async () => {
  const envoy = new EnvoyScript();
  const h = await envoy.send(requestHead({ 'x-gateway-tenant': 'evil', traceparent: 'junk', 'x-request-id': 'req-full-0000-0001' }));
  const hm = h.request_headers?.response?.header_mutation;
  assert.ok(hm?.remove_headers?.includes('x-gateway-tenant'));
  assert.ok(hm?.remove_headers?.includes('authorization'));
  const set = setHeaders(hm?.set_headers);
  assert.equal(set.get('x-request-id'), 'req-full-0000-0001', "Envoy's request id is adopted");
  assert.equal(set.get('x-gateway-tenant'), 'research');
  assert.match(set.get('traceparent') ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  for (const o of hm?.set_headers ?? []) {
    assert.equal(o.header?.value ?? '', '', 'values travel in raw_value only');
    assert.equal(o.append_action, 'OVERWRITE_IF_EXISTS_OR_ADD');
  }

  const b = await envoy.send(chatBody());
  const common = b.request_body?.response;
  assert.equal(common?.clear_route_cache, true);
  assert.equal(setHeaders(common?.header_mutation?.set_headers).get('x-gateway-target-cluster'), 'demo-upstream');
  const rewritten = JSON.parse(Buffer.from(common?.body_mutation?.body ?? '').toString()) as { model: string };
  assert.equal(rewritten.model, 'demo-model');

  const rh = await envoy.send({ response_headers: { headers: headers({ ':status': '200', 'content-type': 'application/json' }) } });
  assert.equal(rh.response, 'response_headers');
  assert.equal(rh.mode_override, undefined, 'JSON responses stay buffered');
  const rb = await envoy.send({
    response_body: { body: Buffer.from(JSON.stringify({ usage: { prompt_tokens: 5, completion_tokens: 9 } })), end_of_stream: true },
  });
  assert.equal(rb.response, 'response_body');
  // The sidecar closes the finished stream itself (before Envoy half-closes): otherwise Envoy
  // resets every stream and Node's rapid-reset guard drops the connection after ~1000.
  const closed = await withDeadline(envoy.status, { what: 'the stream was left open after the final answer', timeoutMs: 500 });
  assert.equal(closed.code, grpc.status.OK);
  envoy.call.end();
  const rec = readAudit(files.auditFile).find((r) => r.requestId === 'req-full-0000-0001');
  assert.deepEqual(rec?.usage, { promptTokens: 5, completionTokens: 9, cachedPromptTokens: 0, source: 'counted' });
  assert.equal(rec?.outcome, 'completed');
});

test('SSE: streamed mode from the response headers, usage read across chunks, the added usage chunk removed', async () => {
  const envoy = new EnvoyScript();
  await envoy.send(requestHead({ 'x-request-id': 'req-sse-0000-0001' }));
  await envoy.send(chatBody('gpt-demo', { stream: true }));
  const rh = await envoy.send({ response_headers: { headers: headers({ ':status': '200', 'content-type': 'text/event-stream', 'content-length': '999' }) } });
  assert.equal(rh.mode_override?.response_body_mode, 'STREAMED');
  assert.deepEqual(rh.response_headers?.response?.header_mutation?.remove_headers, ['content-length']);
  const stream = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n';
  const pieces = [stream.slice(0, 10), stream.slice(10, 60), stream.slice(60)];
  let out = '';
  for (const [i, p] of pieces.entries()) {
    const a = await envoy.send({ response_body: { body: Buffer.from(p), end_of_stream: i === pieces.length - 1 } });
    const m = a.response_body?.response?.body_mutation;
    out += m === undefined ? p : Buffer.from(m.body ?? '').toString();
  }
  assert.equal(out, 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n');
  assert.equal((await envoy.end()).code, grpc.status.OK);
  const rec = readAudit(files.auditFile).find((r) => r.requestId === 'req-sse-0000-0001');
  assert.deepEqual(rec?.usage, { promptTokens: 3, completionTokens: 1, cachedPromptTokens: 0, source: 'counted' });
});

test('a message out of order ends the stream with an error so Envoy fails closed', async () => {
  const envoy = new EnvoyScript();
  envoy.call.write({ request_body: { body: Buffer.from('{}'), end_of_stream: true } });
  const status = await envoy.status;
  assert.equal(status.code, grpc.status.UNAVAILABLE);
  assert.equal(envoy.answers.length, 0);
});

test('Envoy cancels mid-request: recorded as aborted, the server stays healthy', async () => {
  const envoy = new EnvoyScript();
  await envoy.send(requestHead({ 'x-request-id': 'req-cancel-0000-01' }));
  await envoy.send(chatBody());
  envoy.call.cancel();
  await envoy.status;
  const rec = await waitFor(() => readAudit(files.auditFile).find((r) => r.requestId === 'req-cancel-0000-01'), {
    what: 'the audit record of the cancelled request',
  });
  assert.equal(rec.outcome, 'aborted');
  const again = new EnvoyScript();
  assert.equal((await again.send(requestHead({ 'x-request-id': 'req-after-cancel-1' }))).response, 'request_headers');
  again.call.cancel();
});

test('200 concurrent streams are each answered in order', async () => {
  const runs = Array.from({ length: 200 }, async (_, i) => {
    const envoy = new EnvoyScript();
    const id = `req-concurrent-${String(i).padStart(4, '0')}`;
    const h = await envoy.send(requestHead({ 'x-request-id': id }));
    assert.equal(setHeaders(h.request_headers?.response?.header_mutation?.set_headers).get('x-request-id'), id);
    const b = await envoy.send(chatBody(i % 2 === 0 ? 'gpt-demo' : 'nope'));
    if (i % 2 === 0) {
      assert.equal(b.response, 'request_body');
      await envoy.send({ response_headers: { headers: headers({ ':status': '200', 'content-type': 'application/json' }), end_of_stream: true } });
    } else {
      assert.equal(b.immediate_response?.status?.code, 'NotFound');
    }
    return (await envoy.end()).code;
  });
  assert.deepEqual(new Set(await Promise.all(runs)), new Set([grpc.status.OK]));
});

test('ext_authz Check: the same decisions and headers as ext_proc', async () => {
  const check = (hdrs: Record<string, string>, body?: string) =>
    new Promise<CheckResponse>((resolve, reject) =>
      authz.Check(
        { attributes: { request: { http: { method: 'POST', path: '/v1/chat/completions', headers: hdrs, ...(body === undefined ? {} : { body }) } } } },
        (err, res) => (err === null && res !== undefined ? resolve(res) : reject(err ?? new Error('no response'))),
      ),
    );
  const noKey = await check({ 'content-type': 'application/json' });
  assert.equal(noKey.http_response, 'denied_response');
  assert.equal(noKey.denied_response?.status?.code, 'Unauthorized');
  assert.equal((JSON.parse(noKey.denied_response?.body ?? '{}') as { error: { code: string } }).error.code, 'missing_api_key');

  const auth = { authorization: `Bearer ${files.keys['alice'] ?? ''}`, 'content-type': 'application/json', 'x-gateway-org': 'spoofed' };
  const ok = await check(auth, JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(ok.http_response, 'ok_response');
  const set = new Map((ok.ok_response?.headers ?? []).map((o) => [o.header?.key, o.header?.value]));
  assert.equal(set.get('x-gateway-target-cluster'), 'demo-upstream');
  assert.equal(set.get('x-gateway-org'), 'acme');
  assert.ok(!ok.ok_response?.headers_to_remove?.includes('x-gateway-org'), 'set, not removed: Envoy removes after setting');
  assert.ok(ok.ok_response?.headers_to_remove?.includes('authorization'));

  const forbidden = await check(
    { ...auth, authorization: `Bearer ${files.keys['bob'] ?? ''}` },
    JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }),
  );
  assert.equal(forbidden.denied_response?.status?.code, 'Forbidden');
});

test('gRPC health reports SERVING', async () => {
  const res = await new Promise<{ status?: string | number }>((resolve, reject) =>
    health.Check({ service: '' }, (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err ?? new Error('none')))),
  );
  assert.equal(res.status, 'SERVING');
});
