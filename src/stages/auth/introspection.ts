/**
 * Opaque OAuth access tokens, verified by asking their issuer (RFC 7662).
 *
 * - An answer counts only if `active` is true and `exp` / `nbf` / `iss` /
 *   `aud` / `token_type` agree with the issuer's config (with the clock skew);
 *   `aud` is required: the gateway is the resource server and a token minted
 *   for another API is not for us.
 * - Answers are cached by the token's SHA-256 (the token itself is never
 *   kept): an active one until the earliest of the token's exp, the issuer's
 *   cacheMaxSeconds and its recheckSeconds (so a revocation at the IdP is seen
 *   within recheckSeconds); a refusal for negativeCacheSeconds. The cache is
 *   bounded (least recently used out first).
 * - Concurrent requests with the same uncached token share one call.
 * - Per issuer, a circuit breaker: after breakerFailures consecutive failed
 *   calls, uncached tokens get 503 without a call for breakerOpenSeconds. An
 *   outage is never acceptance; cached answers keep working until they expire.
 * - Operator revocations (RevocationList, by token digest, jti or subject)
 *   are checked on every request, cached or not.
 *
 * With several issuers, an opaque token says nothing about where it came
 * from: they are asked in configured order until one calls it active.
 */
import { createHash } from 'node:crypto';
import type { AuthConfig, IntrospectionIssuerConfig } from '../../config/schema.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { Credential } from '../../pipeline/identity.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';
import { claimMapper, list, type ClaimMapper, type Claims } from './claims.ts';
import { IdpUnavailable, introspectionClient, type Introspect } from './introspection-client.ts';
import { INTROSPECTION_NOT_CONFIGURED } from './verifiers.ts';

export type IntrospectionCredential = Extract<Credential, { method: 'introspection' }>;

/** What an operator revocation is matched against. */
export interface RevocationRef {
  readonly issuer: string;
  readonly subject: string;
  readonly jti: string | null;
  /** SHA-256 of the token, hex. */
  readonly tokenSha256: string;
}

/** Operator revocations (src/stores/tokens): answered from memory, so it costs nothing per request. */
export interface RevocationList {
  /** Throws GatewayError('authentication_unavailable') while the list has never been loaded. */
  isRevoked(ref: RevocationRef): boolean;
}

export type IntrospectionOutcome = 'active' | 'inactive' | 'error' | 'circuit_open';

export interface IntrospectionVerifierOptions {
  /** Epoch ms; every time decision reads it (cache, breaker, exp / nbf). */
  readonly now?: () => number;
  /** After every call (and every call the open breaker saved), per issuer. */
  readonly onCall?: (issuer: string, outcome: IntrospectionOutcome) => void;
  readonly revocations?: RevocationList;
  /** Replaces the HTTP client per issuer (tests of the cache and breaker logic use a real IdP instead where they can). */
  readonly clientFor?: (cfg: IntrospectionIssuerConfig) => Introspect;
}

interface Accepted {
  readonly kind: 'active';
  readonly credential: IntrospectionCredential;
  readonly jti: string | null;
  /** Epoch ms from which the token is valid (nbf − skew); −∞ without nbf. */
  readonly from: number;
}
interface Refused {
  readonly kind: 'refused';
  readonly message: string;
}
type Answer = Accepted | Refused;

interface IssuerState {
  readonly cfg: IntrospectionIssuerConfig;
  readonly introspect: Introspect;
  readonly mapper: ClaimMapper;
  failures: number;
  openUntil: number;
}

export class IntrospectionVerifier {
  readonly #issuers: IssuerState[] = [];
  readonly #now: () => number;
  readonly #skewMs: number;
  readonly #maxTokenBytes: number;
  readonly #onCall: (issuer: string, outcome: IntrospectionOutcome) => void;
  readonly #revocations: RevocationList | null;
  readonly #cache: BoundedCache<string, Answer>;
  readonly #inflight = new Map<string, Promise<Answer>>();

  constructor(cfg: AuthConfig['introspection'], opts: IntrospectionVerifierOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#skewMs = cfg.clockSkewSeconds * 1000;
    this.#maxTokenBytes = cfg.maxTokenBytes;
    this.#cache = new BoundedCache(cfg.cacheMaxEntries);
    this.#revocations = opts.revocations ?? null;
    const onCall = opts.onCall;
    this.#onCall = (issuer, outcome) => {
      try {
        onCall?.(issuer, outcome);
      } catch {
        // A failing metrics callback must not change the answer.
      }
    };
    const seen = new Set<string>();
    for (const issuer of cfg.issuers) {
      if (seen.has(issuer.issuer)) throw new Error(`auth.introspection: issuer ${issuer.issuer} is configured twice`);
      seen.add(issuer.issuer);
      const introspect = opts.clientFor?.(issuer) ?? introspectionClient(issuer);
      this.#issuers.push({ cfg: issuer, introspect, mapper: claimMapper(issuer), failures: 0, openUntil: 0 });
    }
  }

  get enabled(): boolean {
    return this.#issuers.length > 0;
  }

  /** The verified credential, or a GatewayError: invalid_token (401), authentication_unavailable (503). */
  async verify(token: string): Promise<IntrospectionCredential> {
    if (!this.enabled) throw new GatewayError('invalid_token', INTROSPECTION_NOT_CONFIGURED);
    if (token.length > this.#maxTokenBytes) throw new GatewayError('invalid_token', `Invalid token: longer than ${this.#maxTokenBytes} bytes.`);
    const digest = createHash('sha256').update(token).digest('hex');
    let answer = this.#cache.get(digest, this.#now());
    if (answer === undefined) {
      // One call per burst: later arrivals wait for the first one's answer.
      let pending = this.#inflight.get(digest);
      if (pending === undefined) {
        pending = this.#resolve(token, digest).finally(() => this.#inflight.delete(digest));
        this.#inflight.set(digest, pending);
      }
      answer = await pending;
    }
    if (answer.kind === 'refused') throw new GatewayError('invalid_token', answer.message);
    if (this.#now() < answer.from) throw new GatewayError('invalid_token', `Invalid token from issuer ${answer.credential.issuer}: not yet valid.`);
    const c = answer.credential;
    if (this.#revocations?.isRevoked({ issuer: c.issuer, subject: c.subject, jti: answer.jti, tokenSha256: digest }) === true) {
      throw new GatewayError('invalid_token', `Invalid token from issuer ${c.issuer}: revoked.`);
    }
    return c;
  }

  async #resolve(token: string, digest: string): Promise<Answer> {
    let refusal: Refused | null = null;
    let refusedUntil = Number.POSITIVE_INFINITY;
    let unavailable: GatewayError | null = null;
    for (const issuer of this.#issuers) {
      let claims: Claims;
      try {
        claims = await this.#call(issuer, token);
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        unavailable ??= err;
        continue;
      }
      const answer = this.#judge(issuer, claims);
      const c = issuer.cfg;
      const now = this.#now();
      if (answer.kind === 'active') {
        // The skew tolerates the IdP's clock when judging; a cached answer still ends at the token's own exp.
        const expMs = typeof claims['exp'] === 'number' ? claims['exp'] * 1000 : Number.POSITIVE_INFINITY;
        this.#cache.set(digest, answer, Math.min(expMs, now + c.cacheMaxSeconds * 1000, now + c.recheckSeconds * 1000));
        return answer;
      }
      refusal ??= answer;
      refusedUntil = Math.min(refusedUntil, now + c.negativeCacheSeconds * 1000);
    }
    // An issuer we could not ask might have called it active: unknown is neither refused as invalid nor accepted.
    if (unavailable !== null) throw unavailable;
    const answer = refusal ?? { kind: 'refused', message: 'Invalid token.' };
    this.#cache.set(digest, answer, refusedUntil);
    return answer;
  }

  async #call(issuer: IssuerState, token: string): Promise<Claims> {
    const name = issuer.cfg.issuer;
    if (this.#now() < issuer.openUntil) {
      this.#onCall(name, 'circuit_open');
      throw unavailableError(name);
    }
    try {
      const claims = await issuer.introspect(token);
      issuer.failures = 0;
      this.#onCall(name, claims['active'] === true ? 'active' : 'inactive');
      return claims;
    } catch (err) {
      if (!(err instanceof IdpUnavailable)) throw err;
      issuer.failures += 1;
      // Half-open after the open period: one failure re-opens at once (failures stays at or above the threshold).
      if (issuer.failures >= issuer.cfg.breakerFailures) issuer.openUntil = this.#now() + issuer.cfg.breakerOpenSeconds * 1000;
      this.#onCall(name, 'error');
      throw unavailableError(name);
    }
  }

  /** RFC 7662 § 2.2 and our checks: active, exp / nbf (with the skew), iss, aud, token_type; then the claims mapping. */
  #judge(issuer: IssuerState, claims: Claims): Answer {
    const cfg = issuer.cfg;
    const refuse = (reason: string): Refused => ({ kind: 'refused', message: `Invalid token from issuer ${cfg.issuer}: ${reason}.` });
    if (claims['active'] !== true) return refuse('not active');
    const now = this.#now();
    const exp = claims['exp'];
    if (exp !== undefined && (typeof exp !== 'number' || exp * 1000 + this.#skewMs <= now)) return refuse('expired');
    const nbf = claims['nbf'];
    if (nbf !== undefined && typeof nbf !== 'number') return refuse('invalid "nbf"');
    const iss = claims['iss'];
    if (iss !== undefined && iss !== cfg.issuer) return refuse('wrong issuer');
    let aud: readonly string[];
    try {
      aud = list(claims, 'aud', cfg.issuer);
    } catch {
      return refuse('invalid "aud"');
    }
    if (!aud.some((a) => cfg.audiences.includes(a))) return refuse('wrong audience');
    const type = claims['token_type'];
    if (type !== undefined && (typeof type !== 'string' || !cfg.tokenTypes.some((t) => t.toLowerCase() === type.toLowerCase()))) {
      return refuse('wrong token type');
    }
    const jti = claims['jti'];
    let grants;
    try {
      grants = issuer.mapper.grants(claims);
    } catch (err) {
      if (err instanceof GatewayError) return { kind: 'refused', message: err.message };
      throw err;
    }
    return {
      kind: 'active',
      jti: typeof jti === 'string' ? jti : null,
      from: typeof nbf === 'number' ? nbf * 1000 - this.#skewMs : Number.NEGATIVE_INFINITY,
      credential: Object.freeze({ method: 'introspection', issuer: cfg.issuer, ...grants }),
    };
  }
}

function unavailableError(issuer: string): GatewayError {
  return new GatewayError('authentication_unavailable', `The introspection endpoint of issuer ${issuer} is unavailable; the token cannot be checked.`);
}
