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
 * The PEM helpers are shared with the ext_authz path (ext-authz-peer.ts).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { Struct, Value } from '../proto/common.ts';
import { NO_CONNECTION_INFO } from '../../pipeline/identity.ts';
import type { ConnectionInfo } from '../../pipeline/identity.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';

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

// ---------------------------------------------------------------------------
// The peer certificate itself (ext_proc's connection.peer_certificate, ext_authz's source.certificate)
// ---------------------------------------------------------------------------

export interface PeerCertificate {
  /** Every URI SAN, in certificate order. */
  readonly uriSans: readonly string[];
  /** The subject in RFC 2253 form, as Envoy prints it (see rfc2253Subject). */
  readonly subject: string | null;
  /** SHA-256 of the DER certificate, lower-case hex (Envoy's sha256_peer_certificate_digest). */
  readonly sha256: string;
}

const CACHE_MAX = 512;
const cache = new BoundedCache<string, PeerCertificate | null>(CACHE_MAX);

/**
 * Parses a peer certificate as Envoy hands it over: plain PEM (ext_proc's
 * `connection.peer_certificate` in 1.40) or URL-encoded PEM (ext_authz's
 * `source.certificate`, XFCC's Cert). Returns null when it is not one
 * readable certificate. Results are cached per distinct text.
 */
export function parsePeerCertificate(text: string): PeerCertificate | null {
  // Parsing is a pure function of the text: entries never expire (time 0 is as good as any).
  const hit = cache.get(text, 0);
  if (hit !== undefined) return hit;
  const parsed = parseUncached(text);
  cache.set(text, parsed);
  return parsed;
}

function parseUncached(text: string): PeerCertificate | null {
  let pem = text;
  // A PEM never contains '%'; URL-encoded PEM always does ("%20", "%0A").
  if (pem.includes('%')) {
    try {
      pem = decodeURIComponent(pem);
    } catch {
      return null;
    }
  }
  if (!pem.trimStart().startsWith('-----BEGIN CERTIFICATE-----')) return null;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    return null;
  }
  const sans = x509.subjectAltName === undefined ? [] : parseSubjectAltName(x509.subjectAltName);
  if (sans === null) return null;
  return Object.freeze({
    uriSans: Object.freeze(sans.filter((s) => s.type === 'URI').map((s) => s.value)),
    subject: x509.subject === '' ? null : rfc2253Subject(x509.subject),
    sha256: createHash('sha256').update(x509.raw).digest('hex'),
  });
}

export interface AltName {
  /** Node's label: "URI", "DNS", "IP Address", "email", ... */
  readonly type: string;
  readonly value: string;
}

/**
 * Splits Node's X509Certificate.subjectAltName text
 * (`URI:spiffe://a/b, DNS:x, IP Address:127.0.0.1`). Node prints a value
 * that contains a comma, quote, backslash or control character as a JSON
 * string (`URI:"spiffe://a,b"`), so the list splits unambiguously.
 * Returns null on anything that does not follow that format.
 */
export function parseSubjectAltName(text: string): AltName[] | null {
  const out: AltName[] = [];
  if (text === '') return out;
  let i = 0;
  for (;;) {
    const colon = text.indexOf(':', i);
    if (colon <= i) return null;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      if (k >= text.length) return null;
      try {
        const v: unknown = JSON.parse(text.slice(j, k + 1));
        if (typeof v !== 'string') return null;
        value = v;
      } catch {
        return null;
      }
      j = k + 1;
    } else {
      const end = text.indexOf(', ', j);
      const stop = end === -1 ? text.length : end;
      value = text.slice(j, stop);
      // Node quotes any value with these characters: unquoted, they mean a format we do not know.
      if (/[,"\\]/.test(value)) return null;
      j = stop;
    }
    out.push({ type, value });
    if (j === text.length) return out;
    if (!text.startsWith(', ', j)) return null;
    i = j + 2;
  }
}

/**
 * Node's subject text (one RDN per line, most significant first, multi-valued
 * RDNs joined by " + ", RFC 2253 escaping except that UTF-8 is kept) in the
 * RFC 2253 form Envoy reports: RDNs in reverse order joined by ",", the
 * attributes of a multi-valued RDN reversed and joined by "+", bytes above
 * 0x7F escaped as \XX (OpenSSL's XN_FLAG_RFC2253 with ESC_MSB).
 */
export function rfc2253Subject(nodeSubject: string): string {
  const entries: string[][] = nodeSubject.split('\n').map((line) => splitUnescaped(line, ' + '));
  return entries
    .reverse()
    .map((rdn) => rdn.reverse().map(escapeMsb).join('+'))
    .join(',');
}

function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      i++;
      continue;
    }
    if (s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      i += sep.length - 1;
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function escapeMsb(s: string): string {
  if (/^\p{ASCII}*$/u.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte > 0x7f ? `\\${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}
