/**
 * The bearer-token verifiers a sidecar runs with, built from its config. JWT
 * verification and token introspection bring jose and an HTTP client: a
 * gateway without issuers of a kind gets a verifier that refuses as the real
 * one does when it has none, and never loads that code (idle memory, issue
 * #15). The Authenticator sees the same port either way.
 */
import type { AuthConfig } from '../../config/schema.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { IntrospectionVerifierPort, JwtVerifierPort } from './authenticate.ts';
import type { IntrospectionVerifierOptions } from './introspection.ts';
import type { JwtVerifierOptions } from './jwt.ts';

/** The refusal of a JWT where no JWT issuer is configured (the same from JwtVerifier with none). */
export const JWT_NOT_CONFIGURED = 'JWT authentication is not configured.';
/** The refusal of a token to introspect where no introspection issuer is configured. */
export const INTROSPECTION_NOT_CONFIGURED = 'OAuth token introspection is not configured.';

/** A verifier for a method with no issuers: disabled, and refusing anything it is asked to verify. */
function unconfigured(message: string): JwtVerifierPort & IntrospectionVerifierPort {
  return {
    enabled: false,
    verify: async () => {
      throw new GatewayError('invalid_token', message);
    },
  };
}

export async function createJwtVerifier(cfg: AuthConfig['jwt'], opts: JwtVerifierOptions = {}): Promise<JwtVerifierPort> {
  if (cfg.issuers.length === 0) return unconfigured(JWT_NOT_CONFIGURED);
  const { JwtVerifier } = await import('./jwt.ts');
  return new JwtVerifier(cfg, opts);
}

export async function createIntrospectionVerifier(
  cfg: AuthConfig['introspection'],
  opts: IntrospectionVerifierOptions = {},
): Promise<IntrospectionVerifierPort> {
  if (cfg.issuers.length === 0) return unconfigured(INTROSPECTION_NOT_CONFIGURED);
  const { IntrospectionVerifier } = await import('./introspection.ts');
  return new IntrospectionVerifier(cfg, opts);
}
