/**
 * The request target's query string. None of the APIs the gateway serves
 * takes a credential (or anything the model server needs) in the query, so
 * the gateway keeps the path only: the audit record and the upstream request
 * never see a query. A credential found there is refused outright: a URL is
 * copied into browser histories, proxy and server logs, so a key sent in one
 * must be treated as exposed, and the client must learn to use the header.
 */
import { GatewayError } from './errors.ts';

/** The request target split at its first `?` (a :path never holds a fragment). */
export function splitTarget(target: string): { readonly path: string; readonly query: string | null } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: null } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * Parameter names that carry credentials by convention, compared lower-case
 * with every character but letters and digits dropped (`api_key`, `api-key`
 * and `apiKey` are one name): `key` (Google-style API keys), `access_token`
 * (OAuth 2.0 bearer tokens in a URI, RFC 6750 §2.3), and the spellings of our
 * own headers. Names like `page_token` are pagination cursors, not
 * credentials, so a `…token` suffix alone is not enough.
 */
const CREDENTIAL_NAMES: ReadonlySet<string> = new Set([
  'key',
  'apikey',
  'token',
  'accesstoken',
  'authtoken',
  'idtoken',
  'bearer',
  'jwt',
  'auth',
  'authorization',
  'proxyauthorization',
  'secret',
  'clientsecret',
  'password',
]);
/** Any `…api_key` name (`x-api-key`, `openai_api_key`) is a key, whatever its prefix. */
const API_KEY_SUFFIX = 'apikey';
/**
 * What a credential looks like whatever the parameter is called: a gateway
 * API key (src/crypto/api-key-format.ts: `igw_` + its 8-character id; a test
 * keeps the prefix equal) anywhere in a name or value, or a whole value that
 * is a JWT (a base64url JSON header `eyJ…` and two more segments), bare or
 * after "Bearer". The key pattern has a fixed length and the JWT one is
 * anchored, so both stay linear in the (attacker-sized) query.
 */
export const GATEWAY_KEY_PREFIX = 'igw_';
const CREDENTIAL_VALUES: readonly RegExp[] = [
  new RegExp(`${GATEWAY_KEY_PREFIX}[0-9A-Za-z]{8}`),
  /^(?:[Bb]earer\s+)?eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/,
];
/** A parameter name echoed in the error is bounded (it is the client's text). */
const MAX_ECHO = 64;

/**
 * Refuses a query that carries a credential: 400 credential_in_query naming
 * the parameter. Checked before authentication, so it applies whether or not
 * the request also sends a valid header.
 */
export function refuseQueryCredentials(query: string | null): void {
  if (query === null || query === '') return;
  // `;` separates parameters for some servers too; an empty piece is skipped.
  for (const piece of query.split(/[&;]/)) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = decode(eq === -1 ? piece : piece.slice(0, eq));
    const value = eq === -1 ? '' : decode(piece.slice(eq + 1));
    const normalized = name.toLowerCase().replace(/[^a-z0-9]/g, '');
    const nameIsCredential = looksLikeCredential(name);
    if (nameIsCredential || CREDENTIAL_NAMES.has(normalized) || normalized.endsWith(API_KEY_SUFFIX) || looksLikeCredential(value)) {
      // A name that is itself a key is not echoed back.
      const where = nameIsCredential ? 'as a parameter name' : `(parameter '${name.length > MAX_ECHO ? `${name.slice(0, MAX_ECHO)}…` : name}')`;
      throw new GatewayError(
        'credential_in_query',
        `A credential was sent in the URL query string ${where}, where URLs are logged and cached; it is refused. ` +
          'Send it in a header instead: "Authorization: Bearer <API key or token>" (or "x-api-key: <API key>"), ' +
          'and treat a key that was sent in a URL as exposed: rotate it.',
      );
    }
  }
}

function looksLikeCredential(s: string): boolean {
  return CREDENTIAL_VALUES.some((re) => re.test(s));
}

/** application/x-www-form-urlencoded decoding; a malformed escape is read as it stands. */
function decode(s: string): string {
  const plus = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
