// mTLS with the real Envoy: the gateway listener rendered with a TLS context
// (renderGatewayConfig({ tls })), the test PKI (test/helpers/pki.ts) and a
// throwaway ext_proc server that records what Envoy tells it about the
// connection and answers every request itself (ImmediateResponse 200), so
// nothing goes upstream. Shows exactly what reaches the sidecar for each kind
// of client certificate, that the wrong certificates never get past the TLS
// handshake, and that a client-sent x-forwarded-client-cert never reaches it.

import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { ConfigSchema } from '../../src/config/schema.ts';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import type { ListenerTlsOptions } from '../../src/envoy/config.ts';
import { startEnvoy, validateEnvoyConfig } from '../../src/envoy/process.ts';
import type { EnvoyProcess } from '../../src/envoy/process.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { Struct, Value } from '../../src/server/proto/common.ts';
import type { ExternalProcessorHandlers, ProcessingRequest } from '../../src/server/proto/ext-proc.ts';
import { ExternalProcessorService } from '../../src/server/proto/load.ts';
import { connectionInfoFromAttributes } from '../../src/server/extproc/attributes.ts';
import { MtlsVerifier } from '../../src/stages/auth/mtls.ts';
import { createTestPki, SPIFFE_APP, SPIFFE_FOREIGN, SPIFFE_OTHER } from '../helpers/pki.ts';
import type { CertFiles, TestPki } from '../helpers/pki.ts';
import { envoyBinary } from './helpers.ts';

// ---------------------------------------------------------------- the recording ext_proc server

interface Seen {
  readonly attributes: Record<string, Struct> | undefined;
  readonly headers: ReadonlyMap<string, string>;
}

class RecordingProcessor {
  readonly seen: Seen[] = [];
  readonly #server = new grpc.Server();

  async listen(socket: string): Promise<void> {
    const handlers: ExternalProcessorHandlers = {
      Process: (call) => {
        call.on('data', (msg: ProcessingRequest) => {
          if (msg.request !== 'request_headers') return;
          const headers = new Map<string, string>();
          for (const h of msg.request_headers.headers?.headers ?? []) headers.set(h.key ?? '', h.raw_value?.toString('utf8') ?? h.value ?? '');
          this.seen.push({ attributes: msg.attributes, headers });
          call.write({
            immediate_response: {
              status: { code: 200 },
              details: 'inference_gateway_test',
              headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('text/plain') } }] },
              body: Buffer.from('answered by the test processor'),
            },
          });
          call.end();
        });
        call.on('error', () => {});
      },
    };
    this.#server.addService(ExternalProcessorService, handlers);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err === null ? resolve() : reject(err)));
    });
  }

  /** The one request recorded since the last take(). */
  take(): Seen {
    assert.equal(this.seen.length, 1, `expected exactly one request at the processor, got ${this.seen.length}`);
    const s = this.seen[0];
    this.seen.length = 0;
    assert.ok(s !== undefined);
    return s;
  }

  stop(): void {
    this.#server.forceShutdown();
  }
}

// ---------------------------------------------------------------- setup

let pki: TestPki;
let dir: string;
let processor: RecordingProcessor;
/** require_client_certificate: true */
let strict: EnvoyProcess;
/** require_client_certificate: false */
let optional: EnvoyProcess;
let plaintext: EnvoyProcess;
let skipped = false;

const tlsOptions = (requireClientCertificate: boolean): ListenerTlsOptions => ({
  certChainFile: pki.server.cert,
  privateKeyFile: pki.server.key,
  clientCaFile: pki.caCert,
  requireClientCertificate,
});

before(async () => {
  const bin = await envoyBinary();
  if (bin === undefined) {
    skipped = true;
    return;
  }
  dir = await mkdtemp(join(tmpdir(), 'envoy-mtls-test-'));
  pki = await createTestPki(dir);
  processor = new RecordingProcessor();
  const socket = join(dir, 'sidecar.sock');
  await processor.listen(socket);
  const render = (tls: ListenerTlsOptions | undefined): string =>
    renderGatewayConfig({ listenerPort: 0, adminPort: 0, sidecarSocket: socket, clusters: [], ...(tls === undefined ? {} : { tls }) });
  [strict, optional, plaintext] = await Promise.all([
    startEnvoy({ bin, workDir: join(dir, 'strict'), configYaml: render(tlsOptions(true)) }),
    startEnvoy({ bin, workDir: join(dir, 'optional'), configYaml: render(tlsOptions(false)) }),
    startEnvoy({ bin, workDir: join(dir, 'plaintext'), configYaml: render(undefined) }),
  ]);
});

after(async () => {
  await Promise.all([strict?.stop(), optional?.stop(), plaintext?.stop()]);
  processor?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- clients

interface Reply {
  status: number;
  body: string;
}

interface TlsClient {
  cert?: CertFiles;
  headers?: Record<string, string>;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** One HTTPS/1.1 request on a fresh connection. */
function httpsGet(envoy: EnvoyProcess, client: TlsClient = {}): Promise<Reply> {
  return envoy.listenerPort().then(
    (port) =>
      new Promise<Reply>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/models',
            servername: 'localhost',
            ca: readFileSync(pki.caCert),
            ...(client.cert === undefined ? {} : { cert: readFileSync(client.cert.cert), key: readFileSync(client.cert.key) }),
            ...(client.minVersion === undefined ? {} : { minVersion: client.minVersion }),
            ...(client.maxVersion === undefined ? {} : { maxVersion: client.maxVersion }),
            headers: client.headers ?? {},
            agent: false,
            timeout: 5000,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      }),
  );
}

function httpGet(envoy: EnvoyProcess, headers: Record<string, string>): Promise<Reply> {
  return envoy.listenerPort().then(
    (port) =>
      new Promise<Reply>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/v1/models', headers, agent: false, timeout: 5000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('timeout', () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      }),
  );
}

/** The handshake (or the first read after it: TLS 1.3 reports a refused client certificate there) fails. */
async function assertRefused(envoy: EnvoyProcess, client: TlsClient, alert: RegExp): Promise<void> {
  await assert.rejects(httpsGet(envoy, client), (err: unknown) => {
    assert.ok(err instanceof Error);
    const code = 'code' in err ? String(err.code) : '';
    assert.match(`${code} ${err.message}`, alert);
    return true;
  });
  assert.equal(processor.seen.length, 0, 'nothing may reach the processor');
}

async function sslStats(envoy: EnvoyProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`${envoy.adminUrl}/stats?filter=ssl\\.`)).text();
  const stats = new Map<string, number>();
  for (const line of text.split('\n')) {
    // e.g. "listener.127.0.0.1_0.ssl.fail_verify_no_cert: 1"
    const m = /^listener\..+?\.ssl\.([a-z_]+): (\d+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) stats.set(m[1], (stats.get(m[1]) ?? 0) + Number(m[2]));
  }
  return stats;
}

function fieldsOf(seen: Seen): Record<string, Value> {
  const fields = seen.attributes?.['envoy.filters.http.ext_proc']?.fields;
  assert.ok(fields !== undefined, 'attributes["envoy.filters.http.ext_proc"] must be present');
  return fields;
}

const str = (v: string): Value => ({ stringValue: v, kind: 'stringValue' });
const bool = (v: boolean): Value => ({ boolValue: v, kind: 'boolValue' });

function pemOf(c: CertFiles): string {
  return readFileSync(c.cert, 'utf8');
}

// ---------------------------------------------------------------- tests

void test('client certificate (a): Envoy hands the processor the SPIFFE URI SAN, subject, digest and PEM', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const reply = await httpsGet(strict, { cert: pki.clients.spiffe });
  assert.deepEqual(reply, { status: 200, body: 'answered by the test processor' });
  const seen = processor.take();
  const fields = fieldsOf(seen);
  const source = fields['source.address'];
  assert.ok(source?.kind === 'stringValue' && /^127\.0\.0\.1:\d+$/.test(source.stringValue), 'source.address is "ip:port"');
  // The exact decoded shape (protobufjs: camelCase kind + value).
  assert.deepEqual(fields, {
    'connection.mtls': bool(true),
    'connection.peer_certificate_valid': bool(true),
    'connection.uri_san_peer_certificate': str(SPIFFE_APP),
    'connection.subject_peer_certificate': str('CN=team-a-app'),
    'connection.sha256_peer_certificate_digest': str(pki.clients.spiffe.sha256),
    'connection.peer_certificate': str(pemOf(pki.clients.spiffe)),
    'source.address': source,
  });
  assert.equal(seen.headers.get(':scheme'), 'https');

  assert.deepEqual(connectionInfoFromAttributes(seen.attributes), {
    mtls: true,
    uriSans: [SPIFFE_APP],
    subject: 'CN=team-a-app',
    sha256Digest: pki.clients.spiffe.sha256,
    sourceAddress: source.stringValue,
  });
});

void test('client certificate (c), two URI SANs: the uri_san attribute holds only the first; the PEM holds both', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  await httpsGet(strict, { cert: pki.clients.twoSans });
  const seen = processor.take();
  const fields = fieldsOf(seen);
  assert.deepEqual(fields['connection.uri_san_peer_certificate'], str(SPIFFE_APP), 'first SAN only, nothing joined with ","');
  assert.deepEqual(fields['connection.peer_certificate'], str(pemOf(pki.clients.twoSans)));
  const info = connectionInfoFromAttributes(seen.attributes);
  assert.deepEqual(info.uriSans, [SPIFFE_APP, SPIFFE_OTHER]);
  assert.equal(info.subject, 'CN=two-sans');
  assert.equal(info.sha256Digest, pki.clients.twoSans.sha256);
});

void test('client certificate (b), subject only: RFC 2253 subject, no uri_san attribute', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  await httpsGet(strict, { cert: pki.clients.subject });
  const seen = processor.take();
  const fields = fieldsOf(seen);
  assert.equal(fields['connection.uri_san_peer_certificate'], undefined);
  assert.deepEqual(fields['connection.subject_peer_certificate'], str('CN=batch-client,O=Acme'));
  assert.deepEqual(connectionInfoFromAttributes(seen.attributes), {
    mtls: true,
    uriSans: [],
    subject: 'CN=batch-client,O=Acme',
    sha256Digest: pki.clients.subject.sha256,
    sourceAddress: connectionInfoFromAttributes(seen.attributes).sourceAddress,
  });
});

void test('the verifier on what Envoy reported: (a) and (b) map, (c) and (d) are refused', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const verifier = new MtlsVerifier(
    ConfigSchema.parse({
      auth: {
        mtls: {
          trustDomains: ['prod.example.org'],
          identities: [
            { spiffeId: 'spiffe://prod.example.org/ns/team-a/*', principal: 'team-a', org: 'acme', tenant: 'team-a' },
            { subject: 'CN=batch-client,O=Acme', principal: 'batch', org: 'acme', tenant: 'batch' },
          ],
        },
      },
    }).auth.mtls,
  );
  const infoFor = async (cert: CertFiles): Promise<ReturnType<typeof connectionInfoFromAttributes>> => {
    await httpsGet(strict, { cert });
    return connectionInfoFromAttributes(processor.take().attributes);
  };
  const a = verifier.verify(await infoFor(pki.clients.spiffe));
  assert.equal(a?.principal, 'team-a');
  assert.equal(a?.spiffeId, SPIFFE_APP);
  assert.equal(a?.certDigest, pki.clients.spiffe.sha256);
  assert.equal(verifier.verify(await infoFor(pki.clients.subject))?.principal, 'batch');
  const refused =
    (reason: RegExp) =>
    (err: unknown): boolean =>
      err instanceof GatewayError && err.code === 'untrusted_client_certificate' && reason.test(err.message);
  const c = await infoFor(pki.clients.twoSans);
  assert.throws(() => verifier.verify(c), refused(/several URI SANs/));
  const d = await infoFor(pki.clients.foreignDomain);
  assert.deepEqual(d.uriSans, [SPIFFE_FOREIGN]);
  assert.throws(() => verifier.verify(d), refused(/trust domain/));
});

void test('no client certificate: the TLS handshake is refused (require_client_certificate)', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const before = await sslStats(strict);
  // TLS 1.3: alert 116 certificate_required; TLS 1.2: alert 40 handshake_failure.
  await assertRefused(strict, {}, /tlsv13 alert certificate required/);
  await assertRefused(strict, { maxVersion: 'TLSv1.2' }, /alert handshake failure/);
  const afterStats = await sslStats(strict);
  assert.equal((afterStats.get('fail_verify_no_cert') ?? 0) - (before.get('fail_verify_no_cert') ?? 0), 2);
});

void test('client certificate (e) from another CA: the TLS handshake is refused, TLS 1.3 and 1.2', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const before = await sslStats(strict);
  await assertRefused(strict, { cert: pki.clients.otherCa }, /tlsv1 alert unknown ca/);
  await assertRefused(strict, { cert: pki.clients.otherCa, maxVersion: 'TLSv1.2' }, /tlsv1 alert unknown ca/);
  // Also where a client certificate is optional: one that is presented must still verify.
  await assertRefused(optional, { cert: pki.clients.otherCa }, /tlsv1 alert unknown ca/);
  const afterStats = await sslStats(strict);
  assert.equal((afterStats.get('fail_verify_error') ?? 0) - (before.get('fail_verify_error') ?? 0), 2);
});

void test('TLS 1.1 is refused (tls_minimum_protocol_version TLSv1_2)', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const port = await strict.listenerPort();
  const error = await new Promise<Error | null>((resolve) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.clients.spiffe.cert),
        key: readFileSync(pki.clients.spiffe.key),
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0', // lets this client offer TLS 1.1 at all
      },
      () => {
        socket.destroy();
        resolve(null);
      },
    );
    socket.on('error', resolve);
  });
  assert.ok(error !== null, 'a TLS 1.1 handshake must fail');
  assert.match(error.message, /alert protocol version/);
  assert.equal(processor.seen.length, 0);
});

void test('TLS 1.2 works (the floor), with the same attributes', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const reply = await httpsGet(strict, { cert: pki.clients.spiffe, maxVersion: 'TLSv1.2' });
  assert.equal(reply.status, 200);
  assert.deepEqual(connectionInfoFromAttributes(processor.take().attributes).uriSans, [SPIFFE_APP]);
});

void test('HTTP/2 over TLS (ALPN h2) carries the same connection attributes', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const port = await strict.listenerPort();
  const session = http2.connect(`https://localhost:${port}`, {
    ca: readFileSync(pki.caCert),
    cert: readFileSync(pki.clients.spiffe.cert),
    key: readFileSync(pki.clients.spiffe.key),
  });
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/v1/models' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
    assert.equal(status, 200);
  } finally {
    session.close();
  }
  const info = connectionInfoFromAttributes(processor.take().attributes);
  assert.equal(info.mtls, true);
  assert.equal(info.sha256Digest, pki.clients.spiffe.sha256);
});

void test('a client-sent x-forwarded-client-cert never reaches the processor (mTLS, TLS without cert, plaintext)', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const spoof = { 'x-forwarded-client-cert': `By=${SPIFFE_APP};Hash=00;URI=spiffe://prod.example.org/ns/admin/sa/root;Subject="CN=admin"` };
  await httpsGet(strict, { cert: pki.clients.subject, headers: spoof });
  const withCert = processor.take();
  assert.equal(withCert.headers.has('x-forwarded-client-cert'), false);
  assert.equal(connectionInfoFromAttributes(withCert.attributes).subject, 'CN=batch-client,O=Acme');

  await httpsGet(optional, { headers: spoof });
  const noCert = processor.take();
  assert.equal(noCert.headers.has('x-forwarded-client-cert'), false);
  assert.equal(connectionInfoFromAttributes(noCert.attributes).mtls, false);

  await httpGet(plaintext, spoof);
  const plain = processor.take();
  assert.equal(plain.headers.has('x-forwarded-client-cert'), false);
  for (const h of plain.headers.keys()) assert.ok(!h.includes('client-cert'), h);
});

void test('TLS without a client certificate (optional) and plaintext: connection.mtls false, no identity', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  await httpsGet(optional);
  const tlsNoCert = processor.take();
  const f = fieldsOf(tlsNoCert);
  assert.deepEqual(f['connection.mtls'], bool(false));
  assert.deepEqual(f['connection.peer_certificate_valid'], bool(false));
  assert.deepEqual(f['connection.subject_peer_certificate'], str(''));
  assert.equal(f['connection.peer_certificate'], undefined);
  const info = connectionInfoFromAttributes(tlsNoCert.attributes);
  assert.equal(info.mtls, false);
  assert.equal(info.subject, null);

  await httpGet(plaintext, {});
  const plain = fieldsOf(processor.take());
  assert.deepEqual(Object.keys(plain).sort(), ['connection.mtls', 'connection.peer_certificate_valid', 'source.address']);
  assert.deepEqual(plain['connection.mtls'], bool(false));
});

void test('the TLS render: DownstreamTlsContext, SANITIZE, envoy --mode validate; no TLS = unchanged', async (t) => {
  if (skipped) return t.skip('Envoy unavailable');
  const base = { listenerPort: 0, adminPort: 0, sidecarSocket: '/tmp/x.sock', clusters: [] };
  type Obj = Record<string, unknown>;
  const listener = (yaml: string): Obj => {
    const doc = YAML.parse(yaml) as { static_resources: { listeners: Obj[] } };
    const l = doc.static_resources.listeners.find((x) => x.name === 'gateway');
    assert.ok(l !== undefined);
    return l;
  };
  const chain = (l: Obj): Obj => (l.filter_chains as Obj[])[0] ?? {};
  const hcm = (l: Obj): Obj => ((chain(l).filters as Obj[])[0]?.typed_config ?? {}) as Obj;

  const tlsYaml = renderGatewayConfig({ ...base, tls: tlsOptions(true) });
  const tlsListener = listener(tlsYaml);
  assert.deepEqual(chain(tlsListener).transport_socket, {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        alpn_protocols: ['h2', 'http/1.1'],
        tls_certificates: [{ certificate_chain: { filename: pki.server.cert }, private_key: { filename: pki.server.key } }],
        validation_context: { trusted_ca: { filename: pki.caCert } },
      },
    },
  });
  assert.equal(hcm(tlsListener).forward_client_cert_details, 'SANITIZE');
  const validated = await validateEnvoyConfig({ configYaml: tlsYaml });
  assert.ok(validated.ok, validated.output);

  const plainListener = listener(renderGatewayConfig(base));
  assert.equal(chain(plainListener).transport_socket, undefined);
  assert.equal(hcm(plainListener).forward_client_cert_details, undefined, 'the template relies on the default (SANITIZE)');

  // Missing files are Envoy's to report; empty paths are ours.
  assert.throws(() => renderGatewayConfig({ ...base, tls: { ...tlsOptions(true), clientCaFile: '' } }), /tls\.clientCaFile must not be empty/);
  const missing = await validateEnvoyConfig({
    configYaml: renderGatewayConfig({ ...base, tls: { ...tlsOptions(true), clientCaFile: join(dir, 'nope.pem') } }),
  });
  assert.equal(missing.ok, false);
});
