import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { ConfigSchema } from '../../src/config/schema.ts';
import type { AuthConfig } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { JwtVerifier, looksLikeJwt } from '../../src/stages/auth/jwt.ts';
import type { JwtCredential, JwtVerifierOptions } from '../../src/stages/auth/jwt.ts';
import {
  confusionSecret,
  hs256WithPublicKey,
  makeKeyPair,
  mintFor,
  mintToken,
  oversizedToken,
  standardClaims,
  startJwksServer,
  tamperPayload,
  tamperSignature,
  unsignedToken,
  unusedLoopbackUrl,
  writeJwksFile,
} from '../helpers/jwt.ts';
import type { JwksServer, TestKeyPair } from '../helpers/jwt.ts';
import { testClock } from '../helpers/clock.ts';

const ISS = 'https://idp.example.test/';
const ISS_B = 'https://other-idp.example.test';
const AUD = 'inference-gateway';
/** The injected clock: far from real time on purpose, so a verifier reading Date.now() would fail these tests. */
const T0 = Date.parse('2031-05-01T12:00:00Z');

const servers: JwksServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(keys: readonly TestKeyPair[]): Promise<JwksServer> {
  const s = await startJwksServer({ keys });
  servers.push(s);
  return s;
}

const dir = mkdtempSync(join(tmpdir(), 'igw-jwt-'));
let fileSeq = 0;
function jwksFile(keys: readonly TestKeyPair[]): string {
  const path = join(dir, `jwks-${++fileSeq}.json`);
  writeJwksFile(path, keys);
  return path;
}

type IssuerInput = Record<string, unknown> & { issuer: string };

function jwtConfig(issuers: IssuerInput[], extra: Record<string, unknown> = {}): AuthConfig['jwt'] {
  return ConfigSchema.parse({ auth: { jwt: { issuers, ...extra } } }).auth.jwt;
}

function verifier(issuers: IssuerInput[], extra: Record<string, unknown> = {}, opts: JwtVerifierOptions = {}): JwtVerifier {
  return new JwtVerifier(jwtConfig(issuers, extra), { now: () => T0, ...opts });
}

function claims(extra: JWTPayload = {}, iss = ISS): JWTPayload {
  return standardClaims({ iss, aud: AUD, nowMs: T0 }, extra);
}

/** The standard claims but `name`: a token that lacks that claim. */
function claimsWithout(name: string): JWTPayload {
  const c = claims();
  delete c[name];
  return c;
}

/** Asserts a refusal with `code`, and that the message does not echo the token or any part of it. */
async function refused(p: Promise<unknown>, token: string, code: 'invalid_token' | 'authentication_unavailable', reason?: RegExp): Promise<GatewayError> {
  let err: unknown;
  try {
    const accepted = await p;
    assert.fail(`token was accepted: ${JSON.stringify(accepted)}`);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (token.length >= 8) assert.ok(!err.message.includes(token), 'message echoes the token');
  for (const part of token.split('.')) {
    if (part.length >= 8) assert.ok(!err.message.includes(part.slice(0, 8)), `message echoes a token segment: ${err.message}`);
  }
  if (reason !== undefined) assert.match(err.message, reason);
  return err;
}

// One RSA and one EC key for most tests, served by one JWKS server.
const rsa = await makeKeyPair('RS256');
const ec = await makeKeyPair('ES256');
const jwks = await server([rsa, ec]);
const baseIssuer: IssuerInput = { issuer: ISS, audiences: [AUD, 'other-aud'], jwksUri: jwks.url, algorithms: ['RS256', 'ES256'] };

test('looksLikeJwt: three base64url segments, no decoding', () => {
  assert.equal(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'), true);
  assert.equal(looksLikeJwt('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.'), true, 'empty signature still routes to verify (and is refused there)');
  assert.equal(looksLikeJwt('igw_abcdefgh12345678901234567890123456789012'), false);
  assert.equal(looksLikeJwt('a.b'), false);
  assert.equal(looksLikeJwt('a.b.c.d'), false);
  assert.equal(looksLikeJwt('a.b+/.c'), false);
  assert.equal(looksLikeJwt('a..c'), false);
  assert.equal(looksLikeJwt(' a.b.c'), false);
  assert.equal(looksLikeJwt(''), false);
});

test('accepts an RS256 token from a remote JWKS; claims and defaults map to grants', async () => {
  const v = verifier([{ ...baseIssuer, defaults: { org: 'acme', tier: 'gold', endpoints: ['chat', 'embeddings'] } }]);
  assert.equal(v.enabled, true);
  const token = await mintFor(rsa, claims({ sub: 'alice', tenant: 'research', roles: ['admin', 'dev'] }));
  const c: JwtCredential = await v.verify(token);
  assert.equal(c.method, 'jwt');
  assert.equal(c.principal, 'alice');
  assert.equal(c.subject, 'alice');
  assert.equal(c.issuer, ISS);
  assert.equal(c.org, 'acme', 'org from defaults');
  assert.equal(c.tenant, 'research', 'tenant from the claim');
  assert.equal(c.tier, 'gold');
  assert.deepEqual(c.roles, ['admin', 'dev']);
  assert.equal(c.models, '*', "defaults.models ['*'] → '*'");
  assert.deepEqual(c.endpoints, new Set(['chat', 'embeddings']));
  assert.ok(Object.isFrozen(c));
});

test('grants: groups (many, as in a directory) and scp (array) give roles and models; an issuer without grants reads neither', async () => {
  const grants = [
    { group: 'ml-engineers', roles: ['ml-engineer'], models: ['gpt-demo'] },
    { scope: 'inference:admin', roles: ['admin'] },
  ];
  const v = verifier([{ issuer: ISS, audiences: [AUD], jwksFile: jwksFile([ec]), algorithms: ['ES256'], claims: { scopes: 'scp' }, grants }]);
  const groups = [...Array.from({ length: 300 }, (_, i) => `team-${i}`), 'ml-engineers', 42];
  const c = await v.verify(await mintFor(ec, claims({ roles: ['reader'], groups, scp: ['inference', 'inference:admin'] })));
  assert.deepEqual(c.roles, ['reader', 'ml-engineer', 'admin']);
  assert.deepEqual(c.models, new Set(['gpt-demo']));
  const none = await v.verify(await mintFor(ec, claims({ groups: ['other'], scp: 'inference' })));
  assert.deepEqual(none.roles, []);
  assert.equal(none.models, '*', 'no grant matched: defaults.models');

  const plain = verifier([{ issuer: ISS, audiences: [AUD], jwksFile: jwksFile([ec]), algorithms: ['ES256'] }]);
  assert.deepEqual((await plain.verify(await mintFor(ec, claims({ groups: { unexpected: 'shape' } })))).roles, []);
  await assert.rejects(
    v.verify(await mintFor(ec, claims({ groups: { unexpected: 'shape' } }))),
    (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token',
  );
});

test('accepts an ES256 token from a JWKS file with a custom claim mapping (dot paths, namespaced names, scope string)', async () => {
  const v = verifier([
    {
      issuer: ISS,
      audiences: [AUD],
      jwksFile: jwksFile([ec]),
      algorithms: ['ES256'],
      claims: { principal: 'client_id', org: 'ext.org.id', tenant: 'https://acme.example/tenant', roles: 'scope', models: 'ext.models' },
      defaults: { models: ['gpt-demo'], tier: 'standard' },
    },
  ]);
  const token = await mintFor(
    ec,
    claims({
      sub: 'svc-123',
      client_id: 'batch-runner',
      ext: { org: { id: 'acme' }, models: ['gpt-demo', 'embed-demo'] },
      'https://acme.example/tenant': 'research',
      scope: 'models:read  chat:write',
    }),
  );
  const c = await v.verify(token);
  assert.equal(c.principal, 'batch-runner');
  assert.equal(c.subject, 'svc-123');
  assert.equal(c.org, 'acme');
  assert.equal(c.tenant, 'research');
  assert.equal(c.tier, 'standard');
  assert.deepEqual(c.roles, ['models:read', 'chat:write']);
  assert.deepEqual(c.models, new Set(['gpt-demo', 'embed-demo']));
  assert.equal(c.endpoints, '*');

  // Without the models claim, defaults.models apply; without roles, no roles; without org, null.
  const bare = await v.verify(await mintFor(ec, claims({ sub: 'svc-123', client_id: 'batch-runner' })));
  assert.deepEqual(bare.models, new Set(['gpt-demo']));
  assert.deepEqual(bare.roles, []);
  assert.equal(bare.org, null);
  assert.equal(bare.tenant, null);
});

test('alg none is refused in every spelling (none, None, NONE, nOnE)', async (t) => {
  const v = verifier([baseIssuer]);
  jwks.resetCount();
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await t.test(alg, async () => {
      const token = unsignedToken(claims(), { alg, kid: rsa.kid });
      await refused(v.verify(token), token, 'invalid_token', /algorithm not in the issuer's allowlist/);
      // Also with a junk signature segment.
      const junk = unsignedToken(claims(), { alg, kid: rsa.kid, signature: 'c2lnbmF0dXJl' });
      await refused(v.verify(junk), junk, 'invalid_token', /algorithm not in the issuer's allowlist/);
    });
  }
  assert.equal(jwks.requests, 0, 'refused before any key lookup');
});

test('the header alg is checked against the allowlist case-sensitively (rs256 is not RS256)', async () => {
  const v = verifier([baseIssuer]);
  // A real RS256 signature under a header that spells the algorithm differently.
  const token = await mintToken({ privateKey: rsa.privateKey, alg: 'RS256', kid: rsa.kid, claims: claims() });
  const [, p, s] = token.split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'rs256', kid: rsa.kid, typ: 'JWT' })).toString('base64url');
  const respelled = `${header}.${p}.${s}`;
  await refused(v.verify(respelled), respelled, 'invalid_token', /algorithm not in the issuer's allowlist/);
  // An allowed alg the issuer does not list (RS384 with the same key) is refused too.
  const v256 = verifier([{ ...baseIssuer, algorithms: ['RS256'] }]);
  const es = await mintFor(ec, claims());
  await refused(v256.verify(es), es, 'invalid_token', /algorithm not in the issuer's allowlist/);
});

test('HS256 signed with the RSA public key (key confusion) is refused', async (t) => {
  const v = verifier([baseIssuer]);
  for (const from of ['pem', 'jwk', 'der'] as const) {
    await t.test(`public key as ${from}`, async () => {
      const token = hs256WithPublicKey(rsa, claims(), from);
      // The attack token is genuine: it verifies as HS256 with the public key bytes as the secret.
      await jwtVerify(token, confusionSecret(rsa, from), { algorithms: ['HS256'], currentDate: new Date(T0) });
      await refused(v.verify(token), token, 'invalid_token', /algorithm not in the issuer's allowlist/);
    });
  }
});

test('an expired token is refused', async () => {
  const v = verifier([baseIssuer], { clockSkewSeconds: 30 });
  const token = await mintFor(rsa, claims({ exp: T0 / 1000 - 31 }));
  await refused(v.verify(token), token, 'invalid_token', /expired/);
});

test('a token that is not yet valid (nbf) is refused', async () => {
  const v = verifier([baseIssuer], { clockSkewSeconds: 30 });
  const token = await mintFor(rsa, claims({ nbf: T0 / 1000 + 31 }));
  await refused(v.verify(token), token, 'invalid_token', /not yet valid/);
});

test('clock skew is honoured at both edges of exp and nbf (injected clock)', async () => {
  const now = T0 / 1000;
  const skew = 30;
  let clock = T0;
  const v = new JwtVerifier(jwtConfig([baseIssuer], { clockSkewSeconds: skew }), { now: () => clock });

  const exp = await mintFor(rsa, claims({ exp: now }));
  clock = (now + skew - 1) * 1000; // just inside the tolerance
  assert.equal((await v.verify(exp)).principal, 'alice');
  clock = (now + skew) * 1000; // exp <= now - skew
  await refused(v.verify(exp), exp, 'invalid_token', /expired/);

  const nbf = await mintFor(rsa, claims({ nbf: now, exp: now + 3600 }));
  clock = (now - skew) * 1000; // nbf <= now + skew
  assert.equal((await v.verify(nbf)).principal, 'alice');
  clock = (now - skew - 1) * 1000;
  await refused(v.verify(nbf), nbf, 'invalid_token', /not yet valid/);

  // Zero skew: the same token one second past exp is refused.
  const strict = new JwtVerifier(jwtConfig([baseIssuer], { clockSkewSeconds: 0 }), { now: () => (now + 1) * 1000 });
  await refused(strict.verify(exp), exp, 'invalid_token', /expired/);
});

test('a token from an unknown issuer is refused (exact match on iss)', async (t) => {
  const v = verifier([baseIssuer]);
  for (const iss of ['https://evil.example/', 'https://idp.example.test', 'HTTPS://IDP.EXAMPLE.TEST/', `${ISS} `]) {
    await t.test(JSON.stringify(iss), async () => {
      const token = await mintFor(rsa, claims({}, iss));
      await refused(v.verify(token), token, 'invalid_token', /issuer is not trusted/);
    });
  }
  const noIss = await mintFor(rsa, claimsWithout('iss'));
  await refused(v.verify(noIss), noIss, 'invalid_token', /issuer is not trusted/);
  const numericIss = await mintFor(rsa, claims({ iss: 42 as unknown as string }));
  await refused(v.verify(numericIss), numericIss, 'invalid_token');
});

test('a token for the wrong audience is refused', async () => {
  const v = verifier([baseIssuer]);
  const token = await mintFor(rsa, claims({ aud: 'someone-else' }));
  await refused(v.verify(token), token, 'invalid_token', /wrong audience/);
  const list = await mintFor(rsa, claims({ aud: ['a', 'b'] }));
  await refused(v.verify(list), list, 'invalid_token', /wrong audience/);
  // Any configured audience in a list is enough.
  assert.equal((await v.verify(await mintFor(rsa, claims({ aud: ['x', 'other-aud'] })))).principal, 'alice');
  const noAud = await mintFor(rsa, claimsWithout('aud'));
  await refused(v.verify(noAud), noAud, 'invalid_token', /"aud"/);
});

test('a token without exp is refused', async () => {
  const v = verifier([baseIssuer]);
  const token = await mintFor(rsa, claimsWithout('exp'));
  await refused(v.verify(token), token, 'invalid_token', /missing the required "exp" claim/);
});

test('a token without sub (or without the mapped principal claim) is refused', async () => {
  const v = verifier([baseIssuer]);
  const token = await mintFor(rsa, claimsWithout('sub'));
  await refused(v.verify(token), token, 'invalid_token', /"sub"/);
  const mapped = verifier([{ ...baseIssuer, claims: { principal: 'email' } }]);
  const noEmail = await mintFor(rsa, claims());
  await refused(mapped.verify(noEmail), noEmail, 'invalid_token', /"email"/);
  assert.equal((await mapped.verify(await mintFor(rsa, claims({ email: 'a@example.org' })))).principal, 'a@example.org');
});

test('claim values that are not short printable strings are refused, not passed on', async (t) => {
  const v = verifier([baseIssuer]);
  const bad: Array<[string, Record<string, unknown>]> = [
    ['org', { org: 42 }],
    ['org', { org: { nested: true } }],
    ['org', { org: 'acme\r\nx-injected: 1' }],
    ['tenant', { tenant: 'a'.repeat(129) }],
    ['tenant', { tenant: '' }],
    ['tier', { tier: 'gold\u0000' }],
    ['tier', { tier: 'gold\u202e' }],
    ['sub', { sub: 'alice\n' }],
    ['sub', { sub: 7 }],
    ['roles', { roles: ['ok', 3] }],
    ['roles', { roles: 'a\tb' }],
    ['roles', { roles: Array.from({ length: 65 }, (_, i) => `r${i}`) }],
    ['roles', { roles: { admin: true } }],
    ['models', { models: 'gpt-demo' }],
    ['models', { models: ['gpt-demo', 'x'.repeat(200)] }],
  ];
  for (const [claim, extra] of bad) {
    await t.test(`${claim}: ${JSON.stringify(extra).slice(0, 60)}`, async () => {
      const token = await mintFor(rsa, claims(extra));
      await refused(v.verify(token), token, 'invalid_token', new RegExp(`"${claim}"`));
    });
  }
  await t.test('the limits themselves are accepted', async () => {
    const edge = await v.verify(await mintFor(rsa, claims({ org: 'a'.repeat(128), tenant: null, roles: 'x y', models: ['*', 'm'] })));
    assert.equal(edge.org, 'a'.repeat(128));
    assert.equal(edge.tenant, null);
    assert.deepEqual(edge.roles, ['x', 'y']);
    assert.equal(edge.models, '*');
  });
});

test('unknown kids: a flood causes at most one JWKS fetch per cooldown; kid is only compared', async () => {
  const keys = await makeKeyPair('RS256');
  const s = await server([keys]);
  const fetches: string[] = [];
  const clock = testClock(T0);
  const v = verifier(
    [{ ...baseIssuer, jwksUri: s.url, jwksCooldownSeconds: 1 }],
    {},
    { now: clock.now, onJwksFetch: (iss, outcome) => fetches.push(`${iss}:${outcome}`) },
  );

  const flood = async (): Promise<void> => {
    const tokens = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        mintToken({
          privateKey: keys.privateKey,
          alg: 'RS256',
          kid: i % 2 === 0 ? `unknown-${i}-${Math.random()}` : `../../etc/passwd?${i}`,
          claims: claims(),
        }),
      ),
    );
    const results = await Promise.allSettled(tokens.map((t) => v.verify(t)));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof GatewayError);
      assert.equal(r.reason.code, 'invalid_token');
      assert.match(r.reason.message, /no signing key matches/);
    }
  };

  // Cold start: the flood itself may cause exactly one fetch.
  await flood();
  assert.equal(s.requests, 1, 'cold flood: one fetch');
  // Within the cooldown: none.
  await flood();
  await flood();
  assert.equal(s.requests, 1, 'no fetch during the cooldown');
  // A known kid still works from the cache.
  assert.equal((await v.verify(await mintFor(keys, claims()))).principal, 'alice');
  assert.equal(s.requests, 1);
  // Up to the end of the cooldown (1 s, from config): still none; then exactly one more.
  clock.advance(999);
  await flood();
  assert.equal(s.requests, 1, 'no fetch 1 ms before the cooldown ends');
  clock.advance(1);
  await flood();
  assert.equal(s.requests, 2, 'one fetch per cooldown');
  assert.deepEqual(new Set(s.paths), new Set([s.path]), 'kid never became part of a URL');
  assert.deepEqual(fetches, [`${ISS}:ok`, `${ISS}:ok`]);
});

test('a rotated remote key is fetched once its kid shows up (after the cooldown)', async () => {
  const old = await makeKeyPair('RS256');
  const next = await makeKeyPair('RS256');
  const s = await server([old]);
  const clock = testClock(T0);
  const v = verifier([{ ...baseIssuer, jwksUri: s.url, jwksCooldownSeconds: 1 }], {}, { now: clock.now });
  assert.equal((await v.verify(await mintFor(old, claims()))).principal, 'alice');
  s.setKeys([old, next]);
  const early = await mintFor(next, claims({ sub: 'bob' }));
  await refused(v.verify(early), early, 'invalid_token', /no signing key matches/);
  assert.equal(s.requests, 1, 'not refetched within the cooldown');
  clock.advance(1000);
  assert.equal((await v.verify(await mintFor(next, claims({ sub: 'bob' })))).principal, 'bob');
  assert.equal(s.requests, 2);
});

test('keys named by the token (jku, x5u, embedded jwk) are never fetched or used', async () => {
  const attacker = await makeKeyPair('RS256');
  const evil = await server([attacker]);
  const v = verifier([baseIssuer]);
  const header = { jku: evil.url, x5u: evil.url, jwk: attacker.publicJwk };
  const ownKid = await mintToken({ privateKey: attacker.privateKey, alg: 'RS256', kid: attacker.kid, claims: claims(), header });
  await refused(v.verify(ownKid), ownKid, 'invalid_token', /no signing key matches/);
  const stolenKid = await mintToken({ privateKey: attacker.privateKey, alg: 'RS256', kid: rsa.kid, claims: claims(), header });
  await refused(v.verify(stolenKid), stolenKid, 'invalid_token', /signature verification failed/);
  const urlKid = await mintToken({ privateKey: attacker.privateKey, alg: 'RS256', kid: evil.url, claims: claims() });
  await refused(v.verify(urlKid), urlKid, 'invalid_token', /no signing key matches/);
  assert.equal(evil.requests, 0);
});

test('a failing onJwksFetch callback does not break verification', async () => {
  const keys = await makeKeyPair('RS256');
  const s = await server([keys]);
  const v = verifier(
    [{ ...baseIssuer, jwksUri: s.url }],
    {},
    {
      onJwksFetch: () => {
        throw new Error('metrics down');
      },
    },
  );
  assert.equal((await v.verify(await mintFor(keys, claims()))).principal, 'alice');
});

test('a tampered payload or signature is refused', async () => {
  const v = verifier([baseIssuer]);
  const good = await mintFor(rsa, claims({ sub: 'alice' }));
  assert.equal((await v.verify(good)).principal, 'alice');
  const escalated = tamperPayload(good, (c) => ({ ...c, sub: 'admin', roles: ['admin'] }));
  await refused(v.verify(escalated), escalated, 'invalid_token', /signature verification failed/);
  const flipped = tamperSignature(good);
  await refused(v.verify(flipped), flipped, 'invalid_token', /signature verification failed/);
  const esGood = await mintFor(ec, claims());
  const esFlipped = tamperSignature(esGood);
  await refused(v.verify(esFlipped), esFlipped, 'invalid_token', /signature verification failed/);
  // Signature of one token on another's header + payload.
  const other = await mintFor(rsa, claims({ sub: 'mallory' }));
  const spliced = `${other.split('.').slice(0, 2).join('.')}.${good.split('.')[2]}`;
  await refused(v.verify(spliced), spliced, 'invalid_token', /signature verification failed/);
});

test('an oversized token is refused before any decoding or key lookup', async () => {
  const s = await server([rsa]);
  const v = verifier([{ ...baseIssuer, jwksUri: s.url }], { maxTokenBytes: 2048 });
  const big = await oversizedToken(rsa, claims(), 2048);
  assert.ok(big.length > 2048);
  await refused(v.verify(big), big, 'invalid_token', /longer than 2048 bytes/);
  // Not decoded: an oversized token that is not even base64 gets the same answer.
  const junk = `${'!'.repeat(3000)}`;
  await refused(v.verify(junk), junk, 'invalid_token', /longer than 2048 bytes/);
  assert.equal(s.requests, 0);
  // The same token is fine under a larger cap (the size check is what refused it).
  const roomy = verifier([{ ...baseIssuer, jwksUri: s.url }], { maxTokenBytes: 8192 });
  assert.equal((await roomy.verify(big)).principal, 'alice');
});

test('JWKS server down: refused with authentication_unavailable, fetches back off', async () => {
  const outcomes: string[] = [];
  const v = verifier([{ ...baseIssuer, jwksUri: await unusedLoopbackUrl(), jwksTimeoutMs: 500 }], {}, { onJwksFetch: (_i, o) => outcomes.push(o) });
  const token = await mintFor(rsa, claims());
  const t0 = performance.now();
  await refused(v.verify(token), token, 'authentication_unavailable', /unavailable/);
  assert.ok(performance.now() - t0 < 500, 'connection refused is answered at once');
  await refused(v.verify(token), token, 'authentication_unavailable');
  assert.deepEqual(outcomes, ['error'], 'the second attempt backs off instead of refetching');
});

test('JWKS server hanging: refused within jwksTimeoutMs, concurrent and later requests too, never accepted', async () => {
  const keys = await makeKeyPair('RS256');
  const s = await server([keys]);
  s.mode = 'hang';
  const outcomes: string[] = [];
  const clock = testClock(T0);
  const v = verifier(
    [{ ...baseIssuer, jwksUri: s.url, jwksTimeoutMs: 300, jwksCooldownSeconds: 2 }],
    {},
    { now: clock.now, onJwksFetch: (_i, o) => outcomes.push(o) },
  );
  const token = await mintFor(keys, claims());
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => v.verify(token)));
  const elapsed = performance.now() - t0;
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof GatewayError && r.reason.code === 'authentication_unavailable', String(r.reason));
  }
  assert.ok(elapsed >= 250 && elapsed < 1500, `bounded by jwksTimeoutMs (took ${Math.round(elapsed)} ms)`);
  assert.equal(s.requests, 1, 'concurrent verifications share one fetch');
  // During the back-off: refused at once, no new fetch.
  const t1 = performance.now();
  await refused(v.verify(token), token, 'authentication_unavailable');
  assert.ok(performance.now() - t1 < 100);
  assert.equal(s.requests, 1);
  assert.deepEqual(outcomes, ['error']);
  // Recovery once the back-off (min(cooldown, 5 s) = 2 s) is over, not before.
  s.mode = 'ok';
  clock.advance(1999);
  await refused(v.verify(token), token, 'authentication_unavailable');
  assert.equal(s.requests, 1, 'still backing off 1 ms before the end');
  clock.advance(1);
  assert.equal((await v.verify(token)).principal, 'alice');
  assert.equal(s.requests, 2);
  assert.deepEqual(outcomes, ['error', 'ok']);
});

test('JWKS answering 500, garbage or a non-JWKS document: refused with authentication_unavailable', async (t) => {
  const keys = await makeKeyPair('ES256');
  for (const mode of ['error', 'garbage', 'not_jwks'] as const) {
    await t.test(mode, async () => {
      const s = await server([keys]);
      s.mode = mode;
      const outcomes: string[] = [];
      const v = verifier([{ ...baseIssuer, jwksUri: s.url }], {}, { onJwksFetch: (_i, o) => outcomes.push(o) });
      const token = await mintFor(keys, claims());
      await refused(v.verify(token), token, 'authentication_unavailable', /unavailable/);
      assert.equal(s.requests, 1, mode);
      assert.deepEqual(outcomes, ['error'], mode);
    });
  }
});

test('a cached JWKS keeps known keys working through an outage; unknown kids then get 503, not acceptance', async () => {
  const keys = await makeKeyPair('RS256');
  const s = await server([keys]);
  const clock = testClock(T0);
  const v = verifier([{ ...baseIssuer, jwksUri: s.url, jwksCooldownSeconds: 1 }], {}, { now: clock.now });
  assert.equal((await v.verify(await mintFor(keys, claims()))).principal, 'alice');
  s.mode = 'error';
  clock.advance(1000); // past the cooldown: an unknown kid now asks the (failing) server
  assert.equal((await v.verify(await mintFor(keys, claims({ sub: 'bob' })))).principal, 'bob', 'cached key, no fetch needed');
  const stranger = await mintToken({ privateKey: keys.privateKey, alg: 'RS256', kid: 'rotated-in', claims: claims() });
  await refused(v.verify(stranger), stranger, 'authentication_unavailable');
});

test('remote keys older than jwksMaxAgeSeconds are fetched again before use; stale keys and a failing server → 503 (injected clock)', async () => {
  const keys = await makeKeyPair('RS256');
  const s = await server([keys]);
  const clock = testClock(T0);
  const v = verifier([{ ...baseIssuer, jwksUri: s.url, jwksMaxAgeSeconds: 120 }], {}, { now: clock.now });
  // Distinct tokens, so each one needs a key lookup (a reused token would come from the verified-token cache).
  let jti = 0;
  const fresh = (): Promise<string> => mintFor(keys, claims({ jti: `t${++jti}`, exp: clock.now() / 1000 + 300 }));
  assert.equal((await v.verify(await fresh())).principal, 'alice');
  assert.equal(s.requests, 1);
  clock.advance(119_999);
  assert.equal((await v.verify(await fresh())).principal, 'alice');
  assert.equal(s.requests, 1, 'still fresh 1 ms before the max age');
  clock.advance(1);
  assert.equal((await v.verify(await fresh())).principal, 'alice');
  assert.equal(s.requests, 2, 'refetched at the max age');
  s.mode = 'error';
  clock.advance(120_000);
  const stale = await fresh();
  await refused(v.verify(stale), stale, 'authentication_unavailable');
  assert.equal(s.requests, 3);
});

test("a second issuer's token signed with the first issuer's key is refused", async () => {
  const a = await makeKeyPair('RS256', 'shared-kid');
  const b = await makeKeyPair('RS256', 'b-kid');
  const bSameKid = await makeKeyPair('RS256', 'shared-kid');
  const sa = await server([a]);
  const sb = await server([b]);
  const v = verifier([
    { ...baseIssuer, jwksUri: sa.url },
    { issuer: ISS_B, audiences: [AUD], jwksUri: sb.url },
  ]);
  assert.equal((await v.verify(await mintFor(a, claims()))).issuer, ISS);
  assert.equal((await v.verify(await mintFor(b, claims({}, ISS_B)))).issuer, ISS_B);
  const requestsA = sa.requests;

  // iss = B, signed with A's key and A's kid: B's keys do not include it.
  const forged = await mintFor(a, claims({}, ISS_B));
  await refused(v.verify(forged), forged, 'invalid_token', /no signing key matches/);
  // Even when B publishes a (different) key under the same kid, A's signature does not verify.
  sb.setKeys([b, bSameKid]);
  const v2 = verifier([
    { ...baseIssuer, jwksUri: sa.url },
    { issuer: ISS_B, audiences: [AUD], jwksUri: sb.url },
  ]);
  await refused(v2.verify(forged), forged, 'invalid_token', /signature verification failed/);
  assert.equal(sa.requests, requestsA, "A's JWKS is never consulted for a token naming B");
});

test('JWKS file: rotation is picked up (in place and by atomic rename); a broken rewrite keeps the old keys', async () => {
  const k1 = await makeKeyPair('ES256');
  const k2 = await makeKeyPair('ES256');
  const k3 = await makeKeyPair('ES256');
  const path = jwksFile([k1]);
  const outcomes: string[] = [];
  const clock = testClock(T0);
  const v = verifier([{ issuer: ISS, audiences: [AUD], jwksFile: path }], {}, { now: clock.now, onJwksFetch: (_i, o) => outcomes.push(o) });
  const t1 = await mintFor(k1, claims());
  const t2 = await mintFor(k2, claims());
  const t3 = await mintFor(k3, claims());
  assert.equal((await v.verify(t1)).principal, 'alice');
  await refused(v.verify(t2), t2, 'invalid_token', /no signing key matches/);

  writeJwksFile(path, [k2]);
  // The file is checked at most once a second: not yet 1 ms before, then picked up.
  clock.advance(999);
  await refused(v.verify(t2), t2, 'invalid_token', /no signing key matches/);
  clock.advance(1);
  assert.equal((await v.verify(t2)).principal, 'alice', 'new key picked up');
  await refused(v.verify(t1), t1, 'invalid_token', /no signing key matches/);

  writeJwksFile(path, [k3], { atomic: true });
  clock.advance(1000);
  assert.equal((await v.verify(t3)).principal, 'alice', 'atomic replace picked up');

  writeFileSync(path, '{ half-written');
  clock.advance(1000);
  // A token not seen before (a seen one would come from the verified-token cache without a key lookup).
  const t3b = await mintFor(k3, claims({ jti: 'fresh' }));
  assert.equal((await v.verify(t3b)).principal, 'alice', 'broken file: previous keys kept');
  assert.deepEqual(outcomes, ['ok', 'ok', 'error']);
});

test('verified tokens are cached, but never past their exp or before their nbf, and not across a key change', async () => {
  let now = Date.parse('2026-11-23T00:00:00Z');
  const k1 = await makeKeyPair('ES256');
  const k2 = await makeKeyPair('ES256');
  const path = jwksFile([k1]);
  const v = verifier([{ issuer: ISS, audiences: [AUD], jwksFile: path }], { clockSkewSeconds: 0 }, { now: () => now });
  const sec = Math.floor(now / 1000);
  const token = await mintFor(k1, { ...claims(), iat: sec, nbf: sec, exp: sec + 30 });
  assert.equal((await v.verify(token)).principal, 'alice');
  assert.equal((await v.verify(token)).principal, 'alice', 'second use: cached');
  now += 31_000;
  await refused(v.verify(token), token, 'invalid_token', /expired|exp/);
  now -= 32_000;
  await refused(v.verify(token), token, 'invalid_token', /not yet valid|nbf/);
  now += 1_000;
  assert.equal((await v.verify(token)).principal, 'alice');
  writeJwksFile(path, [k2], { atomic: true });
  now += 1_000; // the file's next check is due (the token is still valid)
  // The file changed: the next lookup of ANY token re-reads it and drops the cache.
  await v.verify(await mintFor(k2, { ...claims(), iat: sec, exp: sec + 30 })).catch(() => undefined);
  await refused(v.verify(token), token, 'invalid_token', /no signing key matches/);
});

test('several keys without kid: the one that verifies is used', async (t) => {
  const k1 = await makeKeyPair('RS256');
  const k2 = await makeKeyPair('RS256');
  const strip = (k: TestKeyPair) => ({ ...k.publicJwk, kid: undefined });
  const path = join(dir, 'nokid.json');
  writeFileSync(path, JSON.stringify({ keys: [strip(k1), strip(k2)] }));
  const v = verifier([{ issuer: ISS, audiences: [AUD], jwksFile: path, algorithms: ['RS256'] }]);
  for (const [name, k] of [
    ['first key', k1],
    ['second key', k2],
  ] as const) {
    await t.test(name, async () => {
      const token = await mintToken({ privateKey: k.privateKey, alg: 'RS256', kid: null, claims: claims() });
      assert.equal((await v.verify(token)).principal, 'alice');
    });
  }
  await t.test('neither key', async () => {
    const stranger = await makeKeyPair('RS256');
    const bad = await mintToken({ privateKey: stranger.privateKey, alg: 'RS256', kid: null, claims: claims() });
    await refused(v.verify(bad), bad, 'invalid_token', /signature verification failed/);
  });
});

test('malformed tokens are refused', async (t) => {
  const v = verifier([baseIssuer]);
  for (const token of [
    'a.b.c',
    'not a jwt',
    '',
    'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln',
    `${Buffer.from('[]').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.c2ln`,
  ]) {
    await t.test(JSON.stringify(token), async () => {
      await refused(v.verify(token), token, 'invalid_token');
    });
  }
});

test('config: jwksUri must be https or loopback http; unreadable files and duplicate issuers fail at construction', () => {
  const withUri = (jwksUri: string) => () => verifier([{ ...baseIssuer, jwksUri }]);
  assert.throws(withUri('http://idp.example.test/jwks.json'), /https/);
  assert.throws(withUri('http://10.0.0.1/jwks.json'), /https/);
  assert.throws(withUri('ftp://127.0.0.1/jwks.json'), /https/);
  assert.throws(withUri('https://user:pw@idp.example.test/jwks.json'), /credentials/);
  withUri('https://idp.example.test/jwks.json')();
  withUri('http://127.0.0.1:1/jwks.json')();
  withUri('http://localhost:1/jwks.json')();
  withUri('http://[::1]:1/jwks.json')();
  assert.throws(() => verifier([{ issuer: ISS, audiences: [AUD], jwksFile: join(dir, 'missing.json') }]), /cannot load jwksFile/);
  const garbage = join(dir, 'garbage.json');
  writeFileSync(garbage, '{"keys": 1}');
  assert.throws(() => verifier([{ issuer: ISS, audiences: [AUD], jwksFile: garbage }]), /cannot load jwksFile/);
  assert.throws(() => verifier([baseIssuer, baseIssuer]), /configured twice/);
});

test('no issuers: disabled, and every token is refused', async () => {
  const v = verifier([]);
  assert.equal(v.enabled, false);
  const token = await mintFor(rsa, claims());
  await refused(v.verify(token), token, 'invalid_token', /not configured/);
});

test('operator revocations: by subject, jti or token digest, on every use (a cached verification too); an unread list is 503', async () => {
  const entries = new Set<string>();
  let loaded = true;
  const revocations = {
    isRevoked(ref: { issuer: string; subject: string; jti: string | null; tokenSha256: string }): boolean {
      if (!loaded) throw new GatewayError('authentication_unavailable', 'The token revocation list has not been loaded yet; the token cannot be checked.');
      return entries.has(`sub:${ref.subject}`) || entries.has(`sha256:${ref.tokenSha256}`) || (ref.jti !== null && entries.has(`jti:${ref.jti}`));
    },
  };
  const v = verifier([baseIssuer], {}, { revocations });
  const alice = await mintFor(rsa, claims({ sub: 'alice', jti: 'token-a1' }));
  const bob = await mintFor(rsa, claims({ sub: 'bob', jti: 'token-b1' }));
  const carol = await mintFor(rsa, claims({ sub: 'carol' }));
  for (const t of [alice, bob, carol]) await v.verify(t); // all verified and cached

  entries.add('sub:alice');
  await refused(v.verify(alice), alice, 'invalid_token', /revoked/);
  entries.add('jti:token-b1');
  await refused(v.verify(bob), bob, 'invalid_token', /revoked/);
  assert.equal((await v.verify(await mintFor(rsa, claims({ sub: 'bob', jti: 'token-b2' })))).principal, 'bob', 'another token of bob is fine');
  entries.add(`sha256:${createHash('sha256').update(carol).digest('hex')}`);
  await refused(v.verify(carol), carol, 'invalid_token', /revoked/);
  assert.equal((await v.verify(await mintFor(rsa, claims({ sub: 'carol', jti: 'c2' })))).principal, 'carol', 'only that token of carol');

  loaded = false;
  const dave = await mintFor(rsa, claims({ sub: 'dave' }));
  await refused(v.verify(dave), dave, 'authentication_unavailable', /revocation list/);
});
