/**
 * The client connection as Envoy reports it to ext_proc: the
 * `request_attributes` of envoy/gateway.yaml arrive with the request_headers
 * message as `attributes["envoy.filters.http.ext_proc"]`, a Struct keyed by
 * attribute name. Never taken from a header.
 *
 * What Envoy 1.40 sends (captured, see test/envoy/mtls.test.ts):
 * - plaintext: `connection.mtls` false, `connection.peer_certificate_valid`
 *   false, `source.address` "ip:port"; nothing else.
 * - TLS without a client certificate: the same, plus an empty
 *   `connection.subject_peer_certificate`.
 * - mTLS: `connection.mtls` true (a certificate was presented),
 *   `connection.peer_certificate_valid` true (it passed validation),
 *   `connection.subject_peer_certificate` (RFC 2253, e.g.
 *   "CN=batch-client,O=Acme"), `connection.sha256_peer_certificate_digest`
 *   (64 lower-case hex digits), `connection.uri_san_peer_certificate` (only
 *   when the certificate has a URI SAN, and then only the FIRST one: Envoy's
 *   CEL attribute takes element 0, it never joins several) and
 *   `connection.peer_certificate` (the certificate as plain PEM).
 *
 * Because of the first-SAN-only attribute, the URI SANs are read from the
 * PEM: a certificate with several URI SANs must be visible as such to be
 * refused. The PEM is parsed once per distinct certificate (small cache) and
 * cross-checked against Envoy's digest; a PEM that does not parse or does not
 * match leaves the digest out, which makes the mTLS verifier refuse the
 * certificate (fail closed). Without a PEM attribute (an Envoy config that
 * does not request it) uriSans holds the one SAN Envoy reported.
 *
 * The PEM helpers (src/shared/peer-certificate.ts) are shared with the ext_authz path (ext-authz-peer.ts)
 * and the control plane's HTTPS admin callers.
 */
import type { Struct, Value } from '../proto/common.ts';
import { NO_CONNECTION_INFO } from '../../pipeline/identity.ts';
import type { ConnectionInfo } from '../../pipeline/identity.ts';
import { parsePeerCertificate } from '../../shared/peer-certificate.ts';

/** The attributes' namespace in ProcessingRequest.attributes. */
export const EXT_PROC_ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';

/** Attribute names the gateway requests (envoy/gateway.yaml `request_attributes`). */
export const CONNECTION_ATTRIBUTES = Object.freeze({
  mtls: 'connection.mtls',
  peerCertificateValid: 'connection.peer_certificate_valid',
  uriSan: 'connection.uri_san_peer_certificate',
  subject: 'connection.subject_peer_certificate',
  sha256Digest: 'connection.sha256_peer_certificate_digest',
  peerCertificate: 'connection.peer_certificate',
  sourceAddress: 'source.address',
} as const);

const NOTHING = NO_CONNECTION_INFO;

function stringField(fields: Record<string, Value>, name: string): string | null {
  const v = fields[name];
  if (v?.kind !== 'stringValue') return null;
  return v.stringValue === '' ? null : v.stringValue;
}

function boolField(fields: Record<string, Value>, name: string): boolean | null {
  const v = fields[name];
  return v?.kind === 'boolValue' ? v.boolValue : null;
}

/** ConnectionInfo from a ProcessingRequest's `attributes`; missing fields are tolerated (absent = not known). */
export function connectionInfoFromAttributes(attrs: Record<string, Struct> | undefined): ConnectionInfo {
  const fields = attrs?.[EXT_PROC_ATTRIBUTES_KEY]?.fields;
  if (fields === undefined) return NOTHING;
  const A = CONNECTION_ATTRIBUTES;
  const sourceAddress = stringField(fields, A.sourceAddress);
  // connection.mtls only says a certificate was presented. The listener
  // validates every presented certificate, and peer_certificate_valid (when
  // requested) confirms it; an explicit false means "not verified".
  const mtls = boolField(fields, A.mtls) === true && boolField(fields, A.peerCertificateValid) !== false;
  if (!mtls) return sourceAddress === null ? NOTHING : Object.freeze({ ...NOTHING, sourceAddress });

  const subject = stringField(fields, A.subject);
  const firstUriSan = stringField(fields, A.uriSan);
  let sha256Digest = stringField(fields, A.sha256Digest)?.toLowerCase() ?? null;
  let uriSans: readonly string[] = firstUriSan === null ? [] : [firstUriSan];

  const pem = stringField(fields, A.peerCertificate);
  if (pem !== null) {
    const cert = parsePeerCertificate(pem);
    if (cert === null || (sha256Digest !== null && cert.sha256 !== sha256Digest) || (firstUriSan !== null && cert.uriSans[0] !== firstUriSan)) {
      // Envoy's attributes and the certificate disagree, or the certificate
      // cannot be read: no digest, so the certificate is refused.
      sha256Digest = null;
    } else {
      uriSans = cert.uriSans;
      sha256Digest ??= cert.sha256;
    }
  }
  return Object.freeze({ mtls: true, uriSans: Object.freeze([...uriSans]), subject, sha256Digest, sourceAddress });
}

// The peer certificate itself (ext_proc's connection.peer_certificate, ext_authz's source.certificate): src/shared/peer-certificate.ts.
export { parsePeerCertificate, parseSubjectAltName, rfc2253Subject, type AltName, type PeerCertificate } from '../../shared/peer-certificate.ts';
