/**
 * The client connection as Envoy's ext_authz filter reports it: the
 * CheckRequest's `attributes.source` peer. Never taken from a header.
 *
 * What Envoy 1.40 sends (captured with envoy/ext-authz.yaml's settings,
 * `include_peer_certificate: true`):
 * - `source.address.socket_address` {address, port_value}, always;
 * - with a client certificate: `source.principal`, the FIRST URI SAN, or the
 *   subject in RFC 2253 form when there is no URI SAN; and
 *   `source.certificate`, the URL-encoded PEM of the client certificate.
 * There is no digest and no "validated" flag: the listener validates every
 * presented certificate, so a certificate here is a verified one. The URI
 * SANs, the subject (when principal is a URI) and the SHA-256 digest are
 * read from the certificate itself.
 *
 * Without `certificate` (include_peer_certificate off) only the principal is
 * known: the result then has no digest, and the mTLS verifier refuses it.
 */
import type { Address } from './proto/common.ts';
import type { CheckRequest } from './proto/ext-authz.ts';
import type { ConnectionInfo } from '../pipeline/identity.ts';
import { parsePeerCertificate } from './extproc/attributes.ts';

function addressString(addr: Address | undefined): string | null {
  if (addr?.address !== 'socket_address') return null;
  const sa = addr.socket_address;
  const host = sa.address;
  if (host === undefined || host === '') return null;
  const port = sa.port_specifier === 'port_value' ? sa.port_value : undefined;
  // Envoy's own text form (as in ext_proc's source.address): [v6]:port.
  const h = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

/** ConnectionInfo from an ext_authz CheckRequest's source peer; missing fields are tolerated. */
export function connectionInfoFromCheckRequest(req: CheckRequest): ConnectionInfo {
  const source = req.attributes?.source;
  const sourceAddress = addressString(source?.address);
  const principal = source?.principal === undefined || source.principal === '' ? null : source.principal;
  const certificate = source?.certificate === undefined || source.certificate === '' ? null : source.certificate;

  if (certificate === null) {
    if (principal === null) return Object.freeze({ mtls: false, uriSans: Object.freeze([]), subject: null, sha256Digest: null, sourceAddress });
    // A peer identity without the certificate: what it is cannot be checked
    // (no digest, no complete SAN list), so the verifier refuses it.
    const isUri = /^[a-z][a-z0-9+.-]*:\/\//i.test(principal);
    return Object.freeze({
      mtls: true,
      uriSans: Object.freeze(isUri ? [principal] : []),
      subject: isUri ? null : principal,
      sha256Digest: null,
      sourceAddress,
    });
  }

  const cert = parsePeerCertificate(certificate);
  // Envoy's principal is the certificate's first URI SAN when it has one.
  if (cert === null || (cert.uriSans.length > 0 && principal !== cert.uriSans[0])) {
    // Unreadable, or not the certificate the principal came from: no digest, refused.
    return Object.freeze({ mtls: true, uriSans: Object.freeze([]), subject: principal, sha256Digest: null, sourceAddress });
  }
  // With no URI SAN, Envoy's principal IS its RFC 2253 subject: prefer it.
  const subject = cert.uriSans.length === 0 && principal !== null ? principal : cert.subject;
  return Object.freeze({ mtls: true, uriSans: cert.uriSans, subject, sha256Digest: cert.sha256, sourceAddress });
}
