// connectionInfoFromAttributes (ext_proc) and connectionInfoFromCheckRequest
// (ext_authz) on the exact shapes Envoy 1.40 sent in test/envoy/mtls.test.ts'
// setup: certificates from test/helpers/pki.ts, captured once and pasted here
// (the PEMs, digests and attribute sets are Envoy's own output).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigSchema } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { Struct, Value } from '../../src/server/proto/common.ts';
import type { CheckRequest } from '../../src/server/proto/ext-authz.ts';
import { connectionInfoFromCheckRequest } from '../../src/server/ext-authz-peer.ts';
import { connectionInfoFromAttributes, parsePeerCertificate, parseSubjectAltName, rfc2253Subject } from '../../src/server/extproc/attributes.ts';
import { MtlsVerifier } from '../../src/stages/auth/mtls.ts';

const APP = 'spiffe://prod.example.org/ns/team-a/sa/app';
const OTHER = 'spiffe://prod.example.org/ns/team-b/sa/other';

const PEM_SPIFFE =
  [
    '-----BEGIN CERTIFICATE-----',
    'MIIB1jCCAX2gAwIBAgICA+swCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZXJl',
    'bmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy',
    'NDNaMBUxEzARBgNVBAMMCnRlYW0tYS1hcHAwWTATBgcqhkjOPQIBBggqhkjOPQMB',
    'BwNCAARQZAdEeh+sKmXKpisd82Qc0sqoQnr4UvUr/qCNzoUilk2aXohlYz0cQz1+',
    'r1aGaSiqwH+6Rsxq/chrYwANYvuGo4GtMIGqMAwGA1UdEwEB/wQCMAAwDgYDVR0P',
    'AQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMDUGA1UdEQQuMCyGKnNwaWZm',
    'ZTovL3Byb2QuZXhhbXBsZS5vcmcvbnMvdGVhbS1hL3NhL2FwcDAdBgNVHQ4EFgQU',
    'SRGWeCzS18UKqokL98//K+1rdkYwHwYDVR0jBBgwFoAUhRtqTUY5w1SaVaTE9Vv0',
    's6RgvTcwCgYIKoZIzj0EAwIDRwAwRAIgX8iGhKDyh/BFB3+djratlxflIYxQ5tOf',
    'csM1H8lceIECIBgbuVYgii0Psoaq4k66Ab5vRheo/BfTB0S+Nd8BMAfm',
    '-----END CERTIFICATE-----',
  ].join('\n') + '\n';
const PEM_TWO_SANS =
  [
    '-----BEGIN CERTIFICATE-----',
    'MIICAzCCAamgAwIBAgICA+kwCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZXJl',
    'bmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy',
    'NDNaMBMxETAPBgNVBAMMCHR3by1zYW5zMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD',
    'QgAE4EWA+ul0DC2TlH9WahzWkPM5YtKQhOA1E72bRqCBZ7wKJImHPFi81aTrMlv8',
    'Q3Apni9EDfhzUhCXxdU3zh+NJKOB2zCB2DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB',
    '/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjBjBgNVHREEXDBahipzcGlmZmU6',
    'Ly9wcm9kLmV4YW1wbGUub3JnL25zL3RlYW0tYS9zYS9hcHCGLHNwaWZmZTovL3By',
    'b2QuZXhhbXBsZS5vcmcvbnMvdGVhbS1iL3NhL290aGVyMB0GA1UdDgQWBBQywjVA',
    'QHIFPNY+GCSs2Xvv0d7hSTAfBgNVHSMEGDAWgBSFG2pNRjnDVJpVpMT1W/SzpGC9',
    'NzAKBggqhkjOPQQDAgNIADBFAiA7wHjWdPYw9PkwHSk9O9NnM69UJinnjFM0mcZ4',
    'J3afLQIhAOePLe8ZdamEoLSeYMbp3V+AmhwUm1MY9BzVZodBklwa',
    '-----END CERTIFICATE-----',
  ].join('\n') + '\n';
const PEM_SUBJECT =
  [
    '-----BEGIN CERTIFICATE-----',
    'MIIBrzCCAVWgAwIBAgICA+owCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZXJl',
    'bmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy',
    'NDNaMCYxDTALBgNVBAoMBEFjbWUxFTATBgNVBAMMDGJhdGNoLWNsaWVudDBZMBMG',
    'ByqGSM49AgEGCCqGSM49AwEHA0IABN6MpE97UNO53uvFrjYmO+oy//t1tYwBbV0+',
    '/FM3elAIbBdupFbekhKar65OmGWpwa3KhspGuoMsf9uxzvdgvNijdTBzMAwGA1Ud',
    'EwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0G',
    'A1UdDgQWBBRpGFUIGaEmaK+vkg6bwNMumPzEyTAfBgNVHSMEGDAWgBSFG2pNRjnD',
    'VJpVpMT1W/SzpGC9NzAKBggqhkjOPQQDAgNIADBFAiEA3Ye6H2L4eNRjqmGUXddx',
    '62INPTYSInmuyXHi8g1AV1ECIAruT3m3IOorGC+fkWhmT/SLMBA8vsYzR5K06+Aa',
    'Bhqi',
    '-----END CERTIFICATE-----',
  ].join('\n') + '\n';
/** Envoy's sha256_peer_certificate_digest for each (= SHA-256 of the DER). */
const DIGEST_SPIFFE = '67a9bddf7dec495ab9f6a114270013b09559bfd90554497c5bc23cf8eebc954a';
const DIGEST_TWO_SANS = '9225039f64ce7e3cd6578d70e0892035c584991871eff920460ff83e26487c04';
const DIGEST_SUBJECT = 'baf3d9e4189158d2ce9c0d6ef94a22a88bd364abdaceb1d2d1b420d750cbf14f';

// ext_authz source.certificate exactly as Envoy sent it (URL-encoded PEM).
const AUTHZ_CERT_SPIFFE = [
  '-----BEGIN%20CERTIFICATE-----%0AMIIB1jCCAX2gAwIBAgICA%2BswCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZX',
  'Jl%0AbmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy%0ANDNaMBUxEzARBgNVBAMMCnRl',
  'YW0tYS1hcHAwWTATBgcqhkjOPQIBBggqhkjOPQMB%0ABwNCAARQZAdEeh%2BsKmXKpisd82Qc0sqoQnr4UvUr%2FqCNzoUil',
  'k2aXohlYz0cQz1%2B%0Ar1aGaSiqwH%2B6Rsxq%2FchrYwANYvuGo4GtMIGqMAwGA1UdEwEB%2FwQCMAAwDgYDVR0P%0AAQH',
  '%2FBAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMDUGA1UdEQQuMCyGKnNwaWZm%0AZTovL3Byb2QuZXhhbXBsZS5vcmcvbn',
  'MvdGVhbS1hL3NhL2FwcDAdBgNVHQ4EFgQU%0ASRGWeCzS18UKqokL98%2F%2FK%2B1rdkYwHwYDVR0jBBgwFoAUhRtqTUY5w',
  '1SaVaTE9Vv0%0As6RgvTcwCgYIKoZIzj0EAwIDRwAwRAIgX8iGhKDyh%2FBFB3%2BdjratlxflIYxQ5tOf%0AcsM1H8lceIE',
  'CIBgbuVYgii0Psoaq4k66Ab5vRheo%2FBfTB0S%2BNd8BMAfm%0A-----END%20CERTIFICATE-----%0A',
].join('');
const AUTHZ_CERT_TWO_SANS = [
  '-----BEGIN%20CERTIFICATE-----%0AMIICAzCCAamgAwIBAgICA%2BkwCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZX',
  'Jl%0AbmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy%0ANDNaMBMxETAPBgNVBAMMCHR3',
  'by1zYW5zMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD%0AQgAE4EWA%2Bul0DC2TlH9WahzWkPM5YtKQhOA1E72bRqCBZ7wKJIm',
  'HPFi81aTrMlv8%0AQ3Apni9EDfhzUhCXxdU3zh%2BNJKOB2zCB2DAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB%0A%2FwQEAwIHg',
  'DATBgNVHSUEDDAKBggrBgEFBQcDAjBjBgNVHREEXDBahipzcGlmZmU6%0ALy9wcm9kLmV4YW1wbGUub3JnL25zL3RlYW0tYS',
  '9zYS9hcHCGLHNwaWZmZTovL3By%0Ab2QuZXhhbXBsZS5vcmcvbnMvdGVhbS1iL3NhL290aGVyMB0GA1UdDgQWBBQywjVA%0A',
  'QHIFPNY%2BGCSs2Xvv0d7hSTAfBgNVHSMEGDAWgBSFG2pNRjnDVJpVpMT1W%2FSzpGC9%0ANzAKBggqhkjOPQQDAgNIADBFA',
  'iA7wHjWdPYw9PkwHSk9O9NnM69UJinnjFM0mcZ4%0AJ3afLQIhAOePLe8ZdamEoLSeYMbp3V%2BAmhwUm1MY9BzVZodBklwa',
  '%0A-----END%20CERTIFICATE-----%0A',
].join('');
const AUTHZ_CERT_SUBJECT = [
  '-----BEGIN%20CERTIFICATE-----%0AMIIBrzCCAVWgAwIBAgICA%2BowCgYIKoZIzj0EAwIwJDEiMCAGA1UEAwwZSW5mZX',
  'Jl%0AbmNlIEdhdGV3YXkgVGVzdCBDQTAeFw0yNjExMjIyMzMyNDNaFw0yNjExMjQyMzMy%0ANDNaMCYxDTALBgNVBAoMBEFj',
  'bWUxFTATBgNVBAMMDGJhdGNoLWNsaWVudDBZMBMG%0AByqGSM49AgEGCCqGSM49AwEHA0IABN6MpE97UNO53uvFrjYmO%2Bo',
  'y%2F%2Ft1tYwBbV0%2B%0A%2FFM3elAIbBdupFbekhKar65OmGWpwa3KhspGuoMsf9uxzvdgvNijdTBzMAwGA1Ud%0AEwEB%',
  '2FwQCMAAwDgYDVR0PAQH%2FBAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0G%0AA1UdDgQWBBRpGFUIGaEmaK%2Bvkg6b',
  'wNMumPzEyTAfBgNVHSMEGDAWgBSFG2pNRjnD%0AVJpVpMT1W%2FSzpGC9NzAKBggqhkjOPQQDAgNIADBFAiEA3Ye6H2L4eNR',
  'jqmGUXddx%0A62INPTYSInmuyXHi8g1AV1ECIAruT3m3IOorGC%2BfkWhmT%2FSLMBA8vsYzR5K06%2BAa%0ABhqi%0A----',
  '-END%20CERTIFICATE-----%0A',
].join('');

// ---------------------------------------------------------------- ext_proc

// protobufjs' decoded google.protobuf.Value: camelCase kinds, the value and
// the `kind` discriminant (key order as decoded).
const str = (v: string): Value => ({ stringValue: v, kind: 'stringValue' });
const bool = (v: boolean): Value => ({ boolValue: v, kind: 'boolValue' });
const attrs = (fields: Record<string, Value>): Record<string, Struct> => ({ 'envoy.filters.http.ext_proc': { fields } });

/** ProcessingRequest.attributes for a client with certificate (a), as captured. */
const CAPTURED_SPIFFE = attrs({
  'connection.uri_san_peer_certificate': str(APP),
  'connection.sha256_peer_certificate_digest': str(DIGEST_SPIFFE),
  'connection.peer_certificate_valid': bool(true),
  'source.address': str('127.0.0.1:46494'),
  'connection.peer_certificate': str(PEM_SPIFFE),
  'connection.subject_peer_certificate': str('CN=team-a-app'),
  'connection.mtls': bool(true),
});
/** Certificate (c), two URI SANs: Envoy's uri_san attribute holds only the first. */
const CAPTURED_TWO_SANS = attrs({
  'connection.subject_peer_certificate': str('CN=two-sans'),
  'connection.peer_certificate_valid': bool(true),
  'connection.mtls': bool(true),
  'source.address': str('127.0.0.1:46506'),
  'connection.peer_certificate': str(PEM_TWO_SANS),
  'connection.sha256_peer_certificate_digest': str(DIGEST_TWO_SANS),
  'connection.uri_san_peer_certificate': str(APP),
});
/** Certificate (b), subject only: no uri_san attribute at all. */
const CAPTURED_SUBJECT = attrs({
  'connection.subject_peer_certificate': str('CN=batch-client,O=Acme'),
  'connection.mtls': bool(true),
  'connection.peer_certificate_valid': bool(true),
  'source.address': str('127.0.0.1:46510'),
  'connection.peer_certificate': str(PEM_SUBJECT),
  'connection.sha256_peer_certificate_digest': str(DIGEST_SUBJECT),
});
/** TLS listener with require_client_certificate false, client sent none. */
const CAPTURED_TLS_NO_CERT = attrs({
  'connection.peer_certificate_valid': bool(false),
  'connection.mtls': bool(false),
  'connection.subject_peer_certificate': str(''),
  'source.address': str('127.0.0.1:46514'),
});
/** Plaintext listener. */
const CAPTURED_PLAINTEXT = attrs({
  'connection.mtls': bool(false),
  'connection.peer_certificate_valid': bool(false),
  'source.address': str('127.0.0.1:40400'),
});

function without(a: Record<string, Struct>, ...names: string[]): Record<string, Struct> {
  const fields = { ...a['envoy.filters.http.ext_proc']?.fields };
  for (const n of names) delete fields[n];
  return attrs(fields);
}
function withField(a: Record<string, Struct>, name: string, v: Value): Record<string, Struct> {
  return attrs({ ...a['envoy.filters.http.ext_proc']?.fields, [name]: v });
}

void test('ext_proc: no attributes, another namespace or plaintext → no mTLS', () => {
  const none = { mtls: false, uriSans: [], subject: null, sha256Digest: null, sourceAddress: null };
  assert.deepEqual(connectionInfoFromAttributes(undefined), none);
  assert.deepEqual(connectionInfoFromAttributes({}), none);
  assert.deepEqual(connectionInfoFromAttributes({ 'envoy.filters.http.other': { fields: { 'connection.mtls': bool(true) } } }), none);
  assert.deepEqual(connectionInfoFromAttributes({ 'envoy.filters.http.ext_proc': {} }), none);
  assert.deepEqual(connectionInfoFromAttributes(CAPTURED_PLAINTEXT), { ...none, sourceAddress: '127.0.0.1:40400' });
  // TLS without a client certificate: the empty subject Envoy sends is "none".
  assert.deepEqual(connectionInfoFromAttributes(CAPTURED_TLS_NO_CERT), { ...none, sourceAddress: '127.0.0.1:46514' });
});

void test('ext_proc: certificate (a), one SPIFFE URI SAN', () => {
  assert.deepEqual(connectionInfoFromAttributes(CAPTURED_SPIFFE), {
    mtls: true,
    uriSans: [APP],
    subject: 'CN=team-a-app',
    sha256Digest: DIGEST_SPIFFE,
    sourceAddress: '127.0.0.1:46494',
  });
});

void test('ext_proc: certificate (c), two URI SANs — both come from the PEM, since Envoy sends only the first', () => {
  const fields = CAPTURED_TWO_SANS['envoy.filters.http.ext_proc']?.fields ?? {};
  assert.deepEqual(fields['connection.uri_san_peer_certificate'], str(APP), 'the attribute is the first SAN only, nothing joined');
  const info = connectionInfoFromAttributes(CAPTURED_TWO_SANS);
  assert.deepEqual(info.uriSans, [APP, OTHER]);
  assert.equal(info.sha256Digest, DIGEST_TWO_SANS);
  // Without the PEM only the first SAN is known (an Envoy config that does not request it).
  assert.deepEqual(connectionInfoFromAttributes(without(CAPTURED_TWO_SANS, 'connection.peer_certificate')).uriSans, [APP]);
});

void test('ext_proc: certificate (b), subject only', () => {
  assert.deepEqual(connectionInfoFromAttributes(CAPTURED_SUBJECT), {
    mtls: true,
    uriSans: [],
    subject: 'CN=batch-client,O=Acme',
    sha256Digest: DIGEST_SUBJECT,
    sourceAddress: '127.0.0.1:46510',
  });
});

void test('ext_proc: mtls needs connection.mtls true and no explicit peer_certificate_valid false', () => {
  assert.equal(connectionInfoFromAttributes(withField(CAPTURED_SPIFFE, 'connection.peer_certificate_valid', bool(false))).mtls, false);
  assert.equal(connectionInfoFromAttributes(without(CAPTURED_SPIFFE, 'connection.peer_certificate_valid')).mtls, true);
  assert.equal(connectionInfoFromAttributes(without(CAPTURED_SPIFFE, 'connection.mtls')).mtls, false);
  // Wrong kinds are "absent", never coerced.
  assert.equal(connectionInfoFromAttributes(withField(CAPTURED_SPIFFE, 'connection.mtls', str('true'))).mtls, false);
  assert.equal(connectionInfoFromAttributes(withField(CAPTURED_SPIFFE, 'connection.mtls', { numberValue: 1, kind: 'numberValue' })).mtls, false);
  const noMtls = connectionInfoFromAttributes(withField(CAPTURED_SPIFFE, 'connection.mtls', bool(false)));
  assert.deepEqual(noMtls, { mtls: false, uriSans: [], subject: null, sha256Digest: null, sourceAddress: '127.0.0.1:46494' });
});

void test('ext_proc: missing fields are tolerated', () => {
  const bare = connectionInfoFromAttributes(attrs({ 'connection.mtls': bool(true) }));
  assert.deepEqual(bare, { mtls: true, uriSans: [], subject: null, sha256Digest: null, sourceAddress: null });
  // The digest can be taken from the certificate when Envoy did not send it.
  assert.equal(connectionInfoFromAttributes(without(CAPTURED_SPIFFE, 'connection.sha256_peer_certificate_digest')).sha256Digest, DIGEST_SPIFFE);
});

void test('ext_proc: a PEM that does not match Envoy’s digest or first SAN, or does not parse, drops the digest (→ refused)', async (t) => {
  const verifier = new MtlsVerifier(
    ConfigSchema.parse({
      auth: { mtls: { trustDomains: ['prod.example.org'], identities: [{ spiffeId: APP, principal: 'app', org: 'o', tenant: 't' }] } },
    }).auth.mtls,
  );
  assert.equal(verifier.verify(connectionInfoFromAttributes(CAPTURED_SPIFFE))?.principal, 'app');
  const cases: Array<[string, Record<string, Struct>]> = [
    ['another certificate than the digest and SAN', withField(CAPTURED_SPIFFE, 'connection.peer_certificate', str(PEM_SUBJECT))],
    ['a digest of another certificate', withField(CAPTURED_SPIFFE, 'connection.sha256_peer_certificate_digest', str(DIGEST_SUBJECT))],
    ['a first URI SAN not in the certificate', withField(CAPTURED_SPIFFE, 'connection.uri_san_peer_certificate', str(OTHER))],
    [
      'a PEM that is not base64',
      withField(CAPTURED_SPIFFE, 'connection.peer_certificate', str('-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n')),
    ],
    ['garbage', withField(CAPTURED_SPIFFE, 'connection.peer_certificate', str('garbage'))],
    ['a broken URL encoding', withField(CAPTURED_SPIFFE, 'connection.peer_certificate', str('%E0%A4%A'))],
  ];
  for (const [name, bad] of cases) {
    await t.test(name, () => {
      const info = connectionInfoFromAttributes(bad);
      assert.equal(info.mtls, true);
      assert.equal(info.sha256Digest, null);
      assert.throws(
        () => verifier.verify(info),
        (e: unknown) => e instanceof GatewayError && e.code === 'untrusted_client_certificate',
      );
    });
  }
  // Certificate (c) is refused for its two SANs although the first is mapped.
  assert.throws(() => verifier.verify(connectionInfoFromAttributes(CAPTURED_TWO_SANS)), /several URI SANs/);
});

void test('peer certificates parse from plain and URL-encoded PEM alike', () => {
  const plain = parsePeerCertificate(PEM_TWO_SANS);
  const encoded = parsePeerCertificate(AUTHZ_CERT_TWO_SANS);
  assert.deepEqual(plain, { uriSans: [APP, OTHER], subject: 'CN=two-sans', sha256: DIGEST_TWO_SANS });
  assert.deepEqual(encoded, plain);
  assert.deepEqual(parsePeerCertificate(PEM_SUBJECT), { uriSans: [], subject: 'CN=batch-client,O=Acme', sha256: DIGEST_SUBJECT });
  assert.equal(parsePeerCertificate(''), null);
  assert.equal(parsePeerCertificate('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), null);
  assert.equal(parsePeerCertificate(PEM_SPIFFE), parsePeerCertificate(PEM_SPIFFE), 'cached: the same object');
});

void test('Node’s subjectAltName text splits unambiguously', async (t) => {
  assert.deepEqual(parseSubjectAltName(`URI:${APP}, URI:${OTHER}`), [
    { type: 'URI', value: APP },
    { type: 'URI', value: OTHER },
  ]);
  assert.deepEqual(parseSubjectAltName('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://a/b'), [
    { type: 'DNS', value: 'localhost' },
    { type: 'IP Address', value: '127.0.0.1' },
    { type: 'URI', value: 'spiffe://a/b' },
  ]);
  // Node quotes values with a comma, quote or backslash as JSON strings.
  assert.deepEqual(parseSubjectAltName('URI:"spiffe://a/b, URI:spiffe://c/d", URI:spiffe://e/f'), [
    { type: 'URI', value: 'spiffe://a/b, URI:spiffe://c/d' },
    { type: 'URI', value: 'spiffe://e/f' },
  ]);
  assert.deepEqual(parseSubjectAltName('URI:"a\\"b\\\\c"'), [{ type: 'URI', value: 'a"b\\c' }]);
  for (const bad of ['URI', ':x', 'URI:"unterminated', 'URI:"x"y', 'URI:a,URI:b', 'URI:a, ']) {
    await t.test(`ambiguous: ${bad}`, () => {
      assert.equal(parseSubjectAltName(bad), null, bad);
    });
  }
});

void test('rfc2253Subject turns Node’s subject text into Envoy’s RFC 2253 form', () => {
  assert.equal(rfc2253Subject('O=Acme\nCN=batch-client'), 'CN=batch-client,O=Acme');
  assert.equal(rfc2253Subject('CN=team-a-app'), 'CN=team-a-app');
  assert.equal(rfc2253Subject('C=DE\nO=Acme\\, Inc.\nCN=x'), 'CN=x,O=Acme\\, Inc.,C=DE');
  // Multi-valued RDNs: Node joins with " + ", OpenSSL's RFC 2253 mode with "+" and reversed.
  assert.equal(rfc2253Subject('O=Acme\nCN=a + UID=b'), 'UID=b+CN=a,O=Acme');
  assert.equal(rfc2253Subject('CN=a\\+b'), 'CN=a\\+b');
  // UTF-8 is escaped byte-wise, as Envoy (ESC_MSB) does.
  assert.equal(rfc2253Subject('O=Acme\nCN=J\u00fcrgen'), 'CN=J\\C3\\BCrgen,O=Acme');
});

// ---------------------------------------------------------------- ext_authz

function checkRequest(source: NonNullable<NonNullable<CheckRequest['attributes']>['source']>): CheckRequest {
  return { attributes: { source } };
}
const addr = (port: number): NonNullable<NonNullable<NonNullable<CheckRequest['attributes']>['source']>['address']> => ({
  socket_address: { address: '127.0.0.1', port_value: port, port_specifier: 'port_value' },
  address: 'socket_address',
});

void test('ext_authz: certificates (a), (c), (b) as captured', () => {
  assert.deepEqual(connectionInfoFromCheckRequest(checkRequest({ address: addr(56696), principal: APP, certificate: AUTHZ_CERT_SPIFFE })), {
    mtls: true,
    uriSans: [APP],
    subject: 'CN=team-a-app',
    sha256Digest: DIGEST_SPIFFE,
    sourceAddress: '127.0.0.1:56696',
  });
  const two = connectionInfoFromCheckRequest(checkRequest({ address: addr(56708), principal: APP, certificate: AUTHZ_CERT_TWO_SANS }));
  assert.deepEqual(two.uriSans, [APP, OTHER]);
  assert.equal(two.sha256Digest, DIGEST_TWO_SANS);
  assert.deepEqual(
    connectionInfoFromCheckRequest(checkRequest({ address: addr(56722), principal: 'CN=batch-client,O=Acme', certificate: AUTHZ_CERT_SUBJECT })),
    {
      mtls: true,
      uriSans: [],
      subject: 'CN=batch-client,O=Acme',
      sha256Digest: DIGEST_SUBJECT,
      sourceAddress: '127.0.0.1:56722',
    },
  );
});

void test('ext_authz and ext_proc agree on the same certificate', () => {
  const viaProc = connectionInfoFromAttributes(CAPTURED_SPIFFE);
  const viaAuthz = connectionInfoFromCheckRequest(checkRequest({ address: addr(46494), principal: APP, certificate: AUTHZ_CERT_SPIFFE }));
  assert.deepEqual(viaAuthz, viaProc);
});

void test('ext_authz: no certificate → no mTLS; principal without certificate → no digest (refused)', () => {
  assert.deepEqual(connectionInfoFromCheckRequest({}), { mtls: false, uriSans: [], subject: null, sha256Digest: null, sourceAddress: null });
  assert.deepEqual(connectionInfoFromCheckRequest(checkRequest({ address: addr(56734) })), {
    mtls: false,
    uriSans: [],
    subject: null,
    sha256Digest: null,
    sourceAddress: '127.0.0.1:56734',
  });
  assert.deepEqual(connectionInfoFromCheckRequest(checkRequest({ principal: APP })), {
    mtls: true,
    uriSans: [APP],
    subject: null,
    sha256Digest: null,
    sourceAddress: null,
  });
  assert.deepEqual(connectionInfoFromCheckRequest(checkRequest({ principal: 'CN=x' })), {
    mtls: true,
    uriSans: [],
    subject: 'CN=x',
    sha256Digest: null,
    sourceAddress: null,
  });
  // A principal that is not the certificate's first URI SAN, or an unreadable certificate: no digest.
  assert.equal(connectionInfoFromCheckRequest(checkRequest({ principal: OTHER, certificate: AUTHZ_CERT_TWO_SANS })).sha256Digest, null);
  assert.equal(connectionInfoFromCheckRequest(checkRequest({ principal: APP, certificate: 'garbage' })).sha256Digest, null);
});

void test('ext_authz: source address forms', () => {
  const at = (address: NonNullable<NonNullable<NonNullable<CheckRequest['attributes']>['source']>['address']>): string | null =>
    connectionInfoFromCheckRequest(checkRequest({ address })).sourceAddress;
  assert.equal(at({ socket_address: { address: '::1', port_value: 443, port_specifier: 'port_value' }, address: 'socket_address' }), '[::1]:443');
  assert.equal(at({ socket_address: { address: '10.0.0.1' }, address: 'socket_address' }), '10.0.0.1');
  assert.equal(at({ pipe: { path: '/tmp/x.sock' }, address: 'pipe' }), null);
});
