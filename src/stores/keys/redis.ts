/**
 * Keys managed at runtime in Redis (`inference-gateway keys … --redis`).
 *
 * Layout (all names under `redis.keyPrefix`, default `igw:`):
 *   <prefix>key:<id>      one hash per key: id, hash, principal, org, tenant,
 *                         tier, roles/models/endpoints (JSON lists), createdAt,
 *                         expiresAt, revokedAt (epoch ms; absent = none),
 *                         replacedBy
 *   <prefix>keys:revoked  pub/sub channel; the message is a key id whose
 *                         record changed (revoked, rotated): every replica
 *                         drops its cached record; or `created:<id>`: every
 *                         replica forgets having seen the id unknown
 *
 * Failure behaviour: the command connection connects lazily, never queues
 * commands while disconnected (`enableOfflineQueue: false`), gives each
 * command `commandTimeoutMs`, and retries a request at most once, so a dead
 * Redis turns into a rejected lookup (→ 503) within that bound instead of a
 * request that hangs. Reconnection runs in the background (backoff capped at
 * 1 s), so the store recovers by itself when Redis comes back.
 *
 * Cache: found records are served locally for `cacheSeconds`. A second
 * connection subscribes to the revocation channel; a message drops that id
 * at once, and every (re)subscription drops the whole cache because
 * messages sent while it was down are lost. So a revoked key is refused
 * within milliseconds normally, and within `cacheSeconds` at worst.
 * Unknown ids are not cached here (the verifier's negative cache does that).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyRecord, KeyUpdate, WritableKeyStore } from './port.ts';
import { recordFromRedisFields, redisFieldsFromRecord } from './record.ts';
import { describeRedisUrl, ioredisLink, type RedisClientOptions, RedisConnectionState, type RedisConnectionProblem } from '../redis-connection.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';

export interface RedisKeyStoreOptions {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  readonly keyPrefix: string;
  /** Bound on each command, and on waiting for a connection being set up. */
  readonly commandTimeoutMs: number;
  /** How long a found record may be served from the local cache; 0 disables it. */
  readonly cacheSeconds: number;
  readonly log: Logger;
  /** Subscribe to revocations (replicas: yes, the default; the CLI: no). */
  readonly subscribe?: boolean;
  readonly now?: () => number;
}

const MAX_CACHED = 100_000;

/** KEYS[1] = record key; ARGV = HSET field/value pairs. Refuses to overwrite. */
/** Prefix of a creation's message on the channel (a bare id is a changed record). */
const CREATED = 'created:';

const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PUBLISH', KEYS[2], 'created:' .. ARGV[1])
return 1`;

/**
 * KEYS[1] = record key, KEYS[2] = revocation channel.
 * ARGV[1] = id, ARGV[2] = number of field/value pairs to set, then the pairs,
 * then the fields to delete. Publishes the id; returns the record or 0.
 */
const UPDATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * n)) end
for i = 3 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[1])`;

/** Glob-escapes a prefix for SCAN MATCH. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function pairsToObject(flat: readonly unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

export class RedisKeyStore implements WritableKeyStore {
  readonly description: string;
  readonly #redis: Redis;
  readonly #sub: Redis | null;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #timeoutMs: number;
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #conn: RedisConnectionState;
  readonly #cache = new BoundedCache<string, KeyRecord>(MAX_CACHED);
  /** Bumped on every invalidation: a lookup that started before one must not fill the cache. */
  #epoch = 0;
  #subscribed = false;
  readonly #listeners: Array<(id: string | null) => void> = [];
  #subscribedWaiters: Array<() => void> = [];
  #closed = false;

  constructor(opts: RedisKeyStoreOptions) {
    this.description = describeRedisUrl(opts.url);
    this.#prefix = opts.keyPrefix;
    this.#channel = `${opts.keyPrefix}keys:revoked`;
    this.#timeoutMs = opts.commandTimeoutMs;
    this.#cacheMs = opts.cacheSeconds * 1000;
    this.#now = opts.now ?? Date.now;
    const common: RedisClientOptions = {
      lazyConnect: true,
      connectTimeout: Math.max(1000, 4 * opts.commandTimeoutMs),
      retryStrategy: (times) => Math.min(100 * times, 1000),
      connectionName: 'inference-gateway-keys',
      // close() should not keep the process alive for ioredis' default 2 s when Redis is down.
      disconnectTimeout: 200,
    };
    this.#redis = new Redis(opts.url, {
      ...common,
      commandTimeout: opts.commandTimeoutMs,
      // A silent dead peer: destroy the socket so reconnection starts.
      socketTimeout: Math.max(1000, 4 * opts.commandTimeoutMs),
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
    });
    this.#conn = new RedisConnectionState(ioredisLink(this.#redis), {
      description: this.description,
      log: opts.log,
      label: 'Redis key store',
      isClosed: () => this.#closed,
      logFields: { connection: 'command' },
    });
    this.#sub = opts.subscribe === false ? null : this.#subscribe(opts.url, common);
  }

  /** The pub/sub channel revocations are announced on. */
  get channel(): string {
    return this.#channel;
  }

  /** Resolves once the revocation subscription is live (immediately without one). */
  whenSubscribed(): Promise<void> {
    if (this.#sub === null || this.#subscribed) return Promise.resolve();
    return new Promise((resolve) => this.#subscribedWaiters.push(resolve));
  }

  onChange(listener: (id: string | null) => void): void {
    this.#listeners.push(listener);
  }

  async get(id: string): Promise<KeyRecord | null> {
    const now = this.#now();
    const hit = this.#cache.get(id, now);
    if (hit !== undefined) return hit;
    const epoch = this.#epoch;
    const record = await this.#read(id);
    if (record !== null && this.#cacheMs > 0 && epoch === this.#epoch && !this.#closed) {
      this.#cache.set(id, record, now + this.#cacheMs);
    }
    return record;
  }

  async list(): Promise<KeyRecord[]> {
    await this.#ready();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.#redis.scan(cursor, 'MATCH', `${globEscape(this.#prefix)}key:*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    keys.sort();
    const out: KeyRecord[] = [];
    for (const key of keys) {
      const rec = recordFromRedisFields(await this.#redis.hgetall(key), key);
      if (rec !== null) out.push(rec);
    }
    return out;
  }

  async create(record: KeyRecord): Promise<void> {
    await this.#ready();
    // Announced like a revocation: replicas that remembered the id as unknown forget that at once.
    const created = await this.#redis.eval(CREATE_LUA, 2, this.#key(record.id), this.#channel, record.id, ...redisFieldsFromRecord(record));
    if (created !== 1) throw new Error(`key id ${record.id} already exists in ${this.description}`);
  }

  async update(id: string, change: KeyUpdate): Promise<KeyRecord | null> {
    await this.#ready();
    const set: string[] = [];
    const del: string[] = [];
    if (change.expiresAt !== undefined) {
      if (change.expiresAt === null) del.push('expiresAt');
      else set.push('expiresAt', String(change.expiresAt));
    }
    if (change.revokedAt !== undefined) set.push('revokedAt', String(change.revokedAt));
    if (change.replacedBy !== undefined) set.push('replacedBy', change.replacedBy);
    const reply = await this.#redis.eval(UPDATE_LUA, 2, this.#key(id), this.#channel, id, String(set.length / 2), ...set, ...del);
    this.#invalidate(id);
    if (!Array.isArray(reply)) return null;
    return recordFromRedisFields(pairsToObject(reply), this.#key(id));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clear();
    for (const w of this.#subscribedWaiters.splice(0)) w();
    this.#redis.disconnect();
    this.#sub?.disconnect();
  }

  #key(id: string): string {
    return `${this.#prefix}key:${id}`;
  }

  async #read(id: string): Promise<KeyRecord | null> {
    await this.#ready();
    const key = this.#key(id);
    return recordFromRedisFields(await this.#redis.hgetall(key), key);
  }

  /**
   * Ready → go. A connection being set up → wait for it, at most the command
   * timeout. Down (waiting to reconnect) or closed → fail now.
   */
  #ready(): Promise<void> {
    return this.#conn.ready(this.#timeoutMs, (problem: RedisConnectionProblem) => {
      switch (problem) {
        case 'closed':
          return new Error('the Redis key store is closed');
        case 'unreachable':
          return new Error(`Redis (${this.description}) is unreachable${this.#conn.why()}`);
        case 'timeout':
          return new Error(`Redis (${this.description}) did not connect within ${this.#timeoutMs} ms`);
      }
    });
  }

  #invalidate(id: string | null): void {
    this.#epoch++;
    if (id === null) this.#cache.clear();
    else this.#cache.delete(id);
    for (const l of this.#listeners) l(id);
  }

  #subscribe(url: string, common: RedisClientOptions): Redis {
    const sub = new Redis(url, {
      ...common,
      connectionName: 'inference-gateway-keys-sub',
      // Subscribed by hand on every (re)connect, so the cache can be dropped once it is live again.
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    sub.on('error', (err: Error) => this.#subscriberError(err));
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      // A creation changes no cached record (a fresh read may already hold it): only the ids remembered as unknown go.
      if (message.startsWith(CREATED)) for (const l of this.#listeners) l(message.slice(CREATED.length));
      else this.#invalidate(message);
    });
    sub.on('close', () => {
      this.#subscribed = false;
    });
    sub.on('ready', () => {
      sub.subscribe(this.#channel).then(
        () => {
          // Messages sent while we were not listening are lost: forget everything.
          this.#invalidate(null);
          this.#subscribed = true;
          for (const w of this.#subscribedWaiters.splice(0)) w();
        },
        (err: unknown) => this.#subscriberError(err instanceof Error ? err : new Error(String(err))),
      );
    });
    sub.connect().catch(() => undefined);
    return sub;
  }

  /** The subscriber's errors count as failing, but `why()` keeps describing the command connection. */
  #subscriberError(err: Error): void {
    this.#conn.noteError(err, { connection: 'subscriber' }, false);
  }
}
