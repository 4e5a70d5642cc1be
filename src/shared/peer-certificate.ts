/**
 * A TLS peer certificate as the gateway reads it: its URI SANs, its subject in
 * the RFC 2253 form Envoy prints, and its SHA-256 digest. Used for the
 * certificates Envoy hands the sidecar (ext_proc attributes, ext_authz peer)
 * and for the control plane's own HTTPS admin callers, so both map a
 * certificate to an identity from the same fields.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { BoundedCache } from './bounded-cache.ts';

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
