/**
 * The authentication stage: finds the credentials a request presents, has
 * each verified by its method (in parallel), and combines them into one
 * Identity. Verifiers are small ports so each method stays in its module.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { ConnectionInfo, Credential } from '../../pipeline/identity.ts';
import type { Identity } from '../../pipeline/identity.ts';
import type { Authenticate, CredentialHeaders } from '../../pipeline/ports.ts';
import { combineCredentials, type AuthRequirement } from './identity.ts';
import { presentedCredentials } from './presented.ts';

export interface ApiKeyVerifierPort {
  verify(key: string): Promise<Credential>;
}
export interface JwtVerifierPort {
  readonly enabled: boolean;
  verify(token: string): Promise<Credential>;
}
export interface IntrospectionVerifierPort {
  readonly enabled: boolean;
  verify(token: string): Promise<Credential>;
}
export interface MtlsVerifierPort {
  readonly enabled: boolean;
  /** null when the connection carries no client certificate. */
  verify(conn: ConnectionInfo): Credential | null;
}

export interface Verifiers {
  readonly apiKeys: ApiKeyVerifierPort;
  readonly jwt: JwtVerifierPort;
  readonly introspection: IntrospectionVerifierPort;
  readonly mtls: MtlsVerifierPort;
}

export type { CredentialHeaders };

export class Authenticator implements Authenticate {
  readonly #v: Verifiers;
  readonly #requirements: readonly AuthRequirement[];

  constructor(verifiers: Verifiers, requirements: readonly AuthRequirement[]) {
    this.#v = verifiers;
    this.#requirements = requirements;
  }

  async authenticate(headers: CredentialHeaders, conn: ConnectionInfo, endpoint: Endpoint | null): Promise<Identity> {
    const presented = presentedCredentials(headers.authorization, headers.xApiKey, this.#v.introspection.enabled);
    const pending: Array<Promise<Credential>> = [];
    if (presented.apiKey !== null) pending.push(this.#v.apiKeys.verify(presented.apiKey));
    if (presented.jwt !== null) {
      // A JWT-shaped token is verified locally where JWT issuers are configured; elsewhere it is an access token to introspect.
      if (this.#v.jwt.enabled) pending.push(this.#v.jwt.verify(presented.jwt));
      else if (this.#v.introspection.enabled) pending.push(this.#v.introspection.verify(presented.jwt));
      else throw new GatewayError('invalid_token', 'Bearer JWTs are not accepted by this gateway.');
    }
    if (presented.opaque !== null) pending.push(this.#v.introspection.verify(presented.opaque));
    const credentials = await Promise.all(pending);
    // mTLS is checked only where configured; elsewhere a client certificate carries no identity.
    if (this.#v.mtls.enabled) {
      const workload = this.#v.mtls.verify(conn);
      if (workload !== null) credentials.push(workload);
    }
    return combineCredentials(credentials, endpoint, this.#requirements);
  }
}
