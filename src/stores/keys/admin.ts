/**
 * Key lifecycle operations on a writable store (the CLI's verbs): create,
 * rotate (new key, same grants; the old one keeps working for a grace
 * period), revoke.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { generateApiKey } from '../../crypto/api-key-format.ts';
import type { KeyRecord, WritableKeyStore } from './port.ts';

/** A refusal the operator should read (unknown id, already revoked). */
export class KeyAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyAdminError';
  }
}

export interface KeyGrants {
  readonly principal: string;
  readonly org: string;
  readonly tenant: string;
  readonly tier: string;
  readonly roles: readonly string[];
  readonly models: readonly string[];
  readonly endpoints: readonly Endpoint[];
}

export interface IssuedKey {
  /** The key itself: shown once, stored nowhere. */
  readonly key: string;
  readonly record: KeyRecord;
}

/** A new record (and its key) for these grants; not stored. */
export function issueKey(grants: KeyGrants, opts: { now: number; expiresAt?: number | null }): IssuedKey {
  const k = generateApiKey();
  const record: KeyRecord = {
    id: k.id,
    hash: k.hash,
    principal: grants.principal,
    org: grants.org,
    tenant: grants.tenant,
    tier: grants.tier,
    roles: [...grants.roles],
    models: [...grants.models],
    endpoints: [...grants.endpoints],
    createdAt: opts.now,
    expiresAt: opts.expiresAt ?? null,
    revokedAt: null,
  };
  return { key: k.key, record };
}

export async function createKey(store: WritableKeyStore, grants: KeyGrants, opts: { now: number; expiresAt?: number | null }): Promise<IssuedKey> {
  const issued = issueKey(grants, opts);
  await store.create(issued.record);
  return issued;
}

export interface Rotation extends IssuedKey {
  /** The old record as updated: expiresAt = min(its expiry, now + grace), replacedBy = the new id. */
  readonly old: KeyRecord;
}

/**
 * Creates a key with the old key's grants, then sets the old key's expiry to
 * now + grace (never later than it already was) and its `replacedBy`.
 */
export async function rotateKey(store: WritableKeyStore, id: string, opts: { now: number; graceMs: number; expiresAt?: number | null }): Promise<Rotation> {
  const old = await store.get(id);
  if (old === null) throw new KeyAdminError(`key ${id} not found in ${store.description}`);
  if (old.revokedAt !== null) throw new KeyAdminError(`key ${id} is revoked; create a new key instead of rotating it`);
  const issued = await createKey(store, old, { now: opts.now, expiresAt: opts.expiresAt ?? null });
  const graceEnd = opts.now + opts.graceMs;
  const expiresAt = old.expiresAt === null ? graceEnd : Math.min(old.expiresAt, graceEnd);
  const updated = await store.update(id, { expiresAt, replacedBy: issued.record.id });
  if (updated === null) throw new KeyAdminError(`key ${id} disappeared from ${store.description} during rotation; new key ${issued.record.id} was created`);
  return { ...issued, old: updated };
}

/** Marks the key revoked (keeping the first revocation time) and announces it. */
export async function revokeKey(store: WritableKeyStore, id: string, opts: { now: number }): Promise<{ record: KeyRecord; alreadyRevoked: boolean }> {
  const current = await store.get(id);
  if (current === null) throw new KeyAdminError(`key ${id} not found in ${store.description}`);
  const alreadyRevoked = current.revokedAt !== null;
  // Written (and published) again even when already revoked: a replica that missed the first message drops it now.
  const record = await store.update(id, { revokedAt: current.revokedAt ?? opts.now });
  if (record === null) throw new KeyAdminError(`key ${id} not found in ${store.description}`);
  return { record, alreadyRevoked };
}
