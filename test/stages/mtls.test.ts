// MtlsVerifier: every rule of the mTLS identity mapping, on ConnectionInfo
// values shaped like the ones Envoy 1.40 reports (see test/envoy/mtls.test.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigSchema } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { ConnectionInfo } from '../../src/pipeline/identity.ts';
import { MtlsVerifier, parseSpiffeId } from '../../src/stages/auth/mtls.ts';

const APP = 'spiffe://prod.example.org/ns/team-a/sa/app';
const DIGEST = 'abecabd8a10cbd813014a58835dde9ce809ec7d2d534dd336fbf3b3878658d5a';

function mtlsConfig(mtls: unknown): ConstructorParameters<typeof MtlsVerifier>[0] {
  return ConfigSchema.parse({ auth: { mtls } }).auth.mtls;
}

const verifier = new MtlsVerifier(
  mtlsConfig({
    trustDomains: ['prod.example.org', 'staging.example.org'],
    identities: [
      {
        spiffeId: APP,
        principal: 'team-a-app',
        org: 'acme',
        tenant: 'team-a',
        tier: 'gold',
        roles: ['inference'],
        models: ['llama-3-8b'],
        endpoints: ['chat', 'models'],
      },
      { spiffeId: 'spiffe://prod.example.org/ns/team-a/*', principal: 'team-a-any', org: 'acme', tenant: 'team-a' },
      { spiffeId: 'spiffe://prod.example.org/*', principal: 'prod-any', org: 'acme', tenant: 'shared' },
      { spiffeId: 'spiffe://prod.example.org/ns/team-a/sa/batch/*', principal: 'team-a-batch', org: 'acme', tenant: 'team-a' },
      { subject: 'CN=batch-client,O=Acme', principal: 'batch', org: 'acme', tenant: 'batch', tier: 'bulk' },
    ],
  }),
);

function conn(over: Partial<ConnectionInfo>): ConnectionInfo {
  return { mtls: true, uriSans: [], subject: null, sha256Digest: DIGEST, sourceAddress: '127.0.0.1:40890', ...over };
}

function assertRefused(c: ConnectionInfo, reason: RegExp, v: MtlsVerifier = verifier): void {
  assert.throws(
    () => v.verify(c),
    (err: unknown) => {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.code, 'untrusted_client_certificate');
      assert.equal(err.status, 401);
      assert.match(err.message, reason);
      return true;
    },
  );
}

void test('enabled only with at least one identity mapping', () => {
  assert.equal(new MtlsVerifier(mtlsConfig({})).enabled, false);
  assert.equal(new MtlsVerifier(mtlsConfig({ trustDomains: ['prod.example.org'] })).enabled, false);
  assert.equal(verifier.enabled, true);
});

void test('no verified client certificate → null (not an error), whatever else the connection says', () => {
  assert.equal(verifier.verify(conn({ mtls: false, uriSans: [], subject: null, sha256Digest: null })), null);
  // mtls false wins even if other fields were filled.
  assert.equal(verifier.verify(conn({ mtls: false, uriSans: [APP], subject: 'CN=batch-client,O=Acme' })), null);
  // With no mappings configured, a certificate is refused (not silently ignored).
  assertRefused(conn({ uriSans: [APP] }), /no identity/, new MtlsVerifier(mtlsConfig({ trustDomains: ['prod.example.org'] })));
});

void test('exact SPIFFE ID → the configured identity and grants', () => {
  const c = verifier.verify(conn({ uriSans: [APP], subject: 'CN=team-a-app' }));
  assert.ok(c !== null);
  assert.equal(c.method, 'mtls');
  assert.equal(c.principal, 'team-a-app');
  assert.equal(c.spiffeId, APP);
  assert.equal(c.certSubject, 'CN=team-a-app');
  assert.equal(c.certDigest, DIGEST);
  assert.equal(c.org, 'acme');
  assert.equal(c.tenant, 'team-a');
  assert.equal(c.tier, 'gold');
  assert.deepEqual(c.roles, ['inference']);
  assert.deepEqual(c.models, new Set(['llama-3-8b']));
  assert.deepEqual(c.endpoints, new Set(['chat', 'models']));
  assert.ok(Object.isFrozen(c));
});

void test('prefix mappings: exact beats prefix, the longest /* prefix wins', () => {
  const principal = (uri: string): string | undefined => verifier.verify(conn({ uriSans: [uri] }))?.principal;
  assert.equal(principal(APP), 'team-a-app');
  assert.equal(principal('spiffe://prod.example.org/ns/team-a/sa/other'), 'team-a-any');
  assert.equal(principal('spiffe://prod.example.org/ns/team-a/sa/batch/worker-1'), 'team-a-batch');
  assert.equal(principal('spiffe://prod.example.org/ns/team-b/sa/app'), 'prod-any');
  // A prefix matches below its path only: ".../ns/team-a" itself is not under ".../ns/team-a/*".
  assert.equal(principal('spiffe://prod.example.org/ns/team-a'), 'prod-any');
  // "team-a/*" must not match a sibling that merely starts with the same text.
  assert.equal(principal('spiffe://prod.example.org/ns/team-ab/sa/app'), 'prod-any');
  const c = verifier.verify(conn({ uriSans: ['spiffe://prod.example.org/ns/team-b/sa/app'] }));
  assert.equal(c?.models, '*');
  assert.equal(c?.endpoints, '*');
  assert.equal(c?.tier, 'standard');
});

void test('subject mapping for a certificate without URI SAN', () => {
  const c = verifier.verify(conn({ subject: 'CN=batch-client,O=Acme' }));
  assert.equal(c?.principal, 'batch');
  assert.equal(c?.spiffeId, null);
  assert.equal(c?.certSubject, 'CN=batch-client,O=Acme');
  assert.equal(c?.tier, 'bulk');
  // Exact match only: order, case and spacing matter (RFC 2253 as Envoy prints it).
  assertRefused(conn({ subject: 'O=Acme,CN=batch-client' }), /no identity/);
  assertRefused(conn({ subject: 'CN=batch-client, O=Acme' }), /no identity/);
  assertRefused(conn({ subject: 'cn=batch-client,o=acme' }), /no identity/);
  assertRefused(conn({ subject: null }), /no identity/);
});

void test('an unmapped SPIFFE ID falls back to the subject mapping, else it is refused', () => {
  const v = new MtlsVerifier(
    mtlsConfig({
      trustDomains: ['prod.example.org'],
      identities: [
        { spiffeId: APP, principal: 'app', org: 'acme', tenant: 'a' },
        { subject: 'CN=batch-client,O=Acme', principal: 'batch', org: 'acme', tenant: 'b' },
      ],
    }),
  );
  const other = 'spiffe://prod.example.org/ns/team-b/sa/other';
  const c = v.verify(conn({ uriSans: [other], subject: 'CN=batch-client,O=Acme' }));
  assert.equal(c?.principal, 'batch');
  assert.equal(c?.spiffeId, other, 'the SPIFFE ID is still reported');
  assertRefused(conn({ uriSans: [other], subject: 'CN=someone-else' }), /no identity/, v);
});

void test('several URI SANs are refused, even when the first one is mapped', () => {
  assertRefused(conn({ uriSans: [APP, 'spiffe://prod.example.org/ns/team-b/sa/other'] }), /several URI SANs/);
  assertRefused(conn({ uriSans: [APP, APP] }), /several URI SANs/);
  assertRefused(conn({ uriSans: [APP, 'https://example.org/x'], subject: 'CN=batch-client,O=Acme' }), /several URI SANs/);
});

void test('a SPIFFE ID from a trust domain not in trustDomains is refused, even with a mapped subject', () => {
  assertRefused(conn({ uriSans: ['spiffe://evil.example.com/ns/x/sa/y'] }), /trust domain/);
  assertRefused(conn({ uriSans: ['spiffe://evil.example.com/ns/x/sa/y'], subject: 'CN=batch-client,O=Acme' }), /trust domain/);
  // Look-alikes of a trusted domain are other domains.
  assertRefused(conn({ uriSans: ['spiffe://prod.example.org.evil.com/ns/team-a/sa/app'] }), /trust domain/);
  assertRefused(conn({ uriSans: ['spiffe://example.org/ns/team-a/sa/app'] }), /trust domain/);
  // A trusted domain without a mapping for the ID: refused as unmapped.
  assertRefused(conn({ uriSans: ['spiffe://staging.example.org/ns/team-a/sa/app'] }), /no identity/);
});

void test('malformed SPIFFE IDs are refused', async (t) => {
  for (const bad of [
    'SPIFFE://prod.example.org/ns/team-a/sa/app',
    'spiffe://Prod.Example.org/ns/team-a/sa/app',
    'spiffe://prod.example.org:443/ns/team-a/sa/app',
    'spiffe://user@prod.example.org/ns/team-a/sa/app',
    'spiffe://prod.example.org/ns/team-a/sa/app/',
    'spiffe://prod.example.org/ns//sa/app',
    'spiffe://prod.example.org/ns/../sa/app',
    'spiffe://prod.example.org/ns/./sa/app',
    'spiffe://prod.example.org/ns/team-a/sa/app?x=1',
    'spiffe://prod.example.org/ns/team-a/sa/app#f',
    'spiffe://prod.example.org/ns/team%2Da/sa/app',
    'spiffe:///ns/team-a',
    'spiffe:prod.example.org/ns/a',
  ]) {
    await t.test(bad, () => {
      assertRefused(conn({ uriSans: [bad], subject: 'CN=batch-client,O=Acme' }), /malformed/);
    });
  }
  assert.deepEqual(parseSpiffeId(APP), { id: APP, trustDomain: 'prod.example.org' });
  assert.deepEqual(parseSpiffeId('spiffe://prod.example.org'), { id: 'spiffe://prod.example.org', trustDomain: 'prod.example.org' });
});

void test('a non-SPIFFE URI SAN is not a SPIFFE ID: the subject mapping decides', () => {
  const c = verifier.verify(conn({ uriSans: ['https://clients.example.org/batch'], subject: 'CN=batch-client,O=Acme' }));
  assert.equal(c?.principal, 'batch');
  assert.equal(c?.spiffeId, null);
  assertRefused(conn({ uriSans: ['https://clients.example.org/batch'] }), /no identity/);
});

void test('the certificate digest must be present and well-formed', () => {
  assertRefused(conn({ uriSans: [APP], sha256Digest: null }), /digest/);
  assertRefused(conn({ uriSans: [APP], sha256Digest: '' }), /digest/);
  assertRefused(conn({ uriSans: [APP], sha256Digest: 'abcd' }), /digest/);
  assertRefused(conn({ uriSans: [APP], sha256Digest: `${DIGEST}00` }), /digest/);
  assert.equal(verifier.verify(conn({ uriSans: [APP], sha256Digest: DIGEST.toUpperCase() }))?.certDigest, DIGEST);
});

void test('refusal messages carry no certificate values', async (t) => {
  const evil = 'spiffe://evil.example.com/ns/x/sa/<script>';
  const cases: Array<[string, ReturnType<typeof conn>]> = [
    ['untrusted SPIFFE ID', conn({ uriSans: [evil] })],
    ['two URI SANs', conn({ uriSans: [evil, APP] })],
    ['unmapped subject', conn({ subject: 'CN=<script>' })],
  ];
  for (const [name, c] of cases) {
    await t.test(name, () => {
      assert.throws(
        () => verifier.verify(c),
        (err: unknown) => err instanceof GatewayError && !err.message.includes('evil') && !err.message.includes('<script>'),
      );
    });
  }
});

void test('configuration mistakes fail at construction', () => {
  const id = { principal: 'p', org: 'o', tenant: 't' };
  assert.throws(
    () => new MtlsVerifier(mtlsConfig({ trustDomains: ['prod.example.org'], identities: [{ spiffeId: 'spiffe://other.example.org/x', ...id }] })),
    /identities\[0\]: trust domain other\.example\.org is not in auth\.mtls\.trustDomains/,
  );
  assert.throws(
    () =>
      new MtlsVerifier(
        mtlsConfig({
          trustDomains: ['prod.example.org'],
          identities: [
            { spiffeId: APP, ...id },
            { spiffeId: APP, ...id },
          ],
        }),
      ),
    /identities\[1\]: spiffeId .* is mapped twice/,
  );
  assert.throws(
    () =>
      new MtlsVerifier(
        mtlsConfig({
          trustDomains: ['prod.example.org'],
          identities: [
            { spiffeId: 'spiffe://prod.example.org/a/*', ...id },
            { spiffeId: 'spiffe://prod.example.org/a/*', ...id },
          ],
        }),
      ),
    /mapped twice/,
  );
  assert.throws(
    () =>
      new MtlsVerifier(
        mtlsConfig({
          identities: [
            { subject: 'CN=x', ...id },
            { subject: 'CN=x', ...id },
          ],
        }),
      ),
    /subject CN=x is mapped twice/,
  );
  assert.throws(
    () => new MtlsVerifier(mtlsConfig({ trustDomains: ['prod.example.org'], identities: [{ spiffeId: 'spiffe://prod.example.org/a/*/b', ...id }] })),
    /not a valid SPIFFE ID/,
  );
});
