/**
 * JWT test kit: key pairs, a JWKS server on loopback that can be broken on
 * purpose, token minting, and the classic attack tokens (alg none, HS256
 * signed with the RSA public key, tampered payload, oversized token).
 * Used by the unit tests and by the end-to-end tests through Envoy.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK, JWTPayload } from 'jose';
import { unusedPort } from './ports.ts';

export type SigningAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

export interface TestKeyPair {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** Public JWK with kid, alg and use: what a JWKS publishes. */
  readonly publicJwk: JWK;
  /** SPKI PEM of the public key (the secret of the classic HS256 confusion attack). */
  readonly publicPem: string;
}

export async function makeKeyPair(alg: SigningAlg = 'RS256', kid: string = `k-${randomBytes(6).toString('hex')}`): Promise<TestKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/** A key as a JWKS publishes it: a test key pair, or a raw JWK (e.g. without kid). */
export type PublishedKey = TestKeyPair | JWK;

export function jwksOf(keys: readonly PublishedKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => ('publicJwk' in k ? k.publicJwk : k)) };
}

/** Writes a JWKS file; `atomic` renames a temp file over it (inode changes, like a Kubernetes Secret update). */
export function writeJwksFile(path: string, keys: readonly PublishedKey[], opts: { atomic?: boolean } = {}): void {
  const text = JSON.stringify(jwksOf(keys));
  if (opts.atomic === true) {
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } else {
    writeFileSync(path, text);
  }
}

/** ok: serve the JWKS; error: HTTP 500; hang: never answer; garbage: 200 with a non-JSON body; not_jwks: 200 with JSON that is no JWK set. */
export type JwksServerMode = 'ok' | 'error' | 'hang' | 'garbage' | 'not_jwks';

export interface JwksServer {
  /** Full JWKS URL (http://127.0.0.1:port/path). */
  readonly url: string;
  readonly path: string;
  /** Requests received so far (any path, any mode). */
  readonly requests: number;
  /** Request paths seen, in order. */
  readonly paths: readonly string[];
  mode: JwksServerMode;
  /** Rotate: publish these keys from now on. */
  setKeys(keys: readonly PublishedKey[]): void;
  resetCount(): void;
  close(): Promise<void>;
}

export async function startJwksServer(opts: { keys: readonly PublishedKey[]; path?: string; mode?: JwksServerMode }): Promise<JwksServer> {
  const path = opts.path ?? '/.well-known/jwks.json';
  let body = JSON.stringify(jwksOf(opts.keys));
  let requests = 0;
  const paths: string[] = [];
  const hung = new Set<ServerResponse>();
  const state: { mode: JwksServerMode } = { mode: opts.mode ?? 'ok' };

  const server = createServer((req, res) => {
    requests++;
    paths.push(req.url ?? '');
    if (state.mode === 'hang') {
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    if (req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    switch (state.mode) {
      case 'error':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>{{{ not json');
        return;
      case 'not_jwks':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "nope"}');
        return;
      default:
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${path}`,
    path,
    get requests() {
      return requests;
    },
    get paths() {
      return paths;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: JwksServerMode) {
      state.mode = m;
    },
    setKeys(keys) {
      body = JSON.stringify(jwksOf(keys));
    },
    resetCount() {
      requests = 0;
      paths.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL nothing listens on (connection refused). */
export async function unusedLoopbackUrl(path = '/.well-known/jwks.json'): Promise<string> {
  return `http://127.0.0.1:${await unusedPort()}${path}`;
}

/** Registered claims for a token valid for `ttlSeconds` from `nowMs` (epoch ms, e.g. the verifier's injected clock). */
export function standardClaims(
  opts: { iss: string; aud: string | string[]; sub?: string; nowMs: number; ttlSeconds?: number },
  extra: JWTPayload = {},
): JWTPayload {
  const now = Math.floor(opts.nowMs / 1000);
  return { iss: opts.iss, aud: opts.aud, sub: opts.sub ?? 'alice', iat: now, exp: now + (opts.ttlSeconds ?? 300), ...extra };
}

/** A properly signed token. `header` overrides protected header fields (kid: null leaves it out). */
export async function mintToken(opts: {
  privateKey: CryptoKey;
  alg: SigningAlg;
  kid?: string | null;
  claims: JWTPayload;
  header?: Record<string, unknown>;
}): Promise<string> {
  const header: Record<string, unknown> = { typ: 'JWT', ...opts.header };
  if (opts.kid !== null && opts.kid !== undefined) header.kid = opts.kid;
  // The real algorithm always wins: SignJWT signs with the header's alg.
  return new SignJWT(opts.claims).setProtectedHeader({ ...header, alg: opts.alg }).sign(opts.privateKey);
}

export function mintFor(pair: TestKeyPair, claims: JWTPayload, header?: Record<string, unknown>): Promise<string> {
  return mintToken({ privateKey: pair.privateKey, alg: pair.alg, kid: pair.kid, claims, ...(header === undefined ? {} : { header }) });
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** `alg: none` (any spelling) with an empty signature, or a junk one. */
export function unsignedToken(claims: JWTPayload, opts: { alg?: string; kid?: string; signature?: string } = {}): string {
  const header: Record<string, unknown> = { alg: opts.alg ?? 'none', typ: 'JWT' };
  if (opts.kid !== undefined) header.kid = opts.kid;
  return `${b64json(header)}.${b64json(claims)}.${opts.signature ?? ''}`;
}

/** The bytes an attacker uses as the HMAC secret: the PEM text, the JWK JSON, or the DER of the public key. */
export type ConfusionSecret = 'pem' | 'jwk' | 'der';

export function confusionSecret(pair: TestKeyPair, from: ConfusionSecret): Uint8Array {
  switch (from) {
    case 'pem':
      return Buffer.from(pair.publicPem);
    case 'jwk':
      return Buffer.from(JSON.stringify(pair.publicJwk));
    case 'der': {
      const b64 = pair.publicPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      return Buffer.from(b64, 'base64');
    }
  }
}

/** The key confusion attack: HS256 "signed" with the issuer's RSA public key bytes, with the RSA key's kid. */
export function hs256WithPublicKey(pair: TestKeyPair, claims: JWTPayload, from: ConfusionSecret = 'pem'): string {
  const signingInput = `${b64json({ alg: 'HS256', typ: 'JWT', kid: pair.kid })}.${b64json(claims)}`;
  const sig = createHmac('sha256', confusionSecret(pair, from)).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}

/** Replaces the payload (e.g. a different sub) and keeps the original header and signature. */
export function tamperPayload(token: string, change: (claims: JWTPayload) => JWTPayload): string {
  const [h, p, s] = token.split('.');
  if (h === undefined || p === undefined || s === undefined) throw new Error('not a compact JWS');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as JWTPayload;
  return `${h}.${b64json(change(claims))}.${s}`;
}

/** Flips one character of the signature. */
export function tamperSignature(token: string): string {
  const i = token.lastIndexOf('.') + 5;
  const c = token[i] === 'A' ? 'B' : 'A';
  return token.slice(0, i) + c + token.slice(i + 1);
}

/** A correctly signed token padded past `minBytes` with a filler claim. */
export async function oversizedToken(pair: TestKeyPair, claims: JWTPayload, minBytes: number): Promise<string> {
  return mintFor(pair, { ...claims, pad: 'x'.repeat(Math.ceil(minBytes * 0.75) + 16) });
}
