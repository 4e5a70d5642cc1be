/**
 * The desired state in PostgreSQL. Every resource carries a `version`
 * (1 on create, +1 on each change) that the API turns into an ETag; a
 * replace or delete names the version it read and fails with 412 when it
 * changed since (optimistic concurrency). Every change runs in one
 * transaction that first locks the revision row — so changes apply one at a
 * time — bumps the revision, and before committing hands the whole new state
 * to `check` (the routing snapshot it would produce must be valid): a change
 * that would break the data plane is rolled back and refused.
 */
import pg from 'pg';
import type { PoolClient } from 'pg';
import { issueKey, type KeyGrants } from '../stores/keys/admin.ts';
import type { KeyRecord } from '../stores/keys/port.ts';
import type { Endpoint } from '../pipeline/endpoint.ts';
import { ApiError, type FieldProblem, notFound } from './errors.ts';
import { KINDS, type DeploymentSpec, type Kind, type ModelSpec, type TenantSpec } from './resources.ts';
import { migrate } from './migrations.ts';

export interface Stored<T = Record<string, unknown>> {
  readonly id: string;
  readonly version: number;
  readonly spec: T;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a key grants: the sidecars' key store form (src/stores/keys/admin.ts), except that the tier may be left to the tenant's plan. */
export type KeyGrantsSpec = Omit<KeyGrants, 'tier'> & { readonly tier?: string };

/** A key's tier when neither it nor its tenant's plan names one (the key store's default). */
export const DEFAULT_TIER = 'standard';

export interface StoredKey {
  readonly id: string;
  readonly version: number;
  readonly hash: string;
  readonly spec: KeyGrantsSpec;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly replacedBy: string | null;
}

export interface DesiredState {
  readonly revision: number;
  readonly models: readonly Stored<ModelSpec>[];
  readonly deployments: readonly Stored<DeploymentSpec>[];
  readonly plans: readonly Stored[];
  readonly tenants: readonly Stored<TenantSpec>[];
  readonly keys: readonly StoredKey[];
}

/** Problems that make a new state unacceptable (refused with 422), or null. */
export type StateCheck = (state: DesiredState) => FieldProblem[] | null;

export interface Change<T> {
  readonly before: T | null;
  readonly after: T | null;
  readonly revision: number;
  readonly state: DesiredState;
}

const TABLE: Record<Kind, string> = { models: 'models', deployments: 'deployments', plans: 'plans', tenants: 'tenants' };

interface Row {
  id: string;
  version: number;
  spec: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

interface KeyRow extends Row {
  hash: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  replaced_by: string | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

function stored<T>(r: Row): Stored<T> {
  return { id: r.id, version: r.version, spec: r.spec as T, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() };
}

function storedKey(r: KeyRow): StoredKey {
  return {
    id: r.id,
    version: r.version,
    hash: r.hash,
    spec: r.spec as unknown as KeyGrantsSpec,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    expiresAt: iso(r.expires_at),
    revokedAt: iso(r.revoked_at),
    replacedBy: r.replaced_by,
  };
}

/** The sidecars' key record (src/stores/keys) of a stored key; `tenantPlan` is its tenant's plan, if any (the tier it falls back to). */
export function keyRecordOf(k: StoredKey, tenantPlan: string | null = null): KeyRecord {
  return {
    id: k.id,
    hash: k.hash,
    principal: k.spec.principal,
    org: k.spec.org,
    tenant: k.spec.tenant,
    tier: k.spec.tier ?? tenantPlan ?? DEFAULT_TIER,
    roles: [...k.spec.roles],
    models: [...k.spec.models],
    endpoints: [...k.spec.endpoints] as Endpoint[],
    createdAt: Date.parse(k.createdAt),
    expiresAt: k.expiresAt === null ? null : Date.parse(k.expiresAt),
    revokedAt: k.revokedAt === null ? null : Date.parse(k.revokedAt),
    ...(k.replacedBy === null ? {} : { replacedBy: k.replacedBy }),
  };
}

/** PostgreSQL's constraint errors as API errors that name the field. */
function constraintError(err: unknown, kind: string, op: 'write' | 'delete'): never {
  const e = err as { code?: string; constraint?: string; detail?: string };
  if (e.code === '23505') throw new ApiError(409, 'already_exists', `${kind}: ${e.detail ?? 'already exists'}`);
  if (e.code === '23503') {
    if (op === 'delete') throw new ApiError(409, 'in_use', `${kind} is still referenced: ${e.detail ?? e.constraint ?? ''}`.trim());
    const field = /\((\w+)\)=/.exec(e.detail ?? '')?.[1] ?? 'reference';
    const bodyField = { model_id: 'model', plan: 'plan', tenant: 'tenant' }[field] ?? field;
    throw new ApiError(422, 'invalid_reference', `${bodyField}: ${e.detail ?? 'refers to nothing'}`, [
      { field: bodyField, message: e.detail ?? 'refers to nothing' },
    ]);
  }
  throw err;
}

export class DesiredStateStore {
  readonly #pool: pg.Pool;
  readonly #check: StateCheck;

  constructor(opts: { url: string; poolSize?: number; check?: StateCheck }) {
    this.#pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 5 });
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    this.#pool.on('error', () => undefined);
    this.#check = opts.check ?? (() => null);
  }

  migrate(): Promise<number[]> {
    return migrate(this.#pool);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async list(kind: Kind): Promise<Stored[]> {
    const r = await this.#pool.query<Row>(`SELECT * FROM ${TABLE[kind]} ORDER BY id`);
    return r.rows.map((row) => stored(row));
  }

  async get(kind: Kind, id: string): Promise<Stored> {
    const r = await this.#pool.query<Row>(`SELECT * FROM ${TABLE[kind]} WHERE id = $1`, [id]);
    const row = r.rows[0];
    if (row === undefined) throw notFound(KINDS[kind].noun, id);
    return stored(row);
  }

  async listKeys(): Promise<StoredKey[]> {
    return (await this.#pool.query<KeyRow>('SELECT * FROM api_keys ORDER BY id')).rows.map(storedKey);
  }

  async getKey(id: string): Promise<StoredKey> {
    const row = (await this.#pool.query<KeyRow>('SELECT * FROM api_keys WHERE id = $1', [id])).rows[0];
    if (row === undefined) throw notFound('key', id);
    return storedKey(row);
  }

  /** The whole desired state, read in one snapshot of the database. */
  async state(): Promise<DesiredState> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const s = await readState(client);
      await client.query('COMMIT');
      return s;
    } finally {
      client.release();
    }
  }

  async create(kind: Kind, spec: Record<string, unknown>): Promise<Change<Stored>> {
    const info = KINDS[kind];
    const id = String(spec[info.idField]);
    return this.#mutate(async (c) => {
      const cols = ['id', 'version', 'spec', ...(info.ref === undefined ? [] : [info.ref[0]])];
      const vals: unknown[] = [id, 1, JSON.stringify(spec), ...(info.ref === undefined ? [] : [spec[info.ref[1]] ?? null])];
      let row: Row | undefined;
      try {
        row = (
          await c.query<Row>(
            `INSERT INTO ${TABLE[kind]} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (id) DO NOTHING RETURNING *`,
            vals,
          )
        ).rows[0];
      } catch (err) {
        constraintError(err, info.noun, 'write');
      }
      if (row === undefined) throw new ApiError(409, 'already_exists', `${info.noun} "${id}" already exists`);
      return { before: null, after: stored(row) };
    });
  }

  /** Replaces the spec when the resource is still at `ifVersion`. */
  async replace(kind: Kind, id: string, ifVersion: number, spec: Record<string, unknown>): Promise<Change<Stored>> {
    const info = KINDS[kind];
    if (String(spec[info.idField]) !== id) {
      throw new ApiError(422, 'invalid_body', `${info.idField}: must be "${id}" (the id in the path; an id cannot change)`, [
        { field: info.idField, message: `must be "${id}"` },
      ]);
    }
    return this.#mutate(async (c) => {
      const before = await lockRow(c, kind, id, ifVersion);
      const set = ['version = version + 1', 'spec = $2', 'updated_at = now()', ...(info.ref === undefined ? [] : [`${info.ref[0]} = $3`])];
      const vals: unknown[] = [id, JSON.stringify(spec), ...(info.ref === undefined ? [] : [spec[info.ref[1]] ?? null])];
      let row: Row | undefined;
      try {
        row = (await c.query<Row>(`UPDATE ${TABLE[kind]} SET ${set.join(', ')} WHERE id = $1 RETURNING *`, vals)).rows[0];
      } catch (err) {
        constraintError(err, info.noun, 'write');
      }
      return { before, after: row === undefined ? null : stored(row) };
    });
  }

  async delete(kind: Kind, id: string, ifVersion: number): Promise<Change<Stored>> {
    const info = KINDS[kind];
    return this.#mutate(async (c) => {
      const before = await lockRow(c, kind, id, ifVersion);
      try {
        await c.query(`DELETE FROM ${TABLE[kind]} WHERE id = $1`, [id]);
      } catch (err) {
        constraintError(err, info.noun, 'delete');
      }
      return { before, after: null };
    });
  }

  /** A new key: the key itself is returned once, only its hash is stored. */
  async createKey(grants: KeyGrantsSpec, expiresAt: string | null): Promise<Change<StoredKey> & { key: string }> {
    // Only the new key and its hash are used from this record; the tier in it is not stored.
    const issued = issueKey({ ...grants, tier: grants.tier ?? DEFAULT_TIER }, { now: Date.now(), expiresAt: null });
    const change = await this.#mutate(async (c) => {
      let row: KeyRow | undefined;
      try {
        row = (
          await c.query<KeyRow>('INSERT INTO api_keys (id, hash, tenant, version, spec, expires_at) VALUES ($1, $2, $3, 1, $4, $5) RETURNING *', [
            issued.record.id,
            issued.record.hash,
            grants.tenant,
            JSON.stringify(grants),
            expiresAt,
          ])
        ).rows[0];
      } catch (err) {
        constraintError(err, 'key', 'write');
      }
      return { before: null, after: row === undefined ? null : storedKey(row) };
    });
    return { ...change, key: issued.key };
  }

  /** Changes a key's grants or expiry; revocation and rotation have their own verbs. */
  async updateKey(
    id: string,
    ifVersion: number,
    change: Partial<Omit<KeyGrantsSpec, 'tier'>> & { tier?: string | null; expiresAt?: string | null },
  ): Promise<Change<StoredKey>> {
    return this.#mutate(async (c) => {
      const before = await lockKey(c, id, ifVersion);
      const { expiresAt, ...grants } = change;
      // null (merge patch) removes the field: a tier of null means "follow the tenant's plan" again.
      const spec: Record<string, unknown> = { ...before.spec, ...Object.fromEntries(Object.entries(grants).filter(([, v]) => v !== undefined)) };
      for (const [k, v] of Object.entries(grants)) if (v === null) delete spec[k];
      const row = (
        await c.query<KeyRow>('UPDATE api_keys SET version = version + 1, spec = $2, expires_at = $3, updated_at = now() WHERE id = $1 RETURNING *', [
          id,
          JSON.stringify(spec),
          expiresAt === undefined ? before.expiresAt : expiresAt,
        ])
      ).rows[0];
      return { before, after: row === undefined ? null : storedKey(row) };
    });
  }

  async revokeKey(id: string, ifVersion: number): Promise<Change<StoredKey>> {
    return this.#mutate(async (c) => {
      const before = await lockKey(c, id, ifVersion);
      const row = (
        await c.query<KeyRow>(
          'UPDATE api_keys SET version = version + 1, revoked_at = COALESCE(revoked_at, now()), updated_at = now() WHERE id = $1 RETURNING *',
          [id],
        )
      ).rows[0];
      return { before, after: row === undefined ? null : storedKey(row) };
    });
  }

  /** A new key with the old one's grants; the old one expires after `graceMs` (never later than it already would). */
  async rotateKey(id: string, ifVersion: number, graceMs: number, expiresAt: string | null): Promise<Change<StoredKey> & { key: string; created: StoredKey }> {
    let key = '';
    let created: StoredKey | null = null;
    const change = await this.#mutate(async (c) => {
      const before = await lockKey(c, id, ifVersion);
      if (before.revokedAt !== null) throw new ApiError(409, 'revoked', `key ${id} is revoked; create a new key instead of rotating it`);
      const issued = issueKey({ ...before.spec, tier: before.spec.tier ?? DEFAULT_TIER }, { now: Date.now(), expiresAt: null });
      key = issued.key;
      const newRow = (
        await c.query<KeyRow>('INSERT INTO api_keys (id, hash, tenant, version, spec, expires_at) VALUES ($1, $2, $3, 1, $4, $5) RETURNING *', [
          issued.record.id,
          issued.record.hash,
          before.spec.tenant,
          JSON.stringify(before.spec),
          expiresAt,
        ])
      ).rows[0];
      created = newRow === undefined ? null : storedKey(newRow);
      const graceEnd = new Date(Date.now() + graceMs);
      const row = (
        await c.query<KeyRow>(
          `UPDATE api_keys SET version = version + 1, replaced_by = $2, updated_at = now(),
             expires_at = CASE WHEN expires_at IS NULL OR expires_at > $3 THEN $3 ELSE expires_at END
           WHERE id = $1 RETURNING *`,
          [id, issued.record.id, graceEnd],
        )
      ).rows[0];
      return { before, after: row === undefined ? null : storedKey(row) };
    });
    if (created === null) throw new Error('rotation created no key');
    return { ...change, key, created };
  }

  async #mutate<T>(fn: (c: PoolClient) => Promise<{ before: T | null; after: T | null }>): Promise<Change<T>> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      try {
        // Changes apply one at a time: each sees the state the previous one committed.
        const rev = await client.query<{ value: string }>('UPDATE revision SET value = value + 1 RETURNING value');
        const { before, after } = await fn(client);
        const state = await readState(client);
        const problems = this.#check(state);
        if (problems !== null && problems.length > 0) {
          throw new ApiError(422, 'invalid_state', 'the change would make the routing snapshot invalid; nothing was changed', problems);
        }
        await client.query('COMMIT');
        return { before, after, revision: Number(rev.rows[0]?.value ?? 0), state };
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    } finally {
      client.release();
    }
  }
}

async function lockRow(c: PoolClient, kind: Kind, id: string, ifVersion: number): Promise<Stored> {
  const row = (await c.query<Row>(`SELECT * FROM ${TABLE[kind]} WHERE id = $1 FOR UPDATE`, [id])).rows[0];
  if (row === undefined) throw notFound(KINDS[kind].noun, id);
  if (row.version !== ifVersion) throw versionMismatch(KINDS[kind].noun, id, row.version, ifVersion);
  return stored(row);
}

async function lockKey(c: PoolClient, id: string, ifVersion: number): Promise<StoredKey> {
  const row = (await c.query<KeyRow>('SELECT * FROM api_keys WHERE id = $1 FOR UPDATE', [id])).rows[0];
  if (row === undefined) throw notFound('key', id);
  if (row.version !== ifVersion) throw versionMismatch('key', id, row.version, ifVersion);
  return storedKey(row);
}

function versionMismatch(noun: string, id: string, current: number, given: number): ApiError {
  return new ApiError(412, 'version_mismatch', `${noun} "${id}" is at version ${current}, not ${given}: read it again and re-apply your change`);
}

async function readState(c: PoolClient): Promise<DesiredState> {
  const q = async <T>(sql: string): Promise<T[]> => (await c.query(sql)).rows as T[];
  const revision = Number((await q<{ value: string }>('SELECT value FROM revision'))[0]?.value ?? 0);
  return {
    revision,
    models: (await q<Row>('SELECT * FROM models ORDER BY id')).map((r) => stored<ModelSpec>(r)),
    deployments: (await q<Row>('SELECT * FROM deployments ORDER BY id')).map((r) => stored<DeploymentSpec>(r)),
    plans: (await q<Row>('SELECT * FROM plans ORDER BY id')).map((r) => stored(r)),
    tenants: (await q<Row>('SELECT * FROM tenants ORDER BY id')).map((r) => stored<TenantSpec>(r)),
    keys: (await q<KeyRow>('SELECT * FROM api_keys ORDER BY id')).map(storedKey),
  };
}
