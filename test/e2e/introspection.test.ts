/**
 * Opaque OAuth tokens through real Envoy, with the official openai client,
 * issued and introspected by a real authorization server (oidc-provider,
 * src/devtools/idp.ts): accepted with the roles and tenant the mapping gives;
 * inactive, expired, wrong-audience and revoked tokens refused in our error
 * format; a burst of 1,000 requests with one token makes one introspection
 * call (counted at the IdP); with the IdP down, a cached token keeps working
 * until its entry expires and an uncached one gets 503.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { DEMO_RESOURCE_SERVER, GATEWAY_RESOURCE, OTHER_RESOURCE, startIdp, type DemoIdp } from '../../src/devtools/idp.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { scrapeMetrics, startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { makeKeyPair, mintFor, standardClaims, writeJwksFile, type TestKeyPair } from '../helpers/jwt.ts';

/** A JWT issuer beside the introspection one: operator revocations apply to its tokens too. */
const JWT_ISS = 'https://jwt-idp.test';
let jwtKey: TestKeyPair;
let jwksFile: string;

const RECHECK_SECONDS = 15;

function gatewayConfig(secretFile: string): Record<string, unknown> {
  return {
    redis: { url: redis.url },
    auth: {
      tokenRevocation: true,
      jwt: { issuers: [{ issuer: JWT_ISS, audiences: [GATEWAY_RESOURCE], jwksFile, defaults: { org: 'acme', tenant: 'research' } }] },
      introspection: {
        clockSkewSeconds: 0,
        issuers: [
          {
            issuer: idp.issuer,
            introspectionUri: idp.introspectionUrl,
            audiences: [GATEWAY_RESOURCE],
            client: { method: 'client_secret_basic', id: DEMO_RESOURCE_SERVER.id, secretFile },
            recheckSeconds: RECHECK_SECONDS,
            claims: { roles: 'realm_access.roles' },
            grants: [
              { group: 'ml-engineers', roles: ['ml-engineer'] },
              { group: 'support-agents', roles: ['support'], models: ['gpt-demo'] },
            ],
          },
        ],
      },
    },
  };
}

let idp: DemoIdp;
let redis: TestRedis;
let stack: TestStack;
let dir: string;
let secretFile: string;
/** Every token the IdP issued in this file: none may show up in the audit file or the sidecar's logs. */
const issued: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'igw-introspection-'));
  secretFile = join(dir, 'introspection-secret');
  writeFileSync(secretFile, DEMO_RESOURCE_SERVER.secret ?? '');
  jwtKey = await makeKeyPair('ES256');
  jwksFile = join(dir, 'jwks.json');
  writeJwksFile(jwksFile, [jwtKey]);
  const started = await startIdp();
  idp = {
    ...started,
    token: async (caller, opts) => {
      const t = await started.token(caller, opts);
      issued.push(t.token);
      return t;
    },
  };
  redis = await startRedis();
  stack = await startTestStack({ config: gatewayConfig(secretFile) });
});

after(async () => {
  await stack.stop();
  await idp.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

function client(token: string): OpenAI {
  return new OpenAI({ baseURL: stack.baseURL, apiKey: token, maxRetries: 0, timeout: 30_000 });
}

const ask = (token: string) => client(token).chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });

async function accepted(token: string): Promise<Record<string, string | string[] | undefined>> {
  stack.upstream.clearRequests();
  const r = await ask(token);
  assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
  const up = stack.upstream.requests.at(-1);
  assert.ok(up);
  return up.headers;
}

/** The request's failure (status, code, message), or null when it was accepted. */
async function failure(token: string): Promise<{ status: number; code: string; message: string } | null> {
  try {
    await ask(token);
    return null;
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    const status = Number(err.status);
    return { status, code: String(err.code), message: err.message };
  }
}

async function refused(token: string, status: number, code: string, reason: RegExp): Promise<void> {
  stack.upstream.clearRequests();
  const f = await failure(token);
  assert.ok(f !== null, `accepted; expected ${status} ${code}`);
  assert.equal(f.status, status, f.message);
  assert.equal(f.code, code, f.message);
  assert.match(f.message, reason);
  assert.equal(stack.upstream.requests.length, 0, 'nothing reached the model server');
}

function tokensCli(args: readonly string[], stdin = ''): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'tokens', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stderr })));
}

describe('an opaque token from the IdP', () => {
  test('is accepted with the mapped principal, org, tenant and roles (groups → roles, nested realm_access.roles)', async () => {
    const { token } = await idp.token('research-app');
    assert.doesNotMatch(token, /\./, 'oidc-provider issued an opaque token, not a JWT');
    const h = await accepted(token);
    assert.equal(h['x-gateway-auth-method'], 'introspection');
    assert.equal(h['x-gateway-principal'], 'research-app');
    assert.equal(h['x-gateway-org'], 'acme');
    assert.equal(h['x-gateway-tenant'], 'research');
    assert.equal(h['x-gateway-roles'], 'analyst,ml-engineer');
    assert.equal(h['authorization'], undefined, 'the token never reaches the model server');
  });

  test('a group grant that names models restricts the caller to them', async () => {
    const { token } = await idp.token('support-app');
    const h = await accepted(token);
    assert.equal(h['x-gateway-tenant'], 'support');
    assert.equal(h['x-gateway-roles'], 'support');
    const models = await client(token).models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['gpt-demo'],
    );
  });

  test('the audit record names the issuer and subject, never the token', async () => {
    const { token } = await idp.token('research-app');
    await accepted(token);
    const record = await waitFor(() => readAudit(stack.files.auditFile).find((r) => r.identity?.methods.includes('introspection') === true), {
      what: 'an audit record of an introspected request',
      timeoutMs: 10_000,
    });
    assert.deepEqual(record.identity?.introspection, { issuer: idp.issuer, subject: 'research-app' });
    assert.deepEqual(record.identity?.methods, ['introspection']);
    assert.ok(!readFileSync(stack.files.auditFile, 'utf8').includes(token), 'the token is not in the audit file');
  });
});

describe('refused in our error format, nothing reaching the model server', () => {
  test('a token the IdP never issued (inactive)', async () => {
    await refused('made-up-token-0123456789abcdef', 401, 'invalid_token', /not active/);
  });

  test('a token revoked at the IdP (inactive at its first check)', async () => {
    const { token } = await idp.token('research-app');
    await idp.revoke('research-app', token);
    await refused(token, 401, 'invalid_token', /not active/);
  });

  test('a token for another API (wrong audience)', async () => {
    const { token } = await idp.token('research-app', { resource: OTHER_RESOURCE });
    await refused(token, 401, 'invalid_token', /wrong audience/);
  });

  test('an expired token', async () => {
    const { token, expiresIn } = await idp.token('short-lived-app');
    const expiresAt = Date.now() + expiresIn * 1000;
    await accepted(token);
    await waitFor(() => Date.now() > expiresAt + 1000, { what: 'the token to expire', timeoutMs: 10_000 });
    await refused(token, 401, 'invalid_token', /not active|expired/);
  });

  test('revoked by the operator (tokens revoke): by subject, and one token by its digest, while cached', async () => {
    const support = (await idp.token('support-app')).token;
    const research = (await idp.token('research-app')).token;
    await accepted(support);
    await accepted(research);
    const bySubject = await tokensCli(['revoke', '--redis', redis.url, '--subject', 'support-app']);
    assert.equal(bySubject.code, 0, bySubject.stderr);
    await waitFor(async () => (await failure(support))?.code === 'invalid_token', { what: 'the subject revocation to reach the gateway', timeoutMs: 10_000 });
    await refused(support, 401, 'invalid_token', /revoked/);
    await accepted(research);

    const byToken = await tokensCli(['revoke', '--redis', redis.url, '--token-stdin'], `${research}\n`);
    assert.equal(byToken.code, 0, byToken.stderr);
    assert.ok(!byToken.stderr.includes(research), 'the CLI never echoes the token');
    assert.ok(byToken.stderr.includes(createHash('sha256').update(research).digest('hex')));
    await waitFor(async () => (await failure(research))?.code === 'invalid_token', { what: 'the token revocation to reach the gateway', timeoutMs: 10_000 });
    await accepted((await idp.token('research-app')).token);
  });
});

test('operator revocations apply to JWTs too: one token by its jti, then every token of a subject (while cached), then withdrawn', async () => {
  const jwt = (sub: string, jti: string): Promise<string> =>
    mintFor(jwtKey, standardClaims({ iss: JWT_ISS, aud: GATEWAY_RESOURCE, sub, nowMs: Date.now() }, { jti }));
  const first = await jwt('batch-job', 'run-1');
  const second = await jwt('batch-job', 'run-2');
  assert.equal((await accepted(first))['x-gateway-auth-method'], 'jwt');
  await accepted(second);

  const byJti = await tokensCli(['revoke', '--redis', redis.url, '--jti', 'run-1']);
  assert.equal(byJti.code, 0, byJti.stderr);
  await waitFor(async () => (await failure(first))?.code === 'invalid_token', { what: 'the jti revocation to reach the gateway', timeoutMs: 10_000 });
  await refused(first, 401, 'invalid_token', /revoked/);
  await accepted(second);

  const bySubject = await tokensCli(['revoke', '--redis', redis.url, '--subject', 'batch-job']);
  assert.equal(bySubject.code, 0, bySubject.stderr);
  await waitFor(async () => (await failure(second))?.code === 'invalid_token', { what: 'the subject revocation to reach the gateway', timeoutMs: 10_000 });
  await refused(second, 401, 'invalid_token', /revoked/);
  await refused(await jwt('batch-job', 'run-3'), 401, 'invalid_token', /revoked/);
  await accepted(await jwt('other-job', 'run-1b'));

  // The operator withdraws the subject's revocation: its tokens work again, except the one revoked by its jti.
  const undone = await tokensCli(['unrevoke', '--redis', redis.url, '--subject', 'batch-job']);
  assert.equal(undone.code, 0, undone.stderr);
  await waitFor(async () => (await failure(second)) === null, { what: 'the withdrawal to reach the gateway', timeoutMs: 10_000 });
  await refused(first, 401, 'invalid_token', /revoked/);
});

test('through ext_authz (Envoy asks Check): the same identity and refusals', async () => {
  const authz = await startTestStack({ filter: 'ext_authz', config: gatewayConfig(secretFile) });
  try {
    const { token } = await idp.token('research-app');
    const c = new OpenAI({ baseURL: authz.baseURL, apiKey: token, maxRetries: 0, timeout: 30_000 });
    const r = await c.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
    assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
    assert.equal(authz.upstream.requests.at(-1)?.headers['x-gateway-auth-method'], 'introspection');
    const bad = new OpenAI({ baseURL: authz.baseURL, apiKey: 'made-up-token-for-ext-authz', maxRetries: 0, timeout: 30_000 });
    await assert.rejects(
      bad.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 401 && e.code === 'invalid_token',
    );
  } finally {
    await authz.stop();
  }
});

test('1,000 concurrent requests with one token make one introspection call', async () => {
  const { token } = await idp.token('research-app');
  const before = idp.introspectionCalls();
  const c = client(token);
  const results = await Promise.allSettled(
    Array.from({ length: 1000 }, () => c.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })),
  );
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, String(failed[0]?.status === 'rejected' ? failed[0].reason : ''));
  assert.equal(idp.introspectionCalls() - before, 1);
  const metrics = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
  assert.ok(
    (metrics.get(`inference_gateway_introspection_calls_total{issuer="${idp.issuer}",outcome="active"}`) ?? 0) >= 1,
    'calls are counted by issuer and outcome',
  );
});

test('with the IdP down: a cached token works until its entry expires, an uncached one gets 503', async () => {
  const cached = (await idp.token('research-app')).token;
  const uncached = (await idp.token('research-app')).token;
  await accepted(cached);
  const cachedAt = Date.now();
  await idp.close();

  await refused(uncached, 503, 'authentication_unavailable', /unavailable/);
  await accepted(cached);
  // The entry lives recheckSeconds: after that the token must be asked about again, and the IdP cannot answer.
  await waitFor(async () => (await failure(cached))?.code === 'authentication_unavailable', {
    what: 'the cached entry to expire',
    timeoutMs: (RECHECK_SECONDS + 15) * 1000,
    intervalMs: 500,
  });
  assert.ok(Date.now() - cachedAt >= RECHECK_SECONDS * 1000 - 1000, 'the cached token kept working until its entry expired');
});

test('no token issued in this file is in the audit file or the sidecar logs', () => {
  const audit = readFileSync(stack.files.auditFile, 'utf8');
  const logs = stack.sidecar?.output() ?? '';
  assert.ok(issued.length >= 10);
  for (const token of issued) {
    assert.ok(!audit.includes(token), 'not in the audit file');
    assert.ok(!logs.includes(token), 'not in the logs');
  }
});
