/**
 * Who may call the admin API: a bearer JWT verified exactly as the sidecar
 * verifies client tokens (src/stages/auth/jwt.ts: a configured issuer, its
 * JWKS, audience, expiry, algorithm allowlist), whose roles — the claim the
 * issuer's `claims.roles` names, `roles` by default; set it to `scope` for
 * OAuth scopes — include the read or the write role. Write implies read.
 */
import type { ControlPlaneConfig } from './config.ts';
import { JwtVerifier } from '../stages/auth/jwt.ts';
import { GatewayError } from '../pipeline/errors.ts';
import { ApiError } from './errors.ts';
import type { AdminActor } from './audit.ts';

export type Access = 'read' | 'write';

export class AdminAuth {
  readonly #jwt: JwtVerifier;
  readonly #readRole: string;
  readonly #writeRole: string;

  constructor(cfg: ControlPlaneConfig['auth']) {
    if (cfg.jwt === undefined) throw new Error('auth.jwt is required');
    this.#jwt = new JwtVerifier(cfg.jwt);
    this.#readRole = cfg.readRole;
    this.#writeRole = cfg.writeRole;
  }

  /** The verified caller; throws 401 (no or bad token) or 503 (issuer keys unavailable). */
  async authenticate(authorization: string | undefined): Promise<AdminActor> {
    const m = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
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

  /** Throws 403 unless the caller holds a role that grants `access`. */
  authorize(actor: AdminActor, access: Access): void {
    const ok = access === 'write' ? actor.roles.includes(this.#writeRole) : actor.roles.includes(this.#readRole) || actor.roles.includes(this.#writeRole);
    if (!ok) {
      const need = access === 'write' ? this.#writeRole : `${this.#readRole} or ${this.#writeRole}`;
      throw new ApiError(403, 'forbidden', `this call needs the ${need} role; the token has ${actor.roles.length === 0 ? 'none' : actor.roles.join(', ')}`);
    }
  }
}
