/**
 * The introspection verifier against a real authorization server
 * (oidc-provider, src/devtools/idp.ts), with the verifier's clock injected:
 * each client authentication method, RFC 9701 signed answers, the cache's
 * lifetimes (recheck, negative, bound), coalescing, the circuit breaker and
 * the claims mapping. The IdP counts the calls it receives.
 *
 * Answer shapes a conforming IdP cannot be made to produce (an `iss` of
 * another issuer, a future `nbf`, an odd token_type, `scp` as an array) are
 * checked through `clientFor`, which replaces only the HTTP call.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { ConfigSchema, type AuthConfig } from '../../src/config/schema.ts';
import { GATEWAY_RESOURCE, startIdp, type DemoIdp } from '../../src/devtools/idp.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { IntrospectionVerifier, type IntrospectionOutcome } from '../../src/stages/auth/introspection.ts';
import { testClock } from '../helpers/clock.ts';
import { makeKeyPair, startJwksServer, type JwksServer } from '../helpers/jwt.ts';
import { createTestPki, type TestPki } from '../helpers/pki.ts';

let idp: DemoIdp;
let pki: TestPki;
let otherJwks: JwksServer;
let secretFile: string;
let keyFile: string;

before(async () => {
  pki = await createTestPki();
  secretFile = join(pki.dir, 'rs-secret');
  writeFileSync(secretFile, 'rs-secret-value\n');
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  keyFile = join(pki.dir, 'rs-key.pem');
  writeFileSync(keyFile, await exportPKCS8(privateKey));
  idp = await startIdp({
    resourceServers: [
      { id: 'rs-basic', auth: 'client_secret_basic', secret: 'rs-secret-value' },
      { id: 'rs-post', auth: 'client_secret_post', secret: 'rs-secret-value' },
      { id: 'rs-pkjwt', auth: 'private_key_jwt', publicJwk: { ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'rs-1' } },
      { id: 'rs-signed', auth: 'client_secret_basic', secret: 'rs-secret-value', signedIntrospection: true },
    ],
  });
  otherJwks = await startJwksServer({ keys: [await makeKeyPair('RS256')] });
});

after(async () => {
  await idp.close();
  await otherJwks.close();
  await pki.cleanup();
});

type IssuerInput = Record<string, unknown>;

function config(issuer: IssuerInput = {}, extra: Record<string, unknown> = {}): AuthConfig['introspection'] {
  return ConfigSchema.parse({
    auth: {
      introspection: {
        clockSkewSeconds: 0,
        ...extra,
        issuers: [
          {
            issuer: idp.issuer,
            introspectionUri: idp.introspectionUrl,
            audiences: [GATEWAY_RESOURCE],
            client: { method: 'client_secret_basic', id: 'rs-basic', secretFile },
            ...issuer,
          },
        ],
      },
    },
  }).auth.introspection;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('client authentication to the introspection endpoint', () => {
  const methods: Array<[string, IssuerInput['client']]> = [
    ['client_secret_basic', { method: 'client_secret_basic', id: 'rs-basic', secretFile: '' }],
    ['client_secret_post', { method: 'client_secret_post', id: 'rs-post', secretFile: '' }],
    ['private_key_jwt', { method: 'private_key_jwt', id: 'rs-pkjwt', privateKeyFile: '', algorithm: 'ES256', keyId: 'rs-1' }],
  ];
  for (const [name, client] of methods) {
    test(name, async () => {
      const files = { secretFile, privateKeyFile: keyFile };
      const c = Object.fromEntries(Object.entries(client as Record<string, string>).map(([k, v]) => [k, v === '' ? files[k as keyof typeof files] : v]));
      const v = new IntrospectionVerifier(config({ client: c }));
      const cred = await v.verify((await idp.token('research-app')).token);
      assert.equal(cred.method, 'introspection');
      assert.equal(cred.subject, 'research-app');
      assert.equal(cred.tenant, 'research');
    });
  }

  test('a wrong secret is the IdP refusing us: 503, never acceptance', async () => {
    const wrong = join(pki.dir, 'wrong-secret');
    writeFileSync(wrong, 'nope');
    const v = new IntrospectionVerifier(config({ client: { method: 'client_secret_basic', id: 'rs-basic', secretFile: wrong } }));
    assert.equal(await code(v.verify((await idp.token('research-app')).token)), 'authentication_unavailable');
  });

  test('tls_client_auth (RFC 8705): the gateway presents its certificate to an https IdP', async () => {
    const tlsIdp = await startIdp({
      tls: { cert: readFileSync(pki.server.cert, 'utf8'), key: readFileSync(pki.server.key, 'utf8'), clientCa: readFileSync(pki.caCert, 'utf8') },
      resourceServers: [{ id: 'rs-mtls', auth: 'tls_client_auth', subjectDn: 'CN=team-a-app' }],
    });
    try {
      const issuer = (client: Record<string, string>) => ({ issuer: tlsIdp.issuer, introspectionUri: tlsIdp.introspectionUrl, client });
      const withCert = new IntrospectionVerifier(
        config(issuer({ method: 'tls_client_auth', id: 'rs-mtls', certFile: pki.clients.spiffe.cert, keyFile: pki.clients.spiffe.key, caFile: pki.caCert })),
      );
      const token = (await tlsIdp.token('research-app')).token;
      assert.equal((await withCert.verify(token)).subject, 'research-app');
      // Another certificate (another subject) is not the registered client.
      const other = new IntrospectionVerifier(
        config(issuer({ method: 'tls_client_auth', id: 'rs-mtls', certFile: pki.clients.subject.cert, keyFile: pki.clients.subject.key, caFile: pki.caCert })),
      );
      assert.equal(await code(other.verify(token)), 'authentication_unavailable');
    } finally {
      await tlsIdp.close();
    }
  });
});

describe('RFC 9701 signed answers', () => {
  test('verified against the IdP JWKS', async () => {
    const v = new IntrospectionVerifier(
      config({ client: { method: 'client_secret_basic', id: 'rs-signed', secretFile }, signedResponse: { jwksUri: idp.jwksUrl, algorithms: ['RS256'] } }),
    );
    const cred = await v.verify((await idp.token('research-app')).token);
    assert.deepEqual(cred.roles, []);
    assert.equal(cred.org, 'acme');
  });

  test('an answer signed by keys not in the configured JWKS is a failure (503), not trust', async () => {
    const v = new IntrospectionVerifier(
      config({ client: { method: 'client_secret_basic', id: 'rs-signed', secretFile }, signedResponse: { jwksUri: otherJwks.url, algorithms: ['RS256'] } }),
    );
    assert.equal(await code(v.verify((await idp.token('research-app')).token)), 'authentication_unavailable');
  });
});

describe('the cache (injected clock)', () => {
  test('an accepted token is asked about again after recheckSeconds, not before', async () => {
    const clock = testClock(Date.now());
    const v = new IntrospectionVerifier(config({ recheckSeconds: 20 }), { now: clock.now });
    const { token } = await idp.token('research-app');
    const start = idp.introspectionCalls();
    await v.verify(token);
    clock.advance(19_999);
    await v.verify(token);
    assert.equal(idp.introspectionCalls() - start, 1);
    clock.advance(1);
    await v.verify(token);
    assert.equal(idp.introspectionCalls() - start, 2);
  });

  test('never beyond the token exp: a token the clock has passed is refused as expired', async () => {
    const clock = testClock(Date.now());
    const v = new IntrospectionVerifier(config({ recheckSeconds: 3600, cacheMaxSeconds: 3600 }), { now: clock.now });
    const { token, expiresIn } = await idp.token('research-app');
    await v.verify(token);
    clock.advance(expiresIn * 1000 + 1000);
    // The entry ended at exp; the IdP (on the real clock) still says active, our clock says expired.
    await assert.rejects(v.verify(token), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token' && /expired/.test(e.message));
  });

  test('a refused token is remembered for negativeCacheSeconds', async () => {
    const clock = testClock(Date.now());
    const v = new IntrospectionVerifier(config({ negativeCacheSeconds: 5 }), { now: clock.now });
    const start = idp.introspectionCalls();
    for (let i = 0; i < 3; i++) assert.equal(await code(v.verify('never-issued-token')), 'invalid_token');
    assert.equal(idp.introspectionCalls() - start, 1);
    clock.advance(5000);
    assert.equal(await code(v.verify('never-issued-token')), 'invalid_token');
    assert.equal(idp.introspectionCalls() - start, 2);
  });

  test('bounded: beyond cacheMaxEntries the least recently used answer goes', async () => {
    const v = new IntrospectionVerifier(config({}, { cacheMaxEntries: 2 }));
    const tokens = await Promise.all([1, 2, 3].map(async () => (await idp.token('research-app')).token));
    const start = idp.introspectionCalls();
    for (const t of tokens) await v.verify(t);
    await v.verify(tokens[2] as string);
    await v.verify(tokens[1] as string);
    assert.equal(idp.introspectionCalls() - start, 3, 'the two most recent are cached');
    await v.verify(tokens[0] as string);
    assert.equal(idp.introspectionCalls() - start, 4, 'the first was evicted');
  });

  test('a burst with one uncached token makes one call', async () => {
    const v = new IntrospectionVerifier(config());
    const { token } = await idp.token('research-app');
    const start = idp.introspectionCalls();
    const results = await Promise.all(Array.from({ length: 200 }, () => v.verify(token)));
    assert.equal(new Set(results).size, 1);
    assert.equal(idp.introspectionCalls() - start, 1);
  });
});

test('circuit breaker: opens after breakerFailures, fails closed without calls, half-opens after breakerOpenSeconds', async () => {
  const down = await startIdp();
  const token = (await down.token('research-app')).token;
  const issuer = down.issuer;
  const introspectionUri = down.introspectionUrl;
  await down.close();
  const clock = testClock(Date.now());
  const outcomes: IntrospectionOutcome[] = [];
  const v = new IntrospectionVerifier(config({ issuer, introspectionUri, breakerFailures: 3, breakerOpenSeconds: 10, timeoutMs: 500 }), {
    now: clock.now,
    onCall: (_i, o) => outcomes.push(o),
  });
  for (let i = 0; i < 4; i++) assert.equal(await code(v.verify(token)), 'authentication_unavailable');
  assert.deepEqual(outcomes, ['error', 'error', 'error', 'circuit_open']);
  clock.advance(10_000);
  assert.equal(await code(v.verify(token)), 'authentication_unavailable');
  assert.equal(await code(v.verify(token)), 'authentication_unavailable');
  assert.deepEqual(outcomes.slice(4), ['error', 'circuit_open'], 'one trial call after the open period, then open again');
});

test('an IdP that accepts the connection and never answers: 503 within timeoutMs', async () => {
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  try {
    const v = new IntrospectionVerifier(config({ introspectionUri: `http://127.0.0.1:${port}/token/introspection`, timeoutMs: 300 }));
    const started = performance.now();
    assert.equal(await code(v.verify('any-token')), 'authentication_unavailable');
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 2000, `gave up after ${Math.round(took)} ms`);
  } finally {
    silent.close();
  }
});

describe('claims → grants, and the checks on an answer', () => {
  const answerFrom = (answer: Record<string, unknown>) => (): ((token: string) => Promise<Record<string, unknown>>) => () => Promise.resolve(answer);
  const base = { active: true, aud: GATEWAY_RESOURCE, token_type: 'Bearer', sub: 'alice' };
  const verifier = (answer: Record<string, unknown>, issuer: IssuerInput = {}, now = Date.now()) =>
    new IntrospectionVerifier(config({ ...issuer }), { clientFor: answerFrom({ ...answer }), now: () => now });

  test('groups and scopes (scp as an array) grant roles and models; nested paths; sub over client_id', async () => {
    const v = verifier(
      { ...base, client_id: 'app', realm_access: { roles: ['reader'] }, scp: ['inference', 'admin'], groups: ['ml'], org: 'acme', tenant: 'research' },
      {
        claims: { roles: 'realm_access.roles', scopes: 'scp' },
        grants: [
          { group: 'ml', roles: ['ml-engineer'], models: ['gpt-demo'] },
          { scope: 'admin', roles: ['admin'], models: ['embed-demo'] },
          { group: 'other', roles: ['nope'] },
        ],
      },
    );
    const c = await v.verify('t');
    assert.equal(c.subject, 'alice');
    assert.deepEqual(c.roles, ['admin', 'ml-engineer', 'reader']);
    assert.deepEqual(c.models === '*' ? '*' : [...c.models].sort(), ['embed-demo', 'gpt-demo']);
  });

  test('a scope string (space-separated) and the defaults', async () => {
    const v = verifier(
      { ...base, scope: 'inference read' },
      { grants: [{ scope: 'read', roles: ['reader'] }], defaults: { org: 'acme', tenant: 'lab', tier: 'gold' } },
    );
    const c = await v.verify('t');
    assert.deepEqual(c.roles, ['reader']);
    assert.equal(c.tenant, 'lab');
    assert.equal(c.tier, 'gold');
    assert.equal(c.models, '*');
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    ['inactive', { ...base, active: false }, /not active/],
    ['active as a string', { ...base, active: 'true' }, /not active/],
    ['expired', { ...base, exp: Math.floor(Date.now() / 1000) - 1 }, /expired/],
    ['another issuer', { ...base, iss: 'https://evil.example' }, /wrong issuer/],
    ['no audience', { ...base, aud: undefined }, /wrong audience/],
    ['another audience', { ...base, aud: ['urn:other'] }, /wrong audience/],
    ['another token type', { ...base, token_type: 'refresh_token' }, /wrong token type/],
    ['neither sub nor client_id', { ...base, sub: undefined }, /neither "sub" nor "client_id"/],
    ['a header-breaking tenant', { ...base, tenant: 'a\r\nb' }, /claim "tenant"/],
  ];
  for (const [name, answer, reason] of refusals) {
    test(`refused: ${name}`, async () => {
      await assert.rejects(verifier(answer).verify('t'), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token' && reason.test(e.message));
    });
  }

  test('nbf in the future: refused until then', async () => {
    const now = Date.now();
    const clock = testClock(now);
    const v = new IntrospectionVerifier(config(), { clientFor: answerFrom({ ...base, nbf: Math.floor(now / 1000) + 60 }), now: clock.now });
    await assert.rejects(v.verify('t'), /not yet valid/);
    clock.advance(61_000);
    assert.equal((await v.verify('t')).subject, 'alice');
  });

  test('operator revocations are checked on every request, cached or not', async () => {
    const revoked = new Set<string>();
    const v = new IntrospectionVerifier(config(), {
      clientFor: answerFrom({ ...base, jti: 'j-1' }),
      revocations: { isRevoked: (r) => revoked.has(`jti:${r.jti ?? ''}`) || revoked.has(`sub:${r.subject}`) },
    });
    await v.verify('t');
    revoked.add('jti:j-1');
    await assert.rejects(v.verify('t'), /revoked/);
  });
});
