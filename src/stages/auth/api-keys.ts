/**
 * API key verification against a key store.
 *
 *   1. shape + checksum: a malformed or invented key never reaches a store
 *   2. negative cache: ids the store recently did not know are refused
 *      locally (bounded LRU with a TTL)
 *   3. budget: lookups of ids not verified recently draw from a token bucket
 *      (burst = maxEntries, refill = maxEntries / ttlSeconds per second),
 *      because a flood of random well-formed ids would each miss the
 *      negative cache. When it is empty, such keys get 503 until it refills;
 *      keys verified recently are unaffected. Stores that are in-memory maps
 *      (inline config, key files) cost nothing to ask and have no budget.
 *   4. store lookup (one in flight per id), then the SHA-256 digest of the
 *      presented key is compared in constant time with the stored one (both
 *      32 bytes; a dummy digest when the id is unknown, so every path
 *      compares), then revocation and expiry.
 *
 * A store that fails yields `authentication_unavailable` (503), never an
 * acceptance. Messages and logs name the key id only.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { ApiKeyStore, KeyRecord } from '../../stores/keys/port.ts';
import type { Allow, Credential } from '../../pipeline/identity.ts';
import { parseApiKey } from '../../crypto/api-key-format.ts';
import { errorMessage } from '../../shared/values.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';

export type ApiKeyCredential = Extract<Credential, { method: 'api_key' }>;

export interface ApiKeyVerifierOptions {
  readonly unknownKeyCache: { readonly maxEntries: number; readonly ttlSeconds: number };
  /**
   * Store lookups per second for ids not verified recently (sustained);
   * default maxEntries / ttlSeconds. The burst is max(maxEntries, this).
   */
  readonly unverifiedLookupsPerSecond?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

const DUMMY_DIGEST = Buffer.alloc(32);
const VERIFIED_MS = 24 * 3600 * 1000;
const SHA256_PREFIX = 'sha256:';

function storedDigest(hash: string): Buffer | null {
  if (!hash.startsWith(SHA256_PREFIX) || hash.length !== SHA256_PREFIX.length + 64) return null;
  const d = Buffer.from(hash.slice(SHA256_PREFIX.length), 'hex');
  return d.length === 32 ? d : null;
}

function allow<T extends string>(list: readonly (T | '*')[]): Allow<T> {
  return list.includes('*') ? '*' : new Set(list.filter((x): x is T => x !== '*'));
}

class TokenBucket {
  readonly #capacity: number;
  readonly #perMs: number;
  #tokens: number;
  #at: number;

  constructor(capacity: number, perSecond: number, now: number) {
    this.#capacity = capacity;
    this.#perMs = perSecond / 1000;
    this.#tokens = capacity;
    this.#at = now;
  }

  take(now: number): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#perMs);
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  refund(): void {
    this.#tokens = Math.min(this.#capacity, this.#tokens + 1);
  }
}

export class ApiKeyVerifier {
  readonly #store: ApiKeyStore;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  /** Ids the store did not know, for ttlSeconds. */
  readonly #unknown: BoundedCache<string, true>;
  readonly #unknownMs: number;
  /** Ids verified in the last day: their lookups skip the budget. Grants nothing by itself. */
  readonly #verified: BoundedCache<string, true>;
  readonly #budget: TokenBucket;
  readonly #inflight = new Map<string, Promise<KeyRecord | null>>();
  readonly #credentials = new WeakMap<KeyRecord, ApiKeyCredential>();

  constructor(store: ApiKeyStore, opts: ApiKeyVerifierOptions) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    const { maxEntries, ttlSeconds } = opts.unknownKeyCache;
    this.#unknown = new BoundedCache(maxEntries);
    this.#unknownMs = ttlSeconds * 1000;
    this.#verified = new BoundedCache(maxEntries);
    const rate = opts.unverifiedLookupsPerSecond ?? Math.max(1, maxEntries / ttlSeconds);
    this.#budget = new TokenBucket(Math.max(maxEntries, rate), rate, this.#now());
    // A key created, restored or reloaded is known at once: forget having seen its id unknown.
    store.onChange?.((id) => {
      if (id === null) this.#unknown.clear();
      else this.#unknown.delete(id);
    });
  }

  /** The credential, or a GatewayError: 401 invalid_api_key, 503 authentication_unavailable. */
  async verify(key: string): Promise<ApiKeyCredential> {
    const parsed = parseApiKey(key);
    if (!parsed.ok) throw new GatewayError('invalid_api_key', 'Invalid API key: the key is malformed.');
    const id = parsed.id;
    // The one-shot form: no Hash object per request (issue #15).
    const digest = hash('sha256', key, 'buffer');
    const record = this.#unknown.has(id, this.#now()) ? null : await this.#lookup(id);
    const expected = record === null ? null : storedDigest(record.hash);
    // Always one 32-byte comparison, whether or not the id is known.
    const equal = timingSafeEqual(digest, expected ?? DUMMY_DIGEST);
    if (record === null || expected === null || !equal) throw new GatewayError('invalid_api_key', `Invalid API key (id ${id}).`);
    const now = this.#now();
    if (record.revokedAt !== null) throw new GatewayError('invalid_api_key', `API key ${id} has been revoked.`);
    if (record.expiresAt !== null && record.expiresAt <= now) {
      throw new GatewayError(
        'invalid_api_key',
        record.replacedBy === undefined ? `API key ${id} has expired.` : `API key ${id} was rotated and its grace period has ended.`,
      );
    }
    this.#verified.set(id, true, now + VERIFIED_MS);
    return this.#credential(record);
  }

  #lookup(id: string): Promise<KeyRecord | null> {
    const pending = this.#inflight.get(id);
    if (pending !== undefined) return pending;
    const now = this.#now();
    const budgeted = this.#store.inMemory !== true && !this.#verified.has(id, now);
    if (budgeted && !this.#budget.take(now)) {
      return Promise.reject(
        new GatewayError('authentication_unavailable', `API key ${id} could not be checked: too many unknown keys are being presented; retry shortly.`),
      );
    }
    const p = this.#store
      .get(id)
      .then(
        (record) => {
          if (record === null) this.#unknown.set(id, true, this.#now() + this.#unknownMs);
          else if (budgeted) this.#budget.refund();
          return record;
        },
        (err: unknown) => {
          this.#log?.warn({ keyId: id, err: errorMessage(err) }, 'API key store lookup failed');
          throw new GatewayError('authentication_unavailable', `API key ${id} could not be checked: the key store is unavailable.`);
        },
      )
      .finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, p);
    return p;
  }

  #credential(r: KeyRecord): ApiKeyCredential {
    let c = this.#credentials.get(r);
    if (c === undefined) {
      c = Object.freeze({
        method: 'api_key',
        principal: r.principal,
        keyId: r.id,
        org: r.org,
        tenant: r.tenant,
        tier: r.tier,
        roles: Object.freeze([...r.roles]),
        models: allow<string>(r.models),
        endpoints: allow<Endpoint>(r.endpoints),
      });
      this.#credentials.set(r, c);
    }
    return c;
  }
}
