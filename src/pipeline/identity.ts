/**
 * Who is calling: what each authentication method yields (a Credential,
 * which exists only once verified — there is no "unverified" or anonymous
 * variant) and the one Identity they combine into (src/stages/auth).
 */
import type { Endpoint } from './endpoint.ts';

export type AuthMethod = 'api_key' | 'jwt' | 'introspection' | 'mtls';

/** An allowlist; `'*'` allows everything. */
export type Allow<T> = ReadonlySet<T> | '*';

/** The authorization context a credential carries (from key records, JWT claims or the mTLS mapping). */
export interface Grants {
  readonly org: string | null;
  readonly tenant: string | null;
  readonly tier: string | null;
  readonly roles: readonly string[];
  readonly models: Allow<string>;
  readonly endpoints: Allow<Endpoint>;
}

export type Credential =
  | (Grants & {
      readonly method: 'api_key';
      readonly principal: string;
      /** The key's public id: the only part ever logged. */
      readonly keyId: string;
    })
  | (Grants & {
      readonly method: 'jwt';
      readonly principal: string;
      readonly issuer: string;
      readonly subject: string;
    })
  | (Grants & {
      /** An opaque (or any) OAuth access token, declared active by its issuer's RFC 7662 endpoint. */
      readonly method: 'introspection';
      readonly principal: string;
      readonly issuer: string;
      /** `sub`, else `client_id` (client-credentials tokens have no user). */
      readonly subject: string;
    })
  | (Grants & {
      readonly method: 'mtls';
      readonly principal: string;
      /** The single SPIFFE URI SAN, when the certificate has one. */
      readonly spiffeId: string | null;
      readonly certSubject: string | null;
      /** SHA-256 of the client certificate (hex), as Envoy reports it. */
      readonly certDigest: string;
    });

/**
 * What Envoy says about the client connection (ext_proc `request_attributes`,
 * or ext_authz's peer). Never taken from a client-sent header.
 */
export interface ConnectionInfo {
  readonly mtls: boolean;
  /** URI SANs of the verified client certificate (Envoy joins several with ','). */
  readonly uriSans: readonly string[];
  readonly subject: string | null;
  readonly sha256Digest: string | null;
  readonly sourceAddress: string | null;
}

export const NO_CONNECTION_INFO: ConnectionInfo = Object.freeze({ mtls: false, uriSans: [], subject: null, sha256Digest: null, sourceAddress: null });

export interface Identity {
  /** The verified methods, in precedence order; never empty. */
  readonly methods: readonly AuthMethod[];
  readonly principal: string;
  readonly org: string;
  readonly tenant: string;
  readonly tier: string;
  readonly roles: readonly string[];
  readonly models: Allow<string>;
  readonly endpoints: Allow<Endpoint>;
  /** Loggable references to each credential (never the secret). */
  readonly keyId: string | null;
  readonly jwt: { readonly issuer: string; readonly subject: string } | null;
  /** The introspected token's issuer and subject (never the token). */
  readonly introspection: { readonly issuer: string; readonly subject: string } | null;
  readonly mtls: { readonly spiffeId: string | null; readonly subject: string | null; readonly certDigest: string } | null;
}

export function allows<T>(allow: Allow<T>, value: T): boolean {
  return allow === '*' || allow.has(value);
}
