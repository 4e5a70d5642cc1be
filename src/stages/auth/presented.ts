/**
 * Which credentials a request presents, from its headers. Only shapes are
 * looked at here; verification is each method's job. A bearer token is an
 * API key when it has our key prefix and a JWT when it has three segments;
 * anything else is an opaque OAuth token where introspection is configured
 * (RFC 6750's b64token shape), and refused rather than ignored elsewhere.
 */
import { GatewayError } from '../../pipeline/errors.ts';
import { KEY_PREFIX } from '../../crypto/api-key-format.ts';

export interface PresentedCredentials {
  readonly apiKey: string | null;
  readonly jwt: string | null;
  /** An opaque access token for the introspection verifier. */
  readonly opaque: string | null;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** RFC 6750 § 2.1 b64token. */
const OPAQUE_SHAPE = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Far above any real token; the JWT verifier applies the configured (smaller) cap. */
const MAX_BEARER = 65_536;

export function presentedCredentials(authorization: string | undefined, xApiKey: string | undefined, acceptOpaque = false): PresentedCredentials {
  let apiKey: string | null = null;
  let jwt: string | null = null;
  let opaque: string | null = null;
  if (authorization !== undefined && authorization !== '') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    const token = m?.[1];
    if (token === undefined || token.length > MAX_BEARER) {
      throw new GatewayError('invalid_api_key', 'The authorization header must be "Bearer <API key or JWT>".');
    }
    if (token.startsWith(KEY_PREFIX)) apiKey = token;
    else if (JWT_SHAPE.test(token)) jwt = token;
    else if (acceptOpaque && OPAQUE_SHAPE.test(token)) opaque = token;
    else throw new GatewayError('invalid_api_key', 'The bearer credential is neither a gateway API key nor a JWT.');
  }
  if (xApiKey !== undefined && xApiKey !== '') {
    if (apiKey !== null) throw new GatewayError('invalid_api_key', 'Send the API key once: either authorization or x-api-key.');
    apiKey = xApiKey.trim();
  }
  return { apiKey, jwt, opaque };
}
