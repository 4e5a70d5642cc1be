/**
 * Bearer JWT authentication. The token's (unverified) `iss` picks exactly one
 * configured issuer; the signature is then checked with that issuer's keys
 * only (remote JWKS or a local JWKS file), and iss / aud / exp / nbf through
 * jose with the issuer's algorithm allowlist. Verified claims are mapped to
 * Grants; claim values that would end up in headers or metric labels must be
 * short printable strings or the token is refused.
 *
 * Operator revocations (`auth.tokenRevocation`, src/stores/tokens) apply to
 * JWTs as to introspected tokens: by the token's digest, its `jti` or its
 * subject, checked on every use (a cached verification included), so a
 * revoked token stops working on every replica before it expires.
 *
 * Failure modes:
 * - anything wrong with the token → `invalid_token` (401), a revoked one too;
 * - the issuer's keys cannot be obtained (JWKS down, slow, garbage) →
 *   `authentication_unavailable` (503). A token is never accepted without a
 *   verified signature.
 * Error messages name the reason and the (configured) issuer, never the token
 * or any value taken from it.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { CryptoKey, FetchImplementation, FlattenedJWSInput, JSONWebKeySet, JWSHeaderParameters, JWTPayload, JWTVerifyOptions, LocalJWKSet } from 'jose';
import type { AuthConfig, JwtIssuerConfig } from '../../config/schema.ts';
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { Allow, Credential } from '../../pipeline/identity.ts';
import { errorMessage } from '../../shared/values.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';
import { grantMatcher, type GrantMatch } from './claims.ts';
import type { RevocationList } from './introspection.ts';
import { JWT_NOT_CONFIGURED } from './verifiers.ts';

export type JwtCredential = Extract<Credential, { method: 'jwt' }>;

export type JwksFetchOutcome = 'ok' | 'error';

export interface JwtVerifierOptions {
  /**
   * Epoch milliseconds, default Date.now. Every time decision reads it: exp /
   * nbf, the verified-token cache, the JWKS refetch cooldown, max age and
   * failure back-off, and how often a JWKS file is checked (so tests move a
   * clock instead of waiting).
   */
  readonly now?: () => number;
  /** Called after every JWKS fetch (remote) or re-read (file), per issuer. */
  readonly onJwksFetch?: (issuer: string, outcome: JwksFetchOutcome) => void;
  /** Operator revocations; while the list has never been loaded, every JWT is refused with 503 (never accepted unchecked). */
  readonly revocations?: RevocationList;
}

/** Three base64url segments (the signature may be empty, so `alg: none` tokens reach verify() and are refused there). No decoding. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

export function looksLikeJwt(s: string): boolean {
  return JWT_SHAPE.test(s);
}

/** Claim values end up in headers, logs and metric labels. */
const MAX_CLAIM_CHARS = 128;
const SANE_TEXT = new RegExp(`^[^\\p{C}\\p{Zl}\\p{Zp}]{1,${MAX_CLAIM_CHARS}}$`, 'u');
/** Upper bound on roles / models entries taken from one token. */
const MAX_LIST_ITEMS = 64;
/** A space-separated roles string (e.g. an OAuth `scope`) may be longer than one value. */
const MAX_ROLE_STRING_CHARS = MAX_LIST_ITEMS * (MAX_CLAIM_CHARS + 1);
/** A JWKS document larger than this is treated as garbage. */
const MAX_JWKS_BYTES = 1024 * 1024;
/** After a failed fetch, the next one waits this long (capped by the cooldown), so an outage is not hammered. */
const MAX_FAILURE_BACKOFF_MS = 5_000;
/** The local JWKS file is stat'ed at most this often. */
const FILE_CHECK_INTERVAL_MS = 1_000;
/** Keys tried when several JWKS entries match a token (no kid). */
const MAX_CANDIDATE_KEYS = 8;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** The issuer's key source failed (not the token): maps to authentication_unavailable. */
class KeysUnavailable extends Error {
  constructor(cause: unknown) {
    super('signing keys unavailable', { cause });
    this.name = 'KeysUnavailable';
  }
}

interface IssuerState {
  readonly cfg: JwtIssuerConfig;
  readonly keys: KeyResolver;
  readonly models: Allow<string>;
  readonly endpoints: Allow<Endpoint>;
  /** The issuer's group / scope grants, compiled. */
  readonly grants: (claims: JWTPayload, issuer: string) => GrantMatch;
}

export class JwtVerifier {
  readonly #issuers = new Map<string, IssuerState>();
  readonly #clockSkewSeconds: number;
  readonly #maxTokenBytes: number;
  readonly #now: () => number;
  /**
   * Tokens already verified, by SHA-256 of the token: a client that reuses its
   * token pays for one signature check per VERIFIED_TTL_MS instead of one per
   * request. An entry never outlives the token's own exp (+ skew), and lives at
   * most VERIFIED_TTL_MS, so a key removed from the JWKS stops counting soon.
   */
  /** Verified tokens by digest, each valid until its exp (with the skew) and at most VERIFIED_TTL_MS. */
  readonly #verified = new BoundedCache<string, Verified>(VERIFIED_MAX);
  readonly #revocations: RevocationList | null;

  constructor(cfg: AuthConfig['jwt'], opts: JwtVerifierOptions = {}) {
    this.#clockSkewSeconds = cfg.clockSkewSeconds;
    this.#maxTokenBytes = cfg.maxTokenBytes;
    this.#now = opts.now ?? Date.now;
    this.#revocations = opts.revocations ?? null;
    const onJwksFetch = opts.onJwksFetch;
    const report = (issuer: string, outcome: JwksFetchOutcome): void => {
      // New keys (a refetch or a changed file): tokens verified with the old ones are checked again.
      if (outcome === 'ok') this.#verified.clear();
      try {
        onJwksFetch?.(issuer, outcome);
      } catch {
        // A failing metrics callback must not turn a good fetch into a failed one.
      }
    };
    for (const issuer of cfg.issuers) {
      if (this.#issuers.has(issuer.issuer)) throw new Error(`auth.jwt: issuer ${issuer.issuer} is configured twice`);
      const onFetch = (outcome: JwksFetchOutcome): void => report(issuer.issuer, outcome);
      let keys: KeyResolver;
      if (issuer.jwksUri !== undefined) keys = remoteKeys(issuer, onFetch, this.#now);
      else if (issuer.jwksFile !== undefined) keys = new FileKeys(issuer.issuer, issuer.jwksFile, onFetch, this.#now).resolver;
      else throw new Error(`auth.jwt: issuer ${issuer.issuer} needs jwksUri or jwksFile`);
      this.#issuers.set(issuer.issuer, {
        cfg: issuer,
        keys,
        models: issuer.defaults.models.includes('*') ? '*' : new Set(issuer.defaults.models),
        endpoints: issuer.defaults.endpoints.includes('*') ? '*' : new Set(issuer.defaults.endpoints.filter((e): e is Endpoint => e !== '*')),
        grants: grantMatcher(issuer.grants, issuer.claims),
      });
    }
  }

  /** At least one issuer is configured. */
  get enabled(): boolean {
    return this.#issuers.size > 0;
  }

  /** Returns the verified credential, or throws a GatewayError (invalid_token / authentication_unavailable). */
  async verify(token: string): Promise<JwtCredential> {
    if (this.#issuers.size === 0) throw invalid(JWT_NOT_CONFIGURED);
    // Size first: nothing is decoded from an oversized token.
    if (token.length > this.#maxTokenBytes) throw invalid(`Invalid token: longer than ${this.#maxTokenBytes} bytes.`);
    if (!looksLikeJwt(token)) throw invalid('Invalid token: not a compact JWS (three base64url segments).');
    const digest = createHash('sha256').update(token).digest('hex');
    const hit = this.#verified.get(digest, this.#now());
    if (hit !== undefined) {
      if (this.#now() >= hit.from) return this.#unlessRevoked(hit, digest);
      this.#verified.delete(digest);
    }

    let claims: JWTPayload;
    let header: JWSHeaderParameters;
    try {
      claims = decodeJwt(token);
      header = decodeProtectedHeader(token);
    } catch {
      throw invalid('Invalid token: malformed header or payload.');
    }
    const issuer = typeof claims.iss === 'string' ? this.#issuers.get(claims.iss) : undefined;
    if (issuer === undefined) throw invalid('Invalid token: the issuer is not trusted.');
    const name = issuer.cfg.issuer;
    // Belt and braces: jose checks the allowlist too. Case-sensitive on purpose ("none", "None", "HS256" never match).
    if (typeof header.alg !== 'string' || !(issuer.cfg.algorithms as readonly string[]).includes(header.alg)) {
      throw invalid(`Invalid token from issuer ${name}: signing algorithm not in the issuer's allowlist.`);
    }

    const options: JWTVerifyOptions = {
      issuer: name,
      audience: issuer.cfg.audiences,
      algorithms: issuer.cfg.algorithms,
      requiredClaims: ['exp', 'iss', 'aud'],
      clockTolerance: this.#clockSkewSeconds,
      currentDate: new Date(this.#now()),
    };
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, issuer.keys, options)).payload;
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw refusal(err, name);
      payload = await verifyWithCandidates(token, err, options, name);
    }
    const credential = toCredential(payload, issuer);
    // The entry is valid exactly where the token is (exp and nbf with the skew), and at most VERIFIED_TTL_MS.
    const skewMs = this.#clockSkewSeconds * 1000;
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 + skewMs : 0;
    const from = typeof payload.nbf === 'number' ? payload.nbf * 1000 - skewMs : Number.NEGATIVE_INFINITY;
    // A jti that is not a short printable string cannot have been revoked by the CLI (entries are ≤ 512 characters).
    const jti = typeof payload.jti === 'string' && payload.jti !== '' && payload.jti.length <= 512 ? payload.jti : null;
    const verified: Verified = { credential, from, jti };
    this.#verified.set(digest, verified, Math.min(exp, this.#now() + VERIFIED_TTL_MS));
    return this.#unlessRevoked(verified, digest);
  }

  /** The credential, unless an operator revoked the token (its digest, jti or subject); checked on every use. */
  #unlessRevoked(v: Verified, digest: string): JwtCredential {
    const c = v.credential;
    if (this.#revocations?.isRevoked({ issuer: c.issuer, subject: c.subject, jti: v.jti, tokenSha256: digest }) === true) {
      throw invalid(`Invalid token from issuer ${c.issuer}: revoked.`);
    }
    return c;
  }
}

/** A verified token: what it grants, from when (nbf), and its jti for the revocation check. */
interface Verified {
  readonly credential: JwtCredential;
  readonly from: number;
  readonly jti: string | null;
}

/** Several keys match (typically: no kid, keys being rotated): the token is accepted if one of them verifies it. */
async function verifyWithCandidates(token: string, err: errors.JWKSMultipleMatchingKeys, options: JWTVerifyOptions, issuer: string): Promise<JWTPayload> {
  let tried = 0;
  for await (const key of err) {
    if (++tried > MAX_CANDIDATE_KEYS) break;
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (e) {
      if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw refusal(e, issuer);
    }
  }
  throw invalid(`Invalid token from issuer ${issuer}: signature verification failed.`);
}

function invalid(message: string): GatewayError {
  return new GatewayError('invalid_token', message);
}

/** Maps a verification failure to a client error; the message names the reason only. */
function refusal(err: unknown, issuer: string): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof KeysUnavailable) {
    return new GatewayError('authentication_unavailable', `The signing keys of issuer ${issuer} are unavailable; the token cannot be checked.`);
  }
  const reason = refusalReason(err);
  return invalid(`Invalid token from issuer ${issuer}: ${reason}.`);
}

function refusalReason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `missing the required "${err.claim}" claim`;
    switch (err.claim) {
      case 'nbf':
        return 'not yet valid';
      case 'aud':
        return 'wrong audience';
      case 'iss':
        return 'wrong issuer';
      case 'exp':
      case 'iat':
        return `invalid "${err.claim}" claim`;
      default:
        return 'claim validation failed';
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no signing key matches the token';
  if (err instanceof errors.JOSENotSupported) return 'unsupported algorithm or key';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed';
  return 'could not be verified';
}

/** Wraps a key source so that its own failures (as opposed to "this token's key is not there") become KeysUnavailable. */
function guarded(get: KeyResolver): KeyResolver {
  return async (header, token) => {
    try {
      return await get(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw new KeysUnavailable(err);
    }
  };
}

// ---------------------------------------------------------------- remote JWKS

function jwksUrl(issuer: JwtIssuerConfig, uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`auth.jwt: issuer ${issuer.issuer}: jwksUri is not a URL`);
  }
  if (url.username !== '' || url.password !== '') throw new Error(`auth.jwt: issuer ${issuer.issuer}: jwksUri must not contain credentials`);
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return url;
  throw new Error(`auth.jwt: issuer ${issuer.issuer}: jwksUri must be https (http only on 127.0.0.1, localhost or [::1])`);
}

/** Milliseconds since `since` on `now`'s clock; a clock that went backwards (wall-clock step) counts as "long ago", so a step back never freezes a refresh. */
function elapsed(now: number, since: number): number {
  return now >= since ? now - since : Number.POSITIVE_INFINITY;
}

/**
 * One jose remote key set per issuer, created once; fetches go through a
 * wrapper that reports, validates and backs off.
 *
 * jose does the fetching (timeout, headers, no redirects) but decides when
 * to refetch on its own Date.now(); here it is told never to (cooldown and
 * max age infinite) and this wrapper makes those decisions on the verifier's
 * clock, with jose's rules: load when there are no keys or they are older
 * than jwksMaxAgeSeconds; on an unknown kid, refetch unless the keys are
 * younger than jwksCooldownSeconds. jose still shares one fetch among
 * concurrent callers.
 */
function remoteKeys(issuer: JwtIssuerConfig, onFetch: (outcome: JwksFetchOutcome) => void, now: () => number): KeyResolver {
  const url = jwksUrl(issuer, issuer.jwksUri ?? '');
  const cooldownMs = issuer.jwksCooldownSeconds * 1000;
  const maxAgeMs = issuer.jwksMaxAgeSeconds * 1000;
  const backoffMs = Math.min(cooldownMs, MAX_FAILURE_BACKOFF_MS);
  let retryAt = 0;
  /** When the keys in use were fetched (on `now`); -Infinity: none yet. */
  let fetchedAt = Number.NEGATIVE_INFINITY;

  const fetchJwks: FetchImplementation = async (href, init) => {
    // Without keys every lookup asks for a fetch; after a failure, wait instead of hammering the IdP.
    if (now() < retryAt) throw new Error('JWKS fetch backing off after a failure');
    try {
      const res = await fetch(href, init);
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`JWKS endpoint answered HTTP ${res.status}`);
      }
      const text = await readCapped(res, MAX_JWKS_BYTES);
      const json: unknown = JSON.parse(text);
      if (!isJwkSetShape(json)) throw new Error('JWKS response is not a JWK set');
      createLocalJWKSet(json);
      onFetch('ok');
      return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      retryAt = now() + backoffMs;
      onFetch('error');
      throw err;
    }
  };

  const jwks = createRemoteJWKSet(url, {
    cooldownDuration: Number.POSITIVE_INFINITY,
    cacheMaxAge: Number.POSITIVE_INFINITY,
    timeoutDuration: issuer.jwksTimeoutMs,
    [customFetch]: fetchJwks,
  });
  // Concurrent callers join jose's fetch in progress; each marks the keys fresh once it has them.
  const reload = async (): Promise<void> => {
    await jwks.reload();
    fetchedAt = now();
  };

  return guarded(async (header, token) => {
    if (fetchedAt === Number.NEGATIVE_INFINITY || elapsed(now(), fetchedAt) >= maxAgeMs) await reload();
    try {
      return await jwks(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || elapsed(now(), fetchedAt) < cooldownMs) throw err;
      await reload();
      return jwks(header, token);
    }
  });
}

async function readCapped(res: Response, maxBytes: number): Promise<string> {
  if (res.body === null) return '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new Error(`JWKS response larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isJwkSetShape(v: unknown): v is JSONWebKeySet {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys: unknown = (v as { keys?: unknown }).keys;
  return Array.isArray(keys) && keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k));
}

// ------------------------------------------------------------ local JWKS file

interface FileSignature {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

function sameFile(a: FileSignature, b: FileSignature): boolean {
  return a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

function parseJwks(text: string): LocalJWKSet {
  const json: unknown = JSON.parse(text);
  if (!isJwkSetShape(json)) throw new Error('not a JWK set ({"keys": [...]})');
  return createLocalJWKSet(json);
}

/**
 * A JWKS file (e.g. a mounted Kubernetes Secret): read at construction, then
 * re-read when its mtime / size / inode change, checked at most once a second.
 * A failed re-read keeps the previous keys.
 */
class FileKeys {
  readonly resolver: KeyResolver;
  readonly #path: string;
  readonly #onFetch: (outcome: JwksFetchOutcome) => void;
  readonly #now: () => number;
  #local: LocalJWKSet;
  #signature: FileSignature;
  #checkedAt: number;
  #pending: Promise<void> | null = null;

  constructor(issuer: string, path: string, onFetch: (outcome: JwksFetchOutcome) => void, now: () => number) {
    this.#path = path;
    this.#onFetch = onFetch;
    this.#now = now;
    try {
      const st = statSync(path);
      if (st.size > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
      this.#local = parseJwks(readFileSync(path, 'utf8'));
      this.#signature = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
    } catch (err) {
      throw new Error(`auth.jwt: issuer ${issuer}: cannot load jwksFile ${path}: ${errorMessage(err)}`, { cause: err });
    }
    this.#checkedAt = now();
    this.resolver = guarded(async (header, token) => {
      await this.#refresh();
      return this.#local(header, token);
    });
  }

  async #refresh(): Promise<void> {
    if (this.#pending !== null) return this.#pending;
    const now = this.#now();
    if (elapsed(now, this.#checkedAt) < FILE_CHECK_INTERVAL_MS) return;
    this.#checkedAt = now;
    this.#pending = this.#reloadIfChanged().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  async #reloadIfChanged(): Promise<void> {
    try {
      const st = await stat(this.#path);
      const signature = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
      if (sameFile(signature, this.#signature)) return;
      if (st.size > MAX_JWKS_BYTES) throw new Error('JWKS file too large');
      this.#local = parseJwks(await readFile(this.#path, 'utf8'));
      this.#signature = signature;
      this.#onFetch('ok');
    } catch {
      // Mid-rotation (file briefly missing or half-written): keep the previous keys, retry on the next check.
      this.#onFetch('error');
    }
  }
}

// ------------------------------------------------------------ claims → grants

/** A claim by exact name first (names like `https://example.com/roles` contain dots), else by dot path. */
function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let node: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function badClaim(issuer: string, claim: string, what: string): GatewayError {
  return invalid(`Invalid token from issuer ${issuer}: claim "${claim}" must be ${what}.`);
}

const SANE_DESCRIPTION = `a string of 1-${MAX_CLAIM_CHARS} printable characters`;

function saneText(v: unknown): v is string {
  return typeof v === 'string' && SANE_TEXT.test(v);
}

/** undefined / null = absent; anything present must be a sane string. */
function optionalText(payload: JWTPayload, claim: string, issuer: string): string | undefined {
  const v = claimAt(payload, claim);
  if (v === undefined || v === null) return undefined;
  if (!saneText(v)) throw badClaim(issuer, claim, SANE_DESCRIPTION);
  return v;
}

function requiredText(payload: JWTPayload, claim: string, issuer: string): string {
  const v = optionalText(payload, claim, issuer);
  if (v === undefined) throw invalid(`Invalid token from issuer ${issuer}: missing the required "${claim}" claim.`);
  return v;
}

function textList(v: unknown, claim: string, issuer: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_LIST_ITEMS || !v.every(saneText)) {
    throw badClaim(issuer, claim, `an array of at most ${MAX_LIST_ITEMS} strings of 1-${MAX_CLAIM_CHARS} printable characters`);
  }
  return [...new Set<string>(v)];
}

function roles(payload: JWTPayload, claim: string, issuer: string): readonly string[] {
  const v = claimAt(payload, claim);
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') {
    const what = `a space-separated string of at most ${MAX_LIST_ITEMS} values of 1-${MAX_CLAIM_CHARS} printable characters`;
    if (v.length > MAX_ROLE_STRING_CHARS) throw badClaim(issuer, claim, what);
    const parts = v.split(' ').filter((p) => p !== '');
    if (parts.length > MAX_LIST_ITEMS || !parts.every(saneText)) throw badClaim(issuer, claim, what);
    return [...new Set(parts)];
  }
  return textList(v, claim, issuer);
}

/** The token's models claim wins; else the models of its matching grants, if any names some; else the issuer's default. */
function models(payload: JWTPayload, claim: string, issuer: IssuerState, granted: readonly string[] | null): Allow<string> {
  const v = claimAt(payload, claim);
  const list = v === undefined || v === null ? granted : textList(v, claim, issuer.cfg.issuer);
  if (list === null) return issuer.models;
  return list.includes('*') ? '*' : new Set(list);
}

function toCredential(payload: JWTPayload, issuer: IssuerState): JwtCredential {
  const name = issuer.cfg.issuer;
  const map = issuer.cfg.claims;
  const defaults = issuer.cfg.defaults;
  const subject = requiredText(payload, 'sub', name);
  const principal = map.principal === 'sub' ? subject : requiredText(payload, map.principal, name);
  const granted = issuer.grants(payload, name);
  return Object.freeze({
    method: 'jwt',
    principal,
    issuer: name,
    subject,
    org: optionalText(payload, map.org, name) ?? defaults.org ?? null,
    tenant: optionalText(payload, map.tenant, name) ?? defaults.tenant ?? null,
    tier: optionalText(payload, map.tier, name) ?? defaults.tier,
    roles: Object.freeze([...new Set([...roles(payload, map.roles, name), ...granted.roles])]),
    models: models(payload, map.models, issuer, granted.models),
    endpoints: issuer.endpoints,
  });
}
