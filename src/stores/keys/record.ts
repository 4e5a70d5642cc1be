/**
 * Conversions between key records and their stored forms: config / key
 * file entries (ISO dates, the `auth.apiKeys` shape) and Redis hashes
 * (flat string fields). Every stored form is validated before it becomes a
 * record.
 */
import { z } from 'zod';
import { ENDPOINT_NAMES } from '../../families/endpoints.ts';
import { ApiKeyEntrySchema, type ApiKeyEntry } from '../../config/schema.ts';
import { ConfigError, describeIssues } from '../../config/errors.ts';
import type { KeyRecord } from './port.ts';

const isoDate = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' });
const keyId = z.string().regex(/^[A-Za-z0-9]{8}$/, 'must be an 8-character key id');

/** A key file entry: the `auth.apiKeys` shape plus what rotation and revocation record. */
export const KeyFileEntrySchema = ApiKeyEntrySchema.extend({
  createdAt: isoDate.optional(),
  /** Any value refuses the key. */
  revokedAt: isoDate.optional(),
  /** The id of the key that replaced this one (`keys rotate`). */
  replacedBy: keyId.optional(),
});
export type KeyFileEntry = z.output<typeof KeyFileEntrySchema>;

export const KeyFileSchema = z.array(KeyFileEntrySchema, { error: 'must be a list of key entries' });

function ms(iso: string | undefined): number | null {
  return iso === undefined ? null : Date.parse(iso);
}

function iso(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(ms).toISOString();
}

export function recordFromEntry(e: ApiKeyEntry | KeyFileEntry): KeyRecord {
  const file = e as Partial<KeyFileEntry>;
  const rec: KeyRecord = {
    id: e.id,
    hash: e.hash,
    principal: e.principal,
    org: e.org,
    tenant: e.tenant,
    tier: e.tier,
    roles: Object.freeze([...e.roles]),
    models: Object.freeze([...e.models]),
    endpoints: Object.freeze([...e.endpoints]),
    createdAt: ms(file.createdAt),
    expiresAt: ms(e.expiresAt),
    revokedAt: ms(file.revokedAt),
    ...(file.replacedBy === undefined ? {} : { replacedBy: file.replacedBy }),
  };
  return Object.freeze(rec);
}

/** The key file form of a record (plain data, ready for YAML/JSON). */
export function entryFromRecord(r: KeyRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: r.id,
    hash: r.hash,
    principal: r.principal,
    org: r.org,
    tenant: r.tenant,
    tier: r.tier,
    roles: [...r.roles],
    models: [...r.models],
    endpoints: [...r.endpoints],
  };
  const created = iso(r.createdAt);
  const expires = iso(r.expiresAt);
  const revoked = iso(r.revokedAt);
  if (created !== undefined) out['createdAt'] = created;
  if (expires !== undefined) out['expiresAt'] = expires;
  if (revoked !== undefined) out['revokedAt'] = revoked;
  if (r.replacedBy !== undefined) out['replacedBy'] = r.replacedBy;
  return out;
}

/**
 * Validates a whole parsed key file; throws a ConfigError naming the file
 * and each bad path (`[2].hash: …`). Duplicate ids are an error.
 */
export function recordsFromKeyFile(raw: unknown, source: string): KeyRecord[] {
  if (raw === null || raw === undefined) throw new ConfigError(source, ['(root): the file is empty (write [] for a file with no keys)']);
  const parsed = KeyFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, describeIssues(parsed.error));
  const seen = new Map<string, number>();
  const problems: string[] = [];
  parsed.data.forEach((e, i) => {
    const first = seen.get(e.id);
    if (first !== undefined) problems.push(`[${i}].id: duplicate key id ${e.id} (also at [${first}])`);
    else seen.set(e.id, i);
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return parsed.data.map(recordFromEntry);
}

// ---- Redis hash form -------------------------------------------------------

const label = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/);
const epochMs = z
  .string()
  .regex(/^\d{1,16}$/, 'must be epoch milliseconds')
  .transform(Number);
const jsonList = <T extends z.ZodType>(item: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON list' });
        return z.NEVER;
      }
    })
    .pipe(z.array(item));

const RedisRecordSchema = z.object({
  id: keyId,
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lower-case hex digits>'),
  principal: label,
  org: label,
  tenant: label,
  tier: label,
  roles: jsonList(label),
  models: jsonList(z.string().min(1)),
  endpoints: jsonList(z.enum([...ENDPOINT_NAMES, '*'])),
  createdAt: epochMs.optional(),
  expiresAt: epochMs.optional(),
  revokedAt: epochMs.optional(),
  replacedBy: keyId.optional(),
});

/** Field/value pairs for HSET. Null fields are left out (absent = null). */
export function redisFieldsFromRecord(r: KeyRecord): string[] {
  const out = [
    'id',
    r.id,
    'hash',
    r.hash,
    'principal',
    r.principal,
    'org',
    r.org,
    'tenant',
    r.tenant,
    'tier',
    r.tier,
    'roles',
    JSON.stringify(r.roles),
    'models',
    JSON.stringify(r.models),
    'endpoints',
    JSON.stringify(r.endpoints),
  ];
  if (r.createdAt !== null) out.push('createdAt', String(r.createdAt));
  if (r.expiresAt !== null) out.push('expiresAt', String(r.expiresAt));
  if (r.revokedAt !== null) out.push('revokedAt', String(r.revokedAt));
  if (r.replacedBy !== undefined) out.push('replacedBy', r.replacedBy);
  return out;
}

/** HGETALL's answer → record; `{}` (no such hash) → null; anything invalid throws. */
export function recordFromRedisFields(fields: Record<string, string>, source: string): KeyRecord | null {
  if (Object.keys(fields).length === 0) return null;
  const parsed = RedisRecordSchema.safeParse(fields);
  if (!parsed.success) throw new Error(`${source} is not a valid key record: ${describeIssues(parsed.error).join('; ')}`);
  const d = parsed.data;
  return Object.freeze({
    id: d.id,
    hash: d.hash,
    principal: d.principal,
    org: d.org,
    tenant: d.tenant,
    tier: d.tier,
    roles: Object.freeze(d.roles),
    models: Object.freeze(d.models),
    endpoints: Object.freeze(d.endpoints),
    createdAt: d.createdAt ?? null,
    expiresAt: d.expiresAt ?? null,
    revokedAt: d.revokedAt ?? null,
    ...(d.replacedBy === undefined ? {} : { replacedBy: d.replacedBy }),
  });
}
