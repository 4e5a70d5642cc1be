/**
 * Who may call the admin API:
 * - a bearer JWT verified exactly as the sidecar verifies client tokens
 *   (src/stages/auth/jwt.ts: a configured issuer, its JWKS, audience, expiry,
 *   algorithm allowlist), whose roles — the claim the issuer's `claims.roles`
 *   names, `roles` by default; set it to `scope` for OAuth scopes — include
 *   the read or the write role;
 * - or, over HTTPS (listen.tls), a client certificate the TLS handshake
 *   verified against listen.tls.clientCaFile, mapped to a principal and its
 *   roles by auth.mtls with the sidecar's own rules (src/stages/auth/mtls.ts:
 *   one URI SAN at most, a well-formed SPIFFE ID in an accepted trust domain,
 *   exact ID, longest `/*` prefix, then subject; anything unmapped refused).
 * A bearer token, when sent, is the credential even if a certificate is
 * presented too. Write implies read.
 */
import type { TLSSocket } from 'node:tls';
import type { ControlPlaneConfig } from './config.ts';
import { JwtVerifier } from '../stages/auth/jwt.ts';
import { MtlsVerifier, parseSpiffeId } from '../stages/auth/mtls.ts';
import { parsePeerCertificate } from '../shared/peer-certificate.ts';
import { GatewayError } from '../pipeline/errors.ts';
import { ApiError } from './errors.ts';
import type { AdminActor } from './audit.ts';

export type Access = 'read' | 'write';

/** What the server hands over about a request: its authorization header and, over HTTPS, its TLS socket. */
export interface AdminCredentials {
  readonly authorization: string | undefined;
  readonly tls: TLSSocket | null;
}

type AdminMtlsConfig = NonNullable<ControlPlaneConfig['auth']['mtls']>;

/**
 * The sidecar's verifier over the admin mappings. Its identities carry grants (org, tenant, models…) that mean
 * nothing to the admin API: they are filled with placeholders here and only principal and roles are read back.
 */
function mtlsVerifier(cfg: AdminMtlsConfig): MtlsVerifier {
  const domains =
    cfg.trustDomains ??
    cfg.identities.flatMap((m) => {
      if (m.spiffeId === undefined) return [];
      const parsed = parseSpiffeId(m.spiffeId.endsWith('/*') ? m.spiffeId.slice(0, -2) : m.spiffeId);
      return parsed === null ? [] : [parsed.trustDomain];
    });
  return new MtlsVerifier({
    trustDomains: [...new Set(domains)],
    identities: cfg.identities.map((m) => ({
      ...(m.spiffeId === undefined ? {} : { spiffeId: m.spiffeId }),
      ...(m.subject === undefined ? {} : { subject: m.subject }),
      principal: m.principal,
      roles: [...m.roles],
      org: 'admin',
      tenant: 'admin',
      tier: 'admin',
      models: [],
      endpoints: [],
    })),
  });
}

export class AdminAuth {
  readonly #jwt: JwtVerifier | null;
  readonly #mtls: MtlsVerifier | null;
  readonly #readRole: string;
  readonly #writeRole: string;

  /** Throws on a mapping the sidecar's rules refuse (a malformed SPIFFE ID, one mapped twice): the config is wrong. */
  constructor(cfg: ControlPlaneConfig['auth']) {
    if (cfg.jwt === undefined && cfg.mtls === undefined) throw new Error('auth.jwt or auth.mtls is required');
    this.#jwt = cfg.jwt === undefined ? null : new JwtVerifier(cfg.jwt);
    this.#mtls = cfg.mtls === undefined ? null : mtlsVerifier(cfg.mtls);
    this.#readRole = cfg.readRole;
    this.#writeRole = cfg.writeRole;
  }

  /** The verified caller; throws 401 (no or bad credential) or 503 (issuer keys unavailable). */
  async authenticate(c: AdminCredentials): Promise<AdminActor> {
    if (c.authorization !== undefined && c.authorization !== '') return this.#bearer(c.authorization);
    const cert = this.#certificate(c.tls);
    if (cert !== null) return cert;
    const ways = [...(this.#jwt === null ? [] : ['a bearer JWT in the authorization header']), ...(this.#mtls === null ? [] : ['a client certificate'])];
    throw new ApiError(401, 'unauthenticated', `send ${ways.join(' or ')}`);
  }

  async #bearer(authorization: string): Promise<AdminActor> {
    if (this.#jwt === null) throw new ApiError(401, 'unauthenticated', 'bearer tokens are not accepted here: authenticate with a client certificate');
    const m = /^Bearer ([^\s]+)$/i.exec(authorization);
    if (m === null || m[1] === undefined) throw new ApiError(401, 'unauthenticated', 'send a bearer JWT in the authorization header');
    try {
      const c = await this.#jwt.verify(m[1]);
      return { method: 'jwt', principal: c.principal, issuer: c.issuer, subject: c.subject, roles: [...c.roles] };
    } catch (err) {
      if (err instanceof GatewayError) {
        if (err.code === 'authentication_unavailable') throw new ApiError(503, 'authentication_unavailable', err.message);
        throw new ApiError(401, 'invalid_token', err.message);
      }
      throw err;
    }
  }

  /** null: no client certificate was presented (or mTLS is not configured). */
  #certificate(tls: TLSSocket | null): AdminActor | null {
    if (this.#mtls === null || tls === null) return null;
    const peer = tls.getPeerCertificate();
    if (peer.raw === undefined) return null;
    // Presented but not verified against listen.tls.clientCaFile (possible when the certificate is optional).
    if (!tls.authorized) throw new ApiError(401, 'untrusted_client_certificate', 'the client certificate is not signed by a trusted CA');
    const pem = `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const parsed = parsePeerCertificate(pem);
    if (parsed === null) throw new ApiError(401, 'untrusted_client_certificate', 'the client certificate cannot be read');
    try {
      const cred = this.#mtls.verify({ mtls: true, uriSans: parsed.uriSans, subject: parsed.subject, sha256Digest: parsed.sha256, sourceAddress: null });
      if (cred === null) return null;
      return {
        method: 'mtls',
        principal: cred.principal,
        spiffeId: cred.spiffeId,
        subject: cred.certSubject,
        certDigest: cred.certDigest,
        roles: [...cred.roles],
      };
    } catch (err) {
      if (err instanceof GatewayError) throw new ApiError(401, 'untrusted_client_certificate', err.message);
      throw err;
    }
  }

  /** Throws 403 unless the caller holds a role that grants `access`. */
  authorize(actor: AdminActor, access: Access): void {
    const ok = access === 'write' ? actor.roles.includes(this.#writeRole) : actor.roles.includes(this.#readRole) || actor.roles.includes(this.#writeRole);
    if (!ok) {
      const need = access === 'write' ? this.#writeRole : `${this.#readRole} or ${this.#writeRole}`;
      const what = actor.method === 'jwt' ? 'token' : 'certificate';
      throw new ApiError(403, 'forbidden', `this call needs the ${need} role; the ${what} has ${actor.roles.length === 0 ? 'none' : actor.roles.join(', ')}`);
    }
  }
}
