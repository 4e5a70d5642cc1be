/**
 * The key store port: where API key records live (inline config, files,
 * Redis). Lookups are by the key's public id; a record holds only the
 * SHA-256 of the key, never the key.
 *
 * `get` resolves to `null` when the id is unknown and rejects when the
 * store could not answer (unreachable, timed out, corrupt record): the
 * verifier turns the first into 401 and the second into 503, never into an
 * acceptance.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';

export interface KeyRecord {
  /** The key's 8-character public id. */
  readonly id: string;
  /** `sha256:<64 lower-case hex>` of the whole key. */
  readonly hash: string;
  readonly principal: string;
  readonly org: string;
  readonly tenant: string;
  readonly tier: string;
  readonly roles: readonly string[];
  /** Logical model ids; `['*']` = every model. */
  readonly models: readonly string[];
  /** Endpoint names; `['*']` = every endpoint. */
  readonly endpoints: readonly Endpoint[];
  /** Epoch ms; null for entries written without one (inline config). */
  readonly createdAt: number | null;
  /** Epoch ms from which the key is refused; null = never. */
  readonly expiresAt: number | null;
  /** Epoch ms the key was revoked; any non-null value refuses the key. */
  readonly revokedAt: number | null;
  /** Set by rotation: the id of the key that replaces this one. */
  readonly replacedBy?: string;
}

export interface ApiKeyStore {
  /** The record, `null` when the id is unknown; rejects when the store cannot answer. */
  get(id: string): Promise<KeyRecord | null>;
  close(): Promise<void>;
  /**
   * True when a lookup is a local map read (inline config, key files): the
   * verifier then spends no lookup budget on it. Absent = false.
   */
  readonly inMemory?: boolean;
  /**
   * Calls `listener` when records may have changed: with the id, or null
   * for "anything" (a reloaded file, a resubscription). The verifier drops
   * what it remembered as unknown, so a created or restored key works at
   * once, not when the negative cache expires.
   */
  onChange?(listener: (id: string | null) => void): void;
}

/** A change to an existing record. `expiresAt: null` removes the expiry. */
export interface KeyUpdate {
  readonly expiresAt?: number | null;
  readonly revokedAt?: number;
  readonly replacedBy?: string;
}

/** What `inference-gateway keys …` edits: a key file or Redis. */
export interface WritableKeyStore extends ApiKeyStore {
  /** Every record, in a stable order (file order, or by id). */
  list(): Promise<KeyRecord[]>;
  /** Adds a record; rejects when the id already exists. */
  create(record: KeyRecord): Promise<void>;
  /**
   * Applies the change and returns the updated record, or null when the id
   * is unknown. Stores with live replicas announce the change so caches drop
   * the id at once.
   */
  update(id: string, change: KeyUpdate): Promise<KeyRecord | null>;
  /** Human description for CLI messages (`redis://host:6379`, `file keys.yaml`). */
  readonly description: string;
}

export type KeyStatus = 'active' | 'expired' | 'revoked';

export function keyStatus(record: KeyRecord, now: number): KeyStatus {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  return 'active';
}
