/**
 * Admin callers with client certificates, over real TLS (node:https against
 * the control plane's HTTPS listener, certificates from test/helpers/pki.ts):
 * a certificate mapped to the write role creates; one mapped to the read
 * role reads and is refused writes (403, audited under the certificate's
 * principal and SPIFFE ID or subject); no certificate, an unmapped one and
 * one from another CA are refused (401, audited); with
 * requireClientCertificate the handshake itself fails without one. The
 * `admin` CLI authenticates with --cert/--key/--ca the same way.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { parseControlPlaneConfig } from '../../src/control-plane/config.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/main.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createTestPki, SPIFFE_APP, type CertFiles, type TestPki } from '../helpers/pki.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const run = promisify(execFile);
let pki: TestPki;
let redis: TestRedis;
let postgres: TestPostgres;
let cp: RunningControlPlane;
let strict: RunningControlPlane;
let auditFile: string;

function config(dbUrl: string, require: boolean, audit: string): unknown {
  return {
    listen: {
      host: '127.0.0.1',
      port: 0,
      tls: { certFile: 'server.pem', keyFile: 'server.key', clientCaFile: 'ca.pem', requireClientCertificate: require },
    },
    postgres: { url: dbUrl },
    redis: { url: redis.url },
    routing: { signingKeyFile: 'cp.pem' },
    auth: {
      mtls: {
        identities: [
          { spiffeId: SPIFFE_APP, principal: 'deploy-bot', roles: ['igw:admin:write'] },
          { subject: 'CN=batch-client,O=Acme', principal: 'auditor', roles: ['igw:admin:read'] },
        ],
      },
    },
    audit: { file: audit, signingKeyFile: 'admin-audit.pem' },
    logging: { level: 'silent' },
  };
}

before(async () => {
  [pki, redis, postgres] = await Promise.all([createTestPki(), startRedis(), startPostgres()]);
  generateSigningKey(join(pki.dir, 'cp.pem'));
  auditFile = join(pki.dir, 'admin-audit.jsonl');
  const log = createLogger('silent');
  cp = await startControlPlane(parseControlPlaneConfig(config(await postgres.createDatabase('cp_mtls'), false, 'admin-audit.jsonl'), 'test', pki.dir), log);
  strict = await startControlPlane(
    parseControlPlaneConfig(config(await postgres.createDatabase('cp_strict'), true, 'strict-audit.jsonl'), 'test', pki.dir),
    log,
  );
});

after(async () => {
  await cp.stop();
  await strict.stop();
  await Promise.all([redis.stop(), postgres.stop(), pki.cleanup()]);
});

interface Reply {
  status: number;
  body: { error?: { code: string; message: string }; id?: string; items?: unknown[] };
}

function call(port: number, method: string, path: string, cert: CertFiles | null, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: readFileSync(pki.caCert),
        ...(cert === null ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: (text === '' ? {} : JSON.parse(text)) as Reply['body'] }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

interface AdminLine {
  type: string;
  outcome: string;
  status: number;
  method: string;
  path: string;
  code: string | null;
  actor: { method: string; principal: string; spiffeId?: string | null; subject?: string | null; certDigest?: string } | null;
}

function auditRecords(): AdminLine[] {
  return readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AdminLine)
    .filter((r) => r.type === 'admin');
}

test('a certificate mapped to the write role creates; a read-only one reads and is refused writes, audited under its identity', async () => {
  const created = await call(cp.port, 'POST', '/v1/models', pki.clients.spiffe, { id: 'tls-model', endpoints: ['chat'] });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.id, 'tls-model');

  const listed = await call(cp.port, 'GET', '/v1/models', pki.clients.subject);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(listed.body.items?.length, 1);

  const refused = await call(cp.port, 'POST', '/v1/models', pki.clients.subject, { id: 'other', endpoints: ['chat'] });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error?.code, 'forbidden');
  assert.match(refused.body.error?.message ?? '', /igw:admin:write role; the certificate has igw:admin:read/);

  const records = auditRecords();
  const write = records.find((r) => r.method === 'POST' && r.outcome === 'ok');
  assert.equal(write?.actor?.method, 'mtls');
  assert.equal(write?.actor?.principal, 'deploy-bot');
  assert.equal(write?.actor?.spiffeId, SPIFFE_APP);
  assert.equal(write?.actor?.certDigest, pki.clients.spiffe.sha256);
  const refusal = records.find((r) => r.status === 403);
  assert.equal(refusal?.outcome, 'refused');
  assert.equal(refusal?.actor?.principal, 'auditor');
  assert.equal(refusal?.actor?.subject, 'CN=batch-client,O=Acme');
  assert.equal(refusal?.actor?.certDigest, pki.clients.subject.sha256);
});

test('no certificate, an unmapped one, or one from another CA: 401, audited', async () => {
  const none = await call(cp.port, 'GET', '/v1/models', null);
  assert.equal(none.status, 401);
  assert.equal(none.body.error?.code, 'unauthenticated');
  const unmapped = await call(cp.port, 'GET', '/v1/models', pki.clients.foreignDomain);
  assert.equal(unmapped.status, 401);
  assert.equal(unmapped.body.error?.code, 'untrusted_client_certificate');
  const ambiguous = await call(cp.port, 'GET', '/v1/models', pki.clients.twoSans);
  assert.equal(ambiguous.status, 401);
  assert.equal(ambiguous.body.error?.code, 'untrusted_client_certificate');
  const foreign = await call(cp.port, 'POST', '/v1/models', pki.clients.otherCa, { id: 'x', endpoints: ['chat'] });
  assert.equal(foreign.status, 401);
  assert.equal(foreign.body.error?.code, 'untrusted_client_certificate');
  const refusals = auditRecords().filter((r) => r.status === 401);
  assert.equal(refusals.length, 4);
  assert.ok(refusals.every((r) => r.outcome === 'refused' && r.actor === null));
  // A bearer token is not a credential when only auth.mtls is configured.
  const withToken = await new Promise<number>((resolve, reject) => {
    request(
      { host: '127.0.0.1', port: cp.port, path: '/v1/models', ca: readFileSync(pki.caCert), headers: { authorization: 'Bearer x.y.z' }, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
  assert.equal(withToken, 401);
});

test('requireClientCertificate: the handshake fails without a trusted certificate; a mapped one still works', async () => {
  await assert.rejects(call(strict.port, 'GET', '/v1/models', null), (err: Error & { code?: string }) =>
    /ECONNRESET|EPROTO|certificate/i.test(`${err.code} ${err.message}`),
  );
  await assert.rejects(call(strict.port, 'GET', '/v1/models', pki.clients.otherCa), (err: Error & { code?: string }) =>
    /ECONNRESET|EPROTO|certificate|unknown ca/i.test(`${err.code} ${err.message}`),
  );
  assert.equal((await call(strict.port, 'GET', '/v1/models', pki.clients.subject)).status, 200);
});

test('the admin CLI authenticates with --cert/--key/--ca', async () => {
  const cli = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
    run(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'admin', '--url', `https://127.0.0.1:${cp.port}`, '--ca', pki.caCert, ...args], {
      encoding: 'utf8',
      env: { ...process.env, INFERENCE_GATEWAY_ADMIN_TOKEN: '' },
    });
  const { stdout } = await cli([
    '--cert',
    pki.clients.spiffe.cert,
    '--key',
    pki.clients.spiffe.key,
    'tenants',
    'create',
    '--set',
    'id=research',
    '--set',
    'org=acme',
  ]);
  assert.equal((JSON.parse(stdout) as { id: string }).id, 'research');
  await assert.rejects(
    cli(['--cert', pki.clients.subject.cert, '--key', pki.clients.subject.key, 'tenants', 'delete', 'research']),
    (err: { code?: number; stderr?: string }) => err.code === 1 && /igw:admin:write role/.test(err.stderr ?? ''),
  );
});
