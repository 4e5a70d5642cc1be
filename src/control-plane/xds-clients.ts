/**
 * Which Envoys may take clusters from the xDS server over mTLS
 * (`xds.tls.allowedClients`): a verified client certificate is allowed when
 * its SPIFFE ID — its one URI SAN, well formed — matches an entry (exactly,
 * or under a `spiffe://…/*` prefix), or when its RFC 2253 subject equals one.
 * A certificate with several URI SANs is matched by subject only: which of
 * its IDs it speaks for is ambiguous (the sidecar's and the admin API's mTLS
 * rules refuse it for the same reason).
 */
import type { PeerCertificate } from '../shared/peer-certificate.ts';
import { parseSpiffeId } from '../stages/auth/mtls.ts';

export type AllowedXdsClient = { readonly spiffeId: string; readonly subject?: undefined } | { readonly subject: string; readonly spiffeId?: undefined };

/** The config's entries (its schema requires exactly one of the two in each) in the union's form. */
export function allowedXdsClients(
  entries: ReadonlyArray<{ readonly spiffeId?: string | undefined; readonly subject?: string | undefined }>,
): AllowedXdsClient[] {
  return entries.map((e, i) => {
    if (e.spiffeId !== undefined) return { spiffeId: e.spiffeId };
    if (e.subject !== undefined) return { subject: e.subject };
    throw new Error(`xds.tls.allowedClients[${i}] sets neither spiffeId nor subject`);
  });
}

/** The entry that allows `cert` (as it is written in the config), or null. */
export type XdsClientCheck = (cert: PeerCertificate) => string | null;

export function xdsClientCheck(allowed: readonly AllowedXdsClient[]): XdsClientCheck {
  return (cert) => {
    const only = cert.uriSans.length === 1 ? cert.uriSans[0] : undefined;
    const spiffe = only === undefined ? null : parseSpiffeId(only);
    for (const a of allowed) {
      if (a.spiffeId !== undefined) {
        if (spiffe === null) continue;
        const matches = a.spiffeId.endsWith('/*') ? spiffe.id.startsWith(a.spiffeId.slice(0, -1)) : spiffe.id === a.spiffeId;
        if (matches) return a.spiffeId;
      } else if (cert.subject !== null && cert.subject === a.subject) return a.subject;
    }
    return null;
  };
}
