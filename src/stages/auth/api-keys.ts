/**
 * API key authentication against the configured key hashes. The key is
 * looked up by its public id, then its SHA-256 digest is compared in
 * constant time with the stored one (both fixed-length).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyEntry } from '../../config/schema.ts';
import type { Identity } from '../../pipeline/context.ts';
import { GatewayError } from '../../openai/errors.ts';
import { parseApiKey } from './api-key-format.ts';

interface StoredKey {
  readonly digest: Buffer;
  readonly expiresAt: number | null;
  readonly identity: Identity;
}

export class ApiKeyAuthenticator {
  readonly #keys = new Map<string, StoredKey>();
  readonly #now: () => number;

  constructor(entries: readonly ApiKeyEntry[], now: () => number = Date.now) {
    this.#now = now;
    for (const e of entries) {
      if (this.#keys.has(e.id)) throw new Error(`auth.apiKeys: duplicate key id ${e.id}`);
      this.#keys.set(e.id, {
        digest: Buffer.from(e.hash.slice('sha256:'.length), 'hex'),
        expiresAt: e.expiresAt === undefined ? null : Date.parse(e.expiresAt),
        identity: Object.freeze({
          method: 'api_key',
          principal: e.principal,
          keyId: e.id,
          org: e.org,
          tenant: e.tenant,
          tier: e.tier,
          roles: Object.freeze([...e.roles]),
          models: e.models.includes('*') ? '*' : new Set(e.models),
        }),
      });
    }
  }

  /** Returns the identity, or throws a 401 GatewayError. Never logs the key. */
  authenticate(key: string): Identity {
    const parsed = parseApiKey(key);
    if (!parsed.ok) throw new GatewayError('invalid_api_key', 'Invalid API key: the key is malformed.');
    const stored = this.#keys.get(parsed.id);
    const digest = createHash('sha256').update(key).digest();
    // Compare even when the id is unknown so both paths cost the same.
    const expected = stored?.digest ?? UNKNOWN_DIGEST;
    const match = timingSafeEqual(digest, expected) && stored !== undefined;
    if (!match) throw new GatewayError('invalid_api_key', `Invalid API key (id ${parsed.id}).`);
    if (stored.expiresAt !== null && stored.expiresAt <= this.#now()) {
      throw new GatewayError('invalid_api_key', `API key ${parsed.id} has expired.`);
    }
    return stored.identity;
  }
}

const UNKNOWN_DIGEST = Buffer.alloc(32);

/** Pulls the presented key from `authorization: Bearer …` or `x-api-key`. */
export function presentedApiKey(authorization: string | undefined, xApiKey: string | undefined): string | null {
  if (authorization !== undefined) {
    const m = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(authorization);
    if (m === null) throw new GatewayError('invalid_api_key', 'The authorization header must be "Bearer <api key>".');
    return m[1] ?? null;
  }
  if (xApiKey !== undefined && xApiKey !== '') return xApiKey.trim();
  return null;
}
