/**
 * `inference-gateway keys create|list|rotate|revoke|hash`.
 *
 * The store is chosen per command: `--redis URL` (runtime-managed keys, see
 * auth.redisKeys) or `--file PATH` (a key file, see auth.apiKeyFiles; edited
 * atomically). `create` with neither prints the auth.apiKeys entry to paste
 * into the config. A new key is printed once, alone on its line, on stdout;
 * everything else goes to stderr (`list` prints its table on stdout).
 */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ApiKeyEntrySchema } from '../config/schema.ts';
import { hashApiKey, parseApiKey } from '../crypto/api-key-format.ts';
import { createKey, issueKey, revokeKey, rotateKey, type KeyGrants } from '../stores/keys/admin.ts';
import { KeyFile } from '../stores/keys/file.ts';
import { keyStatus, type KeyRecord, type WritableKeyStore } from '../stores/keys/port.ts';
import { entryFromRecord } from '../stores/keys/record.ts';
import { RedisKeyStore } from '../stores/keys/redis.ts';
import { createLogger } from '../telemetry/logger.ts';
import { asUsage, type CommandGroup, dispatch, usage, UsageError } from './dispatch.ts';

const KEYS: CommandGroup = {
  name: 'keys',
  header: 'Usage: inference-gateway keys <command> [options]\n\nCommands:\n',
  commands: {
    create: {
      usage: `  create --principal P --org O --tenant T [--tier standard] [--role R]... [--model ID]... [--endpoint E]... [--expires ISO]
      Makes a key. The key is printed once on stdout. With --redis or --file it is stored
      (hash only); with neither, the auth.apiKeys entry to add to the config is printed on stderr.
`,
      run: create,
    },
    list: {
      usage: `  list [--show-hashes] [--json]
      Lists keys: id, principal, org, tenant, tier, status (active/expired/revoked), expiry.
`,
      run: list,
    },
    rotate: {
      usage: `  rotate ID [--grace 24h] [--expires ISO]
      Makes a new key with ID's grants; ID keeps working for the grace period (s, m, h, d), then
      expires. --expires sets the new key's own expiry.
`,
      run: rotate,
    },
    revoke: {
      usage: `  revoke ID
      Refuses ID from now on; with --redis every gateway drops it from its cache at once.
`,
      run: revoke,
    },
    hash: {
      usage: `  hash < keyfile
      Prints the stored form (sha256:…) of a key read from stdin.
`,
      run: hash,
    },
  },
  footer: `
Store (create, list, rotate, revoke):
  --redis URL        keys in Redis (the gateway's auth.redisKeys), e.g. redis://127.0.0.1:6379/0
  --prefix P         Redis key prefix (redis.keyPrefix; default igw:)
  --file PATH        a YAML or JSON key file (auth.apiKeyFiles); created by 'create' if missing
  --timeout-ms N     Redis command timeout for this command (default 5000)
`,
  // Anything else (an unknown id, an unreadable key file, Redis down) is the operation failing: exit 1 with its message.
  exitCodeFor: () => 1,
};

const STORE_OPTIONS = {
  redis: { type: 'string' },
  prefix: { type: 'string', default: 'igw:' },
  file: { type: 'string' },
  'timeout-ms': { type: 'string', default: '5000' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function keysCommand(argv: string[]): Promise<number> {
  return dispatch(KEYS, argv);
}

type StoreValues = { redis?: string; prefix?: string; file?: string; 'timeout-ms'?: string };

/** The store named on the command line; null when neither --redis nor --file is given. */
function openStore(v: StoreValues): WritableKeyStore | null {
  if (v.redis !== undefined && v.file !== undefined) throw new UsageError('give either --redis or --file, not both');
  if (v.file !== undefined) return new KeyFile(v.file);
  if (v.redis === undefined) return null;
  if (!/^rediss?:\/\//.test(v.redis)) throw new UsageError('--redis must be a redis:// or rediss:// URL');
  const timeout = Number(v['timeout-ms'] ?? '5000');
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError('--timeout-ms must be a positive integer');
  return new RedisKeyStore({
    url: v.redis,
    keyPrefix: v.prefix ?? 'igw:',
    commandTimeoutMs: timeout,
    cacheSeconds: 0,
    subscribe: false,
    log: createLogger('silent', process.stderr), // failures reach the operator as the command's error
  });
}

function requireStore(v: StoreValues): WritableKeyStore {
  const store = openStore(v);
  if (store === null) throw new UsageError('name the key store: --redis URL or --file PATH');
  return store;
}

async function withStore<T>(store: WritableKeyStore, fn: (s: WritableKeyStore) => Promise<T>): Promise<T> {
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function parseIso(value: string, flag: string): number {
  const ok = ApiKeyEntrySchema.shape.expiresAt.safeParse(value);
  if (!ok.success) throw new UsageError(`${flag} must be an ISO 8601 date-time with an offset (e.g. 2026-12-31T00:00:00Z)`);
  return Date.parse(value);
}

/** `90s`, `30m`, `24h`, `7d`, `500ms`; a bare number is seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (m === null) throw new UsageError(`'${value}' is not a duration (e.g. 30m, 24h, 7d)`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's'] ?? 1000;
  return n * unit;
}

const FLAG_FOR_FIELD: Record<string, string> = {
  principal: '--principal',
  org: '--org',
  tenant: '--tenant',
  tier: '--tier',
  roles: '--role',
  models: '--model',
  endpoints: '--endpoint',
  expiresAt: '--expires',
};

async function create(argv: string[]): Promise<number> {
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        ...STORE_OPTIONS,
        principal: { type: 'string' },
        org: { type: 'string' },
        tenant: { type: 'string' },
        tier: { type: 'string', default: 'standard' },
        role: { type: 'string', multiple: true },
        model: { type: 'string', multiple: true },
        endpoint: { type: 'string', multiple: true },
        expires: { type: 'string' },
      },
    }),
  );
  if (values.help === true) {
    process.stdout.write(usage(KEYS));
    return 0;
  }
  if (values.principal === undefined || values.org === undefined || values.tenant === undefined) {
    throw new UsageError('--principal, --org and --tenant are required');
  }
  // Validate the grants exactly as the gateway will (labels, endpoint names, date).
  const candidate = ApiKeyEntrySchema.safeParse({
    id: 'AAAAAAAA',
    hash: `sha256:${'0'.repeat(64)}`,
    principal: values.principal,
    org: values.org,
    tenant: values.tenant,
    tier: values.tier,
    roles: values.role ?? [],
    models: values.model ?? ['*'],
    endpoints: values.endpoint ?? ['*'],
    ...(values.expires === undefined ? {} : { expiresAt: values.expires }),
  });
  if (!candidate.success) {
    const lines = candidate.error.issues.map((i) => {
      const field = String(i.path[0] ?? '');
      return `${FLAG_FOR_FIELD[field] ?? field}: ${i.message}`;
    });
    throw new UsageError(lines.join('; '));
  }
  const e = candidate.data;
  const grants: KeyGrants = { principal: e.principal, org: e.org, tenant: e.tenant, tier: e.tier, roles: e.roles, models: e.models, endpoints: e.endpoints };
  const expiresAt = e.expiresAt === undefined ? null : Date.parse(e.expiresAt);
  const now = Date.now();
  const store = openStore(values);
  if (store === null) {
    const { key, record } = issueKey(grants, { now, expiresAt });
    const entry = entryFromRecord(record);
    delete entry['createdAt']; // not part of the inline auth.apiKeys shape
    process.stdout.write(`${key}\n`);
    process.stderr.write('\nThe key above is shown once. Add this entry under auth.apiKeys:\n');
    process.stderr.write(stringify([entry]));
    return 0;
  }
  const { key, record } = await withStore(store, (s) => createKey(s, grants, { now, expiresAt }));
  process.stdout.write(`${key}\n`);
  process.stderr.write(`\nCreated key ${record.id} for ${record.principal} (org ${record.org}, tenant ${record.tenant}) in ${store.description}.\n`);
  process.stderr.write('The key above is shown once; only its hash is stored.\n');
  return 0;
}

function formatTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

async function list(argv: string[]): Promise<number> {
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: { ...STORE_OPTIONS, 'show-hashes': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
    }),
  );
  if (values.help === true) {
    process.stdout.write(usage(KEYS));
    return 0;
  }
  const store = requireStore(values);
  const records = await withStore(store, (s) => s.list());
  const now = Date.now();
  const showHashes = values['show-hashes'] === true;
  if (values.json === true) {
    const out = records.map((r) => {
      const entry = entryFromRecord(r);
      if (!showHashes) delete entry['hash'];
      return { ...entry, status: keyStatus(r, now) };
    });
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const header = ['ID', 'PRINCIPAL', 'ORG', 'TENANT', 'TIER', 'STATUS', 'EXPIRES', 'REPLACED_BY', ...(showHashes ? ['HASH'] : [])];
  const rows = records.map((r: KeyRecord) => [
    r.id,
    r.principal,
    r.org,
    r.tenant,
    r.tier,
    keyStatus(r, now),
    formatTime(r.expiresAt),
    r.replacedBy ?? '-',
    ...(showHashes ? [r.hash] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
  process.stderr.write(`${records.length} key(s) in ${store.description}\n`);
  return 0;
}

function onePositional(positionals: string[], verb: string): string {
  if (positionals.length !== 1 || positionals[0] === undefined) throw new UsageError(`usage: keys ${verb} ID (--redis URL | --file PATH)`);
  const id = positionals[0];
  if (!/^[A-Za-z0-9]{8}$/.test(id)) throw new UsageError(`'${id}' is not a key id (8 letters and digits; the part after igw_)`);
  return id;
}

async function rotate(argv: string[]): Promise<number> {
  const { values, positionals } = asUsage(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...STORE_OPTIONS, grace: { type: 'string', default: '24h' }, expires: { type: 'string' } },
    }),
  );
  if (values.help === true) {
    process.stdout.write(usage(KEYS));
    return 0;
  }
  const id = onePositional(positionals, 'rotate');
  const graceMs = parseDuration(values.grace ?? '24h');
  const expiresAt = values.expires === undefined ? null : parseIso(values.expires, '--expires');
  const store = requireStore(values);
  const now = Date.now();
  const r = await withStore(store, (s) => rotateKey(s, id, { now, graceMs, expiresAt }));
  process.stdout.write(`${r.key}\n`);
  process.stderr.write(
    `\nRotated key ${id} → ${r.record.id} (${r.record.principal}, org ${r.record.org}, tenant ${r.record.tenant}) in ${store.description}.\n`,
  );
  process.stderr.write(`Key ${id} keeps working until ${formatTime(r.old.expiresAt)}, then is refused. The new key above is shown once.\n`);
  return 0;
}

async function revoke(argv: string[]): Promise<number> {
  const { values, positionals } = asUsage(() => parseArgs({ args: argv, allowPositionals: true, options: STORE_OPTIONS }));
  if (values.help === true) {
    process.stdout.write(usage(KEYS));
    return 0;
  }
  const id = onePositional(positionals, 'revoke');
  const store = requireStore(values);
  const r = await withStore(store, (s) => revokeKey(s, id, { now: Date.now() }));
  const when = formatTime(r.record.revokedAt);
  process.stderr.write(
    r.alreadyRevoked
      ? `Key ${id} was already revoked (at ${when}); the revocation was announced again.\n`
      : `Revoked key ${id} at ${when} in ${store.description}.\n`,
  );
  process.stderr.write(
    values.redis !== undefined
      ? 'Gateways refuse it within a second (pub/sub); one that missed the message, within auth.keyCacheSeconds.\n'
      : 'Gateways reading this file refuse it within about a second of seeing the new file.\n',
  );
  return 0;
}

async function hash(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const key = Buffer.concat(chunks).toString('utf8').trim();
  if (!parseApiKey(key).ok) {
    process.stderr.write('keys hash: that is not a well-formed inference-gateway key (bad shape or checksum)\n');
    return 1;
  }
  process.stdout.write(`${hashApiKey(key)}\n`);
  return 0;
}
