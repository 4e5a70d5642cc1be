/** The control plane config's auth rules: JWT, mTLS or both; mTLS only over listen.tls; paths resolved against the file's folder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.ts';
import { parseControlPlaneConfig } from '../../src/control-plane/config.ts';

const base = {
  postgres: { url: 'postgres://127.0.0.1/cp' },
  redis: { url: 'redis://127.0.0.1:6379' },
  routing: { signingKeyFile: 'cp.pem' },
  audit: { file: 'audit.jsonl', signingKeyFile: 'audit.pem' },
};
const tls = { certFile: 'tls/server.pem', keyFile: 'tls/server.key', clientCaFile: 'tls/ca.pem' };
const mtls = { identities: [{ spiffeId: 'spiffe://prod.example.org/ops/*', principal: 'ops', roles: ['igw:admin:write'] }] };

function refusal(raw: unknown): string {
  try {
    parseControlPlaneConfig(raw, 'cp.yaml', '/etc/igw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('the config was accepted');
}

test('mTLS alone is enough; TLS files resolve against the config folder', () => {
  const c = parseControlPlaneConfig({ ...base, listen: { tls }, auth: { mtls } }, 'cp.yaml', '/etc/igw');
  assert.equal(c.listen.tls?.certFile, '/etc/igw/tls/server.pem');
  assert.equal(c.listen.tls?.clientCaFile, '/etc/igw/tls/ca.pem');
  assert.equal(c.listen.tls?.requireClientCertificate, false);
  assert.equal(c.auth.jwt, undefined);
  assert.equal(c.auth.mtls?.identities[0]?.principal, 'ops');
});

test('refused: no admin auth at all, mTLS without TLS, a mapping naming both or neither of spiffeId and subject', () => {
  assert.match(refusal({ ...base }), /auth: set auth\.jwt, auth\.mtls or both/);
  assert.match(refusal({ ...base, auth: { mtls } }), /auth\.mtls: needs listen\.tls/);
  assert.match(
    refusal({ ...base, listen: { tls }, auth: { mtls: { identities: [{ spiffeId: 'spiffe://a/b', subject: 'CN=x', principal: 'p' }] } } }),
    /auth\.mtls\.identities\[0\]: must set exactly one of spiffeId and subject/,
  );
  assert.match(refusal({ ...base, listen: { tls }, auth: { mtls: { identities: [] } } }), /auth\.mtls\.identities.*at least one/);
  assert.match(refusal({ ...base, listen: { tls: { certFile: 'a' } }, auth: { mtls } }), /listen\.tls\.keyFile/);
});

test('xds.tls: files resolve against the config folder; allowedClients need exactly one of spiffeId and subject, and at least one', () => {
  const xdsTls = { ...tls, allowedClients: [{ spiffeId: 'spiffe://prod.example.org/ns/gw/*' }, { subject: 'CN=envoy,O=Acme' }] };
  const c = parseControlPlaneConfig({ ...base, auth: { mtls }, listen: { tls }, xds: { tls: xdsTls } }, 'cp.yaml', '/etc/igw');
  assert.equal(c.xds?.tls?.keyFile, '/etc/igw/tls/server.key');
  assert.equal(c.xds?.tls?.clientCaFile, '/etc/igw/tls/ca.pem');
  assert.deepEqual(c.xds?.tls?.allowedClients, xdsTls.allowedClients);
  assert.match(
    refusal({ ...base, auth: { mtls }, listen: { tls }, xds: { tls: { ...tls, allowedClients: [{}] } } }),
    /xds\.tls\.allowedClients\[0\]: must set exactly one of spiffeId and subject/,
  );
  assert.match(refusal({ ...base, auth: { mtls }, listen: { tls }, xds: { tls: { ...tls, allowedClients: [] } } }), /xds\.tls\.allowedClients.*at least one/);
});
