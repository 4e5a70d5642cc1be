/**
 * Operator revocations of OAuth tokens, shared by every replica through Redis:
 *
 *   <prefix>tokens:revoked   a set of entries `jti:<id>`, `sub:<subject>`, `sha256:<hex of the token>`
 *   <prefix>tokens:revoked   the pub/sub channel on which each new entry is announced, and each
 *                            withdrawn one as `-<entry>` (an operator undoing a revocation)
 *
 * Each replica holds the whole set in memory (revocations are few; checking
 * them costs nothing per request), adds announced entries at once, and
 * re-reads the set every time its subscription (re)starts, so an entry
 * announced while it was disconnected is not lost. Until the first read
 * succeeds the list is unknown, and introspected tokens are refused with
 * 503 rather than accepted unchecked.
 *
 * An entry is added to (or removed from) the set and announced in one
 * script, so a replica that reads the set after subscribing cannot miss it.
 * A replica of an older version ignores a withdrawal until its next re-read:
 * it keeps refusing, never accepts too early.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { GatewayError } from '../../pipeline/errors.ts';
import { describeRedisUrl, type RedisClientOptions } from '../redis-connection.ts';

export type RevocationKind = 'jti' | 'sub' | 'sha256';

export interface Revocation {
  readonly kind: RevocationKind;
  readonly value: string;
}

/** What a token is matched against (mirrors the verifier's RevocationRef). */
export interface RevocationTarget {
  readonly subject: string;
  readonly jti: string | null;
  readonly tokenSha256: string;
}

const REVOKE_LUA = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[2], ARGV[1]) end
return 1`;

/** Returns 1 when the entry was there (and the withdrawal was announced), 0 when it was not. */
const UNREVOKE_LUA = `
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[2], '-' .. ARGV[1]) return 1 end
return 0`;

const ENTRY = /^(jti|sub|sha256):(.{1,512})$/s;

export function revocationEntry(r: Revocation): string {
  if (r.value === '' || r.value.length > 512) throw new Error('a revoked value must be 1-512 characters');
  if (r.kind === 'sha256' && !/^[0-9a-f]{64}$/.test(r.value)) throw new Error('a token digest must be 64 lower-case hex digits');
  return `${r.kind}:${r.value}`;
}

export interface RedisTokenRevocationsOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly log: Logger;
}

export class RedisTokenRevocations {
  readonly description: string;
  readonly #key: string;
  readonly #redis: Redis;
  readonly #sub: Redis;
  readonly #log: Logger;
  /** null until the set was read once. */
  #entries: Set<string> | null = null;
  /**
   * Entries announced (true) or withdrawn (false) since the current (re)read began: they may postdate the read, so
   * they are applied to its result, the last announcement of each entry winning (Redis publishes in apply order).
   */
  readonly #heard = new Map<string, boolean>();
  #loadedWaiters: Array<() => void> = [];
  #closed = false;

  constructor(opts: RedisTokenRevocationsOptions) {
    this.description = describeRedisUrl(opts.url);
    this.#key = `${opts.keyPrefix}tokens:revoked`;
    this.#log = opts.log;
    const common: RedisClientOptions = {
      lazyConnect: true,
      connectTimeout: Math.max(1000, 4 * opts.commandTimeoutMs),
      retryStrategy: (times) => Math.min(100 * times, 1000),
      disconnectTimeout: 200,
    };
    this.#redis = new Redis(opts.url, {
      ...common,
      connectionName: 'inference-gateway-token-revocations',
      commandTimeout: opts.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
    });
    this.#redis.on('error', () => undefined);
    this.#sub = new Redis(opts.url, {
      ...common,
      connectionName: 'inference-gateway-token-revocations-sub',
      // Subscribed by hand on every (re)connect, so the set is re-read once the channel is live again.
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    this.#sub.on('error', (err: Error) => {
      if (!this.#closed) this.#log.warn({ err: err.message, redis: this.description }, 'token revocation subscriber error');
    });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#key) return;
      const withdrawn = message.startsWith('-');
      const entry = withdrawn ? message.slice(1) : message;
      if (!ENTRY.test(entry)) return;
      this.#heard.set(entry, !withdrawn);
      if (withdrawn) this.#entries?.delete(entry);
      else this.#entries?.add(entry);
    });
    this.#sub.on('ready', () => {
      void this.#resync();
    });
  }

  /** Connects and subscribes; resolves once the set has been read (or after `timeoutMs`, still unknown). */
  async start(timeoutMs: number): Promise<boolean> {
    this.#sub.connect().catch(() => undefined);
    this.#redis.connect().catch(() => undefined);
    if (this.#entries !== null) return true;
    let timer: NodeJS.Timeout | undefined;
    const loaded = await Promise.race([
      new Promise<boolean>((resolve) => this.#loadedWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return loaded;
  }

  get loaded(): boolean {
    return this.#entries !== null;
  }

  /** The verifier's RevocationList: issuer-independent entries (a jti or subject revoked anywhere is revoked). */
  isRevoked(t: RevocationTarget): boolean {
    const entries = this.#entries;
    if (entries === null) {
      throw new GatewayError('authentication_unavailable', 'The token revocation list has not been loaded yet; the token cannot be checked.');
    }
    return entries.has(`sha256:${t.tokenSha256}`) || entries.has(`sub:${t.subject}`) || (t.jti !== null && entries.has(`jti:${t.jti}`));
  }

  /** Adds the entry to the set and announces it; every replica stops accepting it at once. */
  async revoke(r: Revocation): Promise<void> {
    await this.#redis.eval(REVOKE_LUA, 2, this.#key, this.#key, revocationEntry(r));
  }

  /** Removes the entry and announces it; every replica accepts it again at once. False when it was not revoked. */
  async unrevoke(r: Revocation): Promise<boolean> {
    return (await this.#redis.eval(UNREVOKE_LUA, 2, this.#key, this.#key, revocationEntry(r))) === 1;
  }

  async list(): Promise<Revocation[]> {
    const members = await this.#redis.smembers(this.#key);
    return members.flatMap((m) => {
      const match = ENTRY.exec(m);
      return match === null ? [] : [{ kind: match[1] as RevocationKind, value: match[2] as string }];
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#loadedWaiters.splice(0)) w();
    this.#redis.disconnect();
    this.#sub.disconnect();
  }

  /** Subscribe first, then read: an entry announced in between is in the read. */
  async #resync(): Promise<void> {
    try {
      this.#heard.clear();
      await this.#sub.subscribe(this.#key);
      const members = await this.#redis.smembers(this.#key);
      const entries = new Set(members.filter((m) => ENTRY.test(m)));
      for (const [entry, revoked] of this.#heard) {
        if (revoked) entries.add(entry);
        else entries.delete(entry);
      }
      this.#entries = entries;
      for (const w of this.#loadedWaiters.splice(0)) w();
    } catch (err) {
      if (!this.#closed)
        this.#log.warn({ err: err instanceof Error ? err.message : String(err), redis: this.description }, 'token revocation list could not be read');
    }
  }
}
