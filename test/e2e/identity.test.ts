/**
 * Identity through real Envoy (TLS listener, client certificates optional),
 * with the official openai client: API keys (inline and a watched key file),
 * JWTs from a JWKS server, mTLS workload identities — each alone, together,
 * and every attack from the issue, each refused with our JSON error and
 * nothing reaching the model server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { stringify } from 'yaml';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { createTestPki, SPIFFE_APP, type CertFiles, type TestPki } from '../helpers/pki.ts';
import {
  hs256WithPublicKey,
  makeKeyPair,
  mintFor,
  oversizedToken,
  standardClaims,
  startJwksServer,
  tamperSignature,
  unsignedToken,
  type JwksServer,
  type TestKeyPair,
} from '../helpers/jwt.ts';
import { makeKey, runKeysCli } from '../stores/keys-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const ISS = 'https://idp.test';
const AUD = 'inference-gateway';

let stack: TestStack;
let pki: TestPki;
let jwks: JwksServer;
let signer: TestKeyPair;
const fileKey = makeKey({ principal: 'dave', tenant: 'research' });
let keyFile: string;

before(async () => {
  pki = await createTestPki();
  signer = await makeKeyPair('RS256');
  jwks = await startJwksServer({ keys: [signer] });
  const dir = pki.dir;
  keyFile = join(dir, 'keys.yaml');
  writeFileSync(
    keyFile,
    stringify(
      [{ ...fileKey.record, createdAt: undefined, expiresAt: undefined, revokedAt: undefined }].map((r) =>
        Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)),
      ),
    ),
  );
  stack = await startTestStack({
    keys: [
      { principal: 'alice', tenant: 'research' },
      { principal: 'carol', tenant: 'secure' },
      { principal: 'old', tenant: 'research', expiresAt: '2020-01-01T00:00:00Z' },
    ],
    tls: { certChainFile: pki.server.cert, privateKeyFile: pki.server.key, clientCaFile: pki.caCert, requireClientCertificate: false },
    config: {
      auth: {
        apiKeyFiles: [keyFile],
        jwt: { issuers: [{ issuer: ISS, audiences: [AUD], jwksUri: jwks.url, jwksCooldownSeconds: 30 }] },
        mtls: {
          trustDomains: ['prod.example.org'],
          identities: [
            { spiffeId: SPIFFE_APP, principal: 'team-a-app', org: 'acme', tenant: 'research' },
            { subject: 'CN=batch-client,O=Acme', principal: 'batch', org: 'acme', tenant: 'secure' },
          ],
        },
        require: [{ tenant: 'secure', methods: ['mtls', 'api_key'] }],
      },
    },
  });
});

after(async () => {
  await stack.stop();
  await jwks.close();
  await pki.cleanup();
});

function client(opts: { bearer?: string; cert?: CertFiles; headers?: Record<string, string | null> } = {}): OpenAI {
  const agent = new Agent({
    connect: { ca: readFileSync(pki.caCert), ...(opts.cert === undefined ? {} : { cert: readFileSync(opts.cert.cert), key: readFileSync(opts.cert.key) }) },
  });
  return new OpenAI({
    baseURL: stack.baseURL,
    apiKey: opts.bearer ?? 'unused',
    maxRetries: 0,
    timeout: 10_000,
    fetch: ((url: string, init: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch,
    defaultHeaders: { ...(opts.bearer === undefined ? { authorization: null } : {}), ...opts.headers },
  });
}

const ask = (c: OpenAI) => c.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
const key = (principal: string): string => stack.files.keys[principal] ?? '';
const claims = (extra: Record<string, unknown> = {}) =>
  standardClaims({ iss: ISS, aud: AUD, sub: 'u-42', nowMs: Date.now() }, { org: 'acme', tenant: 'research', ...extra });

async function accepted(c: OpenAI): Promise<Record<string, string | string[] | undefined>> {
  stack.upstream.clearRequests();
  const r = await ask(c);
  assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
  const up = stack.upstream.requests.at(-1);
  assert.ok(up);
  return up.headers;
}

async function refused(c: OpenAI, status: number, code: string): Promise<void> {
  stack.upstream.clearRequests();
  try {
    await ask(c);
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, status, JSON.stringify(err.error));
    assert.equal(err.code, code, JSON.stringify(err.error));
    assert.equal(stack.upstream.requests.length, 0, 'nothing reached the model server');
    return;
  }
  assert.fail(`accepted; expected ${status} ${code}`);
}

describe('each method is accepted, and they combine', () => {
  test('API key (inline)', async () => {
    const h = await accepted(client({ bearer: key('alice') }));
    assert.equal(h['x-gateway-auth-method'], 'api_key');
    assert.equal(h['x-gateway-principal'], 'alice');
  });

  test('API key from the watched key file', async () => {
    const h = await accepted(client({ bearer: fileKey.key }));
    assert.equal(h['x-gateway-principal'], 'dave');
  });

  test('JWT (RS256 from the JWKS)', async () => {
    const h = await accepted(client({ bearer: await mintFor(signer, claims({ roles: ['analyst'] })) }));
    assert.equal(h['x-gateway-auth-method'], 'jwt');
    assert.equal(h['x-gateway-principal'], 'u-42');
    assert.equal(h['x-gateway-roles'], 'analyst');
  });

  test('mTLS workload identity (SPIFFE)', async () => {
    const h = await accepted(client({ cert: pki.clients.spiffe }));
    assert.equal(h['x-gateway-auth-method'], 'mtls');
    assert.equal(h['x-gateway-principal'], 'team-a-app');
    assert.equal(h['x-gateway-workload'], SPIFFE_APP);
  });

  test('JWT + mTLS: the JWT names the principal, the workload is kept', async () => {
    const h = await accepted(client({ bearer: await mintFor(signer, claims()), cert: pki.clients.spiffe }));
    assert.equal(h['x-gateway-auth-method'], 'jwt,mtls');
    assert.equal(h['x-gateway-principal'], 'u-42');
    assert.equal(h['x-gateway-workload'], SPIFFE_APP);
  });

  test('a tenant that requires mTLS plus an API key: each alone is refused, both together accepted', async () => {
    await refused(client({ bearer: key('carol') }), 401, 'additional_credential_required');
    await refused(client({ cert: pki.clients.subject }), 401, 'additional_credential_required');
    const h = await accepted(client({ bearer: key('carol'), cert: pki.clients.subject }));
    assert.equal(h['x-gateway-auth-method'], 'api_key,mtls');
    assert.equal(h['x-gateway-tenant'], 'secure');
  });

  test('two credentials naming different tenants conflict', async () => {
    await refused(client({ bearer: key('carol'), cert: pki.clients.spiffe }), 401, 'credential_conflict');
  });
});

describe('attacks are refused before the body is read', () => {
  test('JWT: alg none in any case', async (t) => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await t.test(alg, async () => {
        await refused(client({ bearer: unsignedToken(claims(), { alg }) }), 401, 'invalid_token');
      });
    }
  });

  test('JWT: HS256 signed with the RSA public key', async () => {
    await refused(client({ bearer: hs256WithPublicKey(signer, claims(), 'pem') }), 401, 'invalid_token');
  });

  test('JWT: expired, not yet valid, wrong issuer, wrong audience, missing exp, tampered, oversized', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(client({ bearer: await mintFor(signer, claims({ exp: now - 600 })) }), 401, 'invalid_token');
    await refused(client({ bearer: await mintFor(signer, claims({ nbf: now + 600 })) }), 401, 'invalid_token');
    await refused(client({ bearer: await mintFor(signer, claims({ iss: 'https://evil.test' })) }), 401, 'invalid_token');
    await refused(client({ bearer: await mintFor(signer, claims({ aud: 'someone-else' })) }), 401, 'invalid_token');
    const { exp: _exp, ...noExp } = claims();
    await refused(client({ bearer: await mintFor(signer, noExp) }), 401, 'invalid_token');
    await refused(client({ bearer: tamperSignature(await mintFor(signer, claims())) }), 401, 'invalid_token');
    await refused(client({ bearer: await oversizedToken(signer, claims(), 9000) }), 401, 'invalid_token');
  });

  test('JWT: a flood of unknown kids costs at most one JWKS fetch per cooldown', async () => {
    const stranger = await makeKeyPair('RS256');
    const before = jwks.requests;
    for (let i = 0; i < 20; i++) {
      await refused(client({ bearer: await mintFor(stranger, claims(), { kid: `unknown-${i}` }) }), 401, 'invalid_token');
    }
    assert.ok(jwks.requests - before <= 1, `${jwks.requests - before} JWKS fetches`);
  });

  test('API keys: bad checksum, unknown, expired', async () => {
    const k = key('alice');
    await refused(client({ bearer: k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A') }), 401, 'invalid_api_key');
    await refused(client({ bearer: makeKey().key }), 401, 'invalid_api_key');
    await refused(client({ bearer: key('old') }), 401, 'invalid_api_key');
  });

  test('API keys: a key revoked with the CLI is refused within seconds', async () => {
    const r = await runKeysCli(['revoke', fileKey.record.id, '--file', keyFile]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(
      async () => {
        try {
          await ask(client({ bearer: fileKey.key }));
          return false; // still accepted
        } catch (err) {
          assert.ok(err instanceof OpenAI.APIError);
          assert.equal(err.code, 'invalid_api_key');
          return true;
        }
      },
      { what: 'the revoked key to be refused (still accepted)', timeoutMs: 5000, intervalMs: 100 },
    );
  });

  test('mTLS: certificate from another CA is refused at the handshake', async () => {
    stack.upstream.clearRequests();
    await assert.rejects(ask(client({ bearer: key('alice'), cert: pki.clients.otherCa })), (err: unknown) => err instanceof OpenAI.APIConnectionError);
    assert.equal(stack.upstream.requests.length, 0);
  });

  test('mTLS: foreign trust domain, two URI SANs', async () => {
    await refused(client({ cert: pki.clients.foreignDomain }), 401, 'untrusted_client_certificate');
    await refused(client({ cert: pki.clients.twoSans }), 401, 'untrusted_client_certificate');
  });

  test('spoofed identity headers are ignored: the certificate comes from Envoy, x-gateway-* from the sidecar', async () => {
    const spoof = {
      'x-forwarded-client-cert': `By=spiffe://prod.example.org/gw;URI=${SPIFFE_APP}`,
      'x-gateway-principal': 'root',
      'x-gateway-workload': SPIFFE_APP,
      'x-gateway-tenant': 'secure',
    };
    await refused(client({ headers: spoof }), 401, 'missing_api_key');
    const h = await accepted(client({ bearer: key('alice'), headers: spoof }));
    assert.equal(h['x-gateway-principal'], 'alice');
    assert.equal(h['x-gateway-tenant'], 'research');
    assert.equal(h['x-gateway-workload'], undefined);
    assert.equal(h['x-forwarded-client-cert'], undefined);
  });
});

test('the audit record names every verified method, never a secret', () => {
  const records = readAudit(stack.files.auditFile);
  const both = records.find((r) => r.identity?.methods.join(',') === 'api_key,mtls');
  assert.ok(both);
  assert.equal(both.identity?.mtls?.subject, 'CN=batch-client,O=Acme');
  const raw = JSON.stringify(records);
  for (const k of Object.values(stack.files.keys)) assert.ok(!raw.includes(k));
  assert.ok(!raw.includes(fileKey.key));
});
