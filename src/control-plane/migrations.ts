/**
 * The desired state's schema, as numbered migrations applied by the control
 * plane itself at start: each in its own transaction together with its row
 * in `schema_migrations`, under an advisory lock so two control planes
 * starting together apply each migration once. Applied migrations are never
 * edited: a change is a new number.
 */
import type { Pool } from 'pg';

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'desired state: models, deployments, plans, tenants, api keys, revision',
    sql: `
      CREATE TABLE models (
        id text PRIMARY KEY,
        version integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE deployments (
        id text PRIMARY KEY,
        model_id text NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
        version integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX deployments_model ON deployments (model_id);
      CREATE TABLE plans (
        id text PRIMARY KEY,
        version integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE tenants (
        id text PRIMARY KEY,
        plan text REFERENCES plans (id) ON DELETE RESTRICT,
        version integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        tenant text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
        version integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        replaced_by text
      );
      -- One row: bumped by every change; the snapshot version is cp-<revision>. Mutations lock it, so they apply one at a time.
      CREATE TABLE revision (one boolean PRIMARY KEY DEFAULT true CHECK (one), value bigint NOT NULL);
      INSERT INTO revision (value) VALUES (0);
    `,
  },
];

/** An arbitrary constant: the advisory lock that serializes migrating control planes. */
const LOCK = 7_017_017;

/** Applies the migrations not applied yet, in order; returns the ids it applied. */
export async function migrate(pool: Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set((await client.query<{ id: number }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
      for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
        if (done.has(m.id)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${m.id} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.id);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK]);
    }
  } finally {
    client.release();
  }
  return applied;
}
