/**
 * One RFC 7662 call: POST the token to an issuer's introspection endpoint,
 * authenticated as the configured OAuth client, and return the answer's
 * members. Client authentication: client_secret_basic / client_secret_post
 * (RFC 6749 § 2.3.1), private_key_jwt (RFC 7523, a fresh assertion per
 * call) or tls_client_auth (RFC 8705, our certificate on the connection).
 * When the issuer signs its answers (RFC 9701) they are asked for and
 * verified against its JWKS; an unsigned or badly signed answer is then a
 * failure, never a fallback to trust.
 *
 * Anything that is not a well-formed answer (refused connection, timeout,
 * non-200, garbage, bad signature) throws IdpUnavailable: the caller maps it
 * to 503 and never to acceptance. node:http(s) rather than fetch, because
 * fetch cannot present a client certificate without a dependency.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { createRemoteJWKSet, importPKCS8, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import type { IntrospectionIssuerConfig } from '../../config/schema.ts';
import { errorMessage } from '../../shared/values.ts';
import type { Claims } from './claims.ts';

/** The issuer could not give a usable answer; the token's state is unknown. */
export class IdpUnavailable extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'IdpUnavailable';
  }
}

const MAX_ANSWER_BYTES = 64 * 1024;
/** A client assertion lives this long (RFC 7523 asks for a short exp; the IdP remembers its jti until then). */
const ASSERTION_TTL_SECONDS = 60;
const SIGNED = 'application/token-introspection+jwt';
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

export type Introspect = (token: string) => Promise<Claims>;

function endpointUrl(cfg: IntrospectionIssuerConfig, uri: string, what: string): URL {
  const url = new URL(uri);
  if (url.username !== '' || url.password !== '') throw new Error(`auth.introspection: issuer ${cfg.issuer}: ${what} must not contain credentials`);
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) return url;
  throw new Error(`auth.introspection: issuer ${cfg.issuer}: ${what} must be https (http only on 127.0.0.1, localhost or [::1])`);
}

function readSecretFile(cfg: IntrospectionIssuerConfig, path: string): string {
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret === '') throw new Error('empty');
    return secret;
  } catch (err) {
    throw new Error(`auth.introspection: issuer ${cfg.issuer}: cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** What each call adds to the form and the headers to authenticate the gateway as the issuer's client. */
type ClientAuth = () => Promise<{ readonly form: Record<string, string>; readonly headers: Record<string, string> }>;

function clientAuth(cfg: IntrospectionIssuerConfig, now: () => number): { auth: ClientAuth; tls: Pick<RequestOptions, 'cert' | 'key' | 'ca'> } {
  const c = cfg.client;
  switch (c.method) {
    case 'client_secret_basic': {
      const secret = readSecretFile(cfg, c.secretFile);
      // RFC 6749 § 2.3.1: both parts are form-encoded before base64.
      const basic = Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(secret)}`).toString('base64');
      return { auth: () => Promise.resolve({ form: {}, headers: { authorization: `Basic ${basic}` } }), tls: {} };
    }
    case 'client_secret_post': {
      const secret = readSecretFile(cfg, c.secretFile);
      return { auth: () => Promise.resolve({ form: { client_id: c.id, client_secret: secret }, headers: {} }), tls: {} };
    }
    case 'private_key_jwt': {
      const pem = readSecretFile(cfg, c.privateKeyFile);
      let key: Promise<CryptoKey> | null = null;
      return {
        auth: async () => {
          key ??= importPKCS8(pem, c.algorithm);
          const iat = Math.floor(now() / 1000);
          const assertion = await new SignJWT({})
            .setProtectedHeader({ alg: c.algorithm, ...(c.keyId === undefined ? {} : { kid: c.keyId }) })
            .setIssuer(c.id)
            .setSubject(c.id)
            .setAudience(cfg.issuer)
            .setJti(randomUUID())
            .setIssuedAt(iat)
            .setExpirationTime(iat + ASSERTION_TTL_SECONDS)
            .sign(await key);
          return {
            form: { client_id: c.id, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion },
            headers: {},
          };
        },
        tls: {},
      };
    }
    case 'tls_client_auth':
      return {
        auth: () => Promise.resolve({ form: { client_id: c.id }, headers: {} }),
        tls: {
          cert: readSecretFile(cfg, c.certFile),
          key: readSecretFile(cfg, c.keyFile),
          ...(c.caFile === undefined ? {} : { ca: readSecretFile(cfg, c.caFile) }),
        },
      };
  }
}

function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  tls: Pick<RequestOptions, 'cert' | 'key' | 'ca'>,
  timeoutMs: number,
): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
        ...(url.protocol === 'https:' ? tls : {}),
        timeout: timeoutMs,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > MAX_ANSWER_BYTES) {
            res.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    // `timeout` is idle time; the whole call is bounded as well so a trickling IdP cannot hold a request.
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('close', () => clearTimeout(deadline));
    req.end(body);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function introspectionClient(cfg: IntrospectionIssuerConfig, now: () => number = Date.now): Introspect {
  const url = endpointUrl(cfg, cfg.introspectionUri, 'introspectionUri');
  const { auth, tls } = clientAuth(cfg, now);
  const signed = cfg.signedResponse;
  const jwks = signed === undefined ? null : createRemoteJWKSet(endpointUrl(cfg, signed.jwksUri, 'signedResponse.jwksUri'), { timeoutDuration: cfg.timeoutMs });

  const answer = async (status: number, type: string, text: string): Promise<Claims> => {
    if (status !== 200) throw new IdpUnavailable(`introspection endpoint answered HTTP ${status}`);
    if (jwks !== null && signed !== undefined) {
      if (!type.toLowerCase().startsWith(SIGNED)) throw new IdpUnavailable(`introspection answer is not signed (${type || 'no content-type'})`);
      try {
        const { payload } = await jwtVerify(text.trim(), jwks, {
          issuer: cfg.issuer,
          // RFC 9701 addresses the answer to the resource server: by its client id, or (as some IdPs do) by the token's audience.
          audience: [cfg.client.id, ...cfg.audiences],
          algorithms: signed.algorithms,
          typ: 'token-introspection+jwt',
          currentDate: new Date(now()),
        });
        const inner: unknown = payload['token_introspection'];
        if (!isObject(inner)) throw new Error('no token_introspection member');
        return inner;
      } catch (err) {
        throw new IdpUnavailable(`signed introspection answer does not verify: ${errorMessage(err)}`, { cause: err });
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new IdpUnavailable('introspection answer is not JSON', { cause: err });
    }
    if (!isObject(json)) throw new IdpUnavailable('introspection answer is not a JSON object');
    return json;
  };

  return async (token) => {
    const { form, headers } = await auth();
    const body = new URLSearchParams({ token, token_type_hint: 'access_token', ...form }).toString();
    let res: { status: number; type: string; text: string };
    try {
      res = await post(url, body, { ...headers, accept: jwks === null ? 'application/json' : SIGNED }, tls, cfg.timeoutMs);
    } catch (err) {
      throw new IdpUnavailable(`introspection call failed: ${errorMessage(err)}`, { cause: err });
    }
    return answer(res.status, res.type, res.text);
  };
}
