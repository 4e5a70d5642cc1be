// Envoy's own local replies reach clients as the gateway's JSON error, with
// x-request-id. Here: the cases that need no sidecar answer (sidecar down).
// The end-to-end suite covers the rest once the sidecar runs.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as http1Request } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy } from '../../src/envoy/process.ts';
import type { EnvoyProcess } from '../../src/envoy/process.ts';
import { envoyBinary } from './helpers.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http1(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http1Request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

function http2(port: number, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':method': 'GET', ':path': path, ...headers });
    let status = 0;
    let respHeaders: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      respHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      session.close();
      resolve({ status, headers: respHeaders, body: Buffer.concat(chunks).toString('utf8') });
    });
    stream.on('error', reject);
    stream.setTimeout(10_000, () => stream.close());
  });
}

const GATEWAY_UNAVAILABLE = {
  error: { message: 'The gateway is temporarily unavailable.', type: 'server_error', code: 'gateway_unavailable', param: null },
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function assertGatewayUnavailable(r: Reply, clientRequestId?: string): void {
  assert.equal(r.status, 503, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(JSON.parse(r.body), GATEWAY_UNAVAILABLE);
  const rid = r.headers['x-request-id'];
  assert.equal(typeof rid, 'string', 'x-request-id header on the local reply');
  assert.match(rid as string, UUID);
  // Envoy generates the id at the edge and overwrites a client's.
  if (clientRequestId !== undefined) assert.notEqual(rid, clientRequestId);
}

for (const scenario of ['socket missing', 'socket path is not listening'] as const) {
  void describe(`sidecar down (${scenario})`, () => {
    let dir = '';
    let envoy: EnvoyProcess | undefined;
    let port = 0;
    let accessLog = '';

    before(async () => {
      const bin = await envoyBinary();
      if (bin === undefined) return;
      dir = await mkdtemp(join(tmpdir(), 'envoy-local-reply-'));
      const sidecarSocket = join(dir, 'sidecar.sock');
      // A regular file where the socket should be: connecting is refused.
      if (scenario === 'socket path is not listening') await writeFile(sidecarSocket, '');
      accessLog = join(dir, 'access.log');
      envoy = await startEnvoy({
        bin,
        workDir: dir,
        configYaml: renderGatewayConfig({
          listenerPort: 0,
          adminPort: 0,
          sidecarSocket,
          clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: 9 }],
          accessLogPath: accessLog,
        }),
      });
      port = await envoy.listenerPort();
    });

    after(async () => {
      await envoy?.stop();
      if (dir !== '') await rm(dir, { recursive: true, force: true });
    });

    void test('HTTP/1.1 GET → 503 gateway_unavailable JSON with x-request-id', async (t) => {
      if (envoy === undefined) return t.skip('no Envoy');
      assertGatewayUnavailable(await http1(port, 'GET', '/v1/models', { 'x-request-id': 'client-chosen-id' }), 'client-chosen-id');
    });

    void test('HTTP/1.1 POST with a JSON body → 503 gateway_unavailable', async (t) => {
      if (envoy === undefined) return t.skip('no Envoy');
      const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      assertGatewayUnavailable(await http1(port, 'POST', '/v1/chat/completions', { 'content-type': 'application/json', authorization: 'Bearer x' }, body));
    });

    void test('HTTP/2 → 503 gateway_unavailable', async (t) => {
      if (envoy === undefined) return t.skip('no Envoy');
      assertGatewayUnavailable(await http2(port, '/v1/models', {}));
    });

    void test("an Anthropic client (anthropic-version) → 503 in Anthropic's error envelope, with x-request-id", async (t) => {
      if (envoy === undefined) return t.skip('no Envoy');
      const body = JSON.stringify({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
      const r = await http1(port, 'POST', '/v1/messages', { 'content-type': 'application/json', 'x-api-key': 'x', 'anthropic-version': '2023-06-01' }, body);
      assert.equal(r.status, 503, r.body);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.deepEqual(JSON.parse(r.body), { type: 'error', error: { type: 'api_error', message: 'The gateway is temporarily unavailable.' } });
      assert.match(String(r.headers['x-request-id']), UUID);
    });

    void test('access log shows the ext_proc gRPC error the mapping keys on', async (t) => {
      if (envoy === undefined) return t.skip('no Envoy');
      await envoy.stop(); // flushes the access log
      const lines = (await readFile(accessLog, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(lines.length >= 3, `expected access log lines, got ${lines.length}`);
      for (const l of lines) {
        assert.equal(l.status, 503);
        assert.match(String(l.response_code_details), /^ext_proc_error_gRPC_error_14/);
      }
    });
  });
}
