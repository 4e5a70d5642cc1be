/**
 * Pushing committed changes to the data plane:
 *   - the routing snapshot of the latest committed state, signed with the
 *     control plane's Ed25519 key and published over the sidecars' signed
 *     Redis channel (src/control/publish.ts): they re-read it at once;
 *   - API keys written in the sidecars' Redis key store format
 *     (src/stores/keys/redis.ts: one hash per key, the id announced on
 *     `<prefix>keys:revoked` so every replica drops its cached record now).
 * Work is coalesced: only the newest state is published. When Redis cannot
 * be reached the push is retried with backoff (up to 2 s) and, once it
 * succeeds, every key is written again, so nothing committed is lost while
 * Redis was down. The sidecars keep serving what they have meanwhile.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { publishSnapshot } from '../control/publish.ts';
import { parseSnapshot } from '../control/snapshot.ts';
import type { SigningKey } from '../crypto/signing.ts';
import { redisFieldsFromRecord } from '../stores/keys/record.ts';
import { errorMessage } from '../shared/values.ts';
import { backendsOf, type OnBackends } from './backends.ts';
import { buildSnapshot, signSnapshot } from './snapshot.ts';
import { keyRecordOf, type DesiredState } from './store.ts';

export interface SyncOptions {
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly routingKey: string;
  readonly routingChannel: string;
  readonly signingKey: SigningKey;
  readonly ownedBy: string;
  readonly log: Logger;
  readonly onBackends?: OnBackends;
}

export class DataPlaneSync {
  readonly #o: SyncOptions;
  readonly #redis: Redis;
  #latest: DesiredState | null = null;
  #publishedRevision = -1;
  /** Key ids to write; null = all of them (after a failure, or at start). */
  #dirtyKeys: Set<string> | null = null;
  #running = false;
  #failures = 0;
  #timer: NodeJS.Timeout | null = null;
  #lastIssued = 0;
  #idleWaiters: Array<() => void> = [];
  #closed = false;

  constructor(opts: SyncOptions) {
    this.#o = opts;
    this.#redis = new Redis(opts.redisUrl, {
      lazyConnect: true,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: Math.max(1000, opts.commandTimeoutMs),
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      connectionName: 'inference-gateway-control-plane',
      disconnectTimeout: 200,
    });
    this.#redis.on('error', () => undefined); // reported by the push that fails
    this.#redis.connect().catch(() => undefined);
  }

  /** Whether everything committed so far has reached Redis. */
  get inSync(): boolean {
    return (
      !this.#running && this.#timer === null && this.#dirtyKeys !== null && this.#dirtyKeys.size === 0 && this.#latest?.revision === this.#publishedRevision
    );
  }

  /** A committed state; `keyIds` are the keys it changed (undefined: all of them). */
  push(state: DesiredState, keyIds?: readonly string[]): void {
    if (this.#latest === null || state.revision >= this.#latest.revision) this.#latest = state;
    if (keyIds === undefined) this.#dirtyKeys = null;
    else if (this.#dirtyKeys !== null) for (const id of keyIds) this.#dirtyKeys.add(id);
    try {
      void this.#o.onBackends?.(backendsOf(this.#latest), this.#latest.revision);
    } catch (err) {
      this.#o.log.error({ err: errorMessage(err) }, 'onBackends failed');
    }
    this.#kick();
  }

  /** Resolves once the pushes queued so far are done, or after `timeoutMs` (they go on retrying). */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.inSync) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#redis.disconnect();
  }

  #kick(): void {
    if (this.#running || this.#closed) return;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#running = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const state = this.#latest;
        const keys = this.#dirtyKeys;
        if (state === null || (state.revision === this.#publishedRevision && keys !== null && keys.size === 0)) break;
        this.#dirtyKeys = new Set();
        try {
          await this.#writeKeys(state, keys);
          if (state.revision !== this.#publishedRevision) await this.#publish(state);
        } catch (err) {
          // Everything again next time: what part of this attempt landed is unknown.
          this.#dirtyKeys = null;
          this.#failures++;
          const delay = Math.min(100 * 2 ** (this.#failures - 1), 2000);
          this.#o.log[this.#failures === 1 ? 'warn' : 'debug'](
            { err: errorMessage(err), revision: state.revision, retryInMs: delay },
            'cannot push the desired state to Redis; sidecars keep serving what they have; retrying',
          );
          this.#timer = setTimeout(() => {
            this.#timer = null;
            this.#kick();
          }, delay);
          this.#timer.unref();
          return;
        }
        if (this.#failures > 0) this.#o.log.info({ revision: state.revision }, 'desired state pushed to Redis again');
        this.#failures = 0;
      }
    } finally {
      this.#running = false;
      if (this.inSync) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  async #writeKeys(state: DesiredState, ids: ReadonlySet<string> | null): Promise<void> {
    const prefix = this.#o.keyPrefix;
    const channel = `${prefix}keys:revoked`;
    const keys = ids === null ? state.keys : state.keys.filter((k) => ids.has(k.id));
    const plans = new Map(state.tenants.map((t) => [t.id, t.spec.plan ?? null]));
    for (const k of keys) {
      const redisKey = `${prefix}key:${k.id}`;
      // The whole record replaced at once, then announced: every replica drops its cached copy (and any "unknown id" memory).
      const r = await this.#redis
        .multi()
        .del(redisKey)
        .hset(redisKey, ...redisFieldsFromRecord(keyRecordOf(k, plans.get(k.spec.tenant) ?? null)))
        .publish(channel, k.id)
        .exec();
      const failed = r?.find(([err]) => err !== null);
      if (r === null || failed !== undefined) throw (failed?.[0] as Error | undefined) ?? new Error(`writing key ${k.id} was aborted`);
    }
  }

  async #publish(state: DesiredState): Promise<void> {
    const doc = buildSnapshot(state, this.#o.ownedBy);
    if (doc.models.length === 0) {
      this.#o.log.info({ revision: state.revision }, 'no routable model yet: no snapshot published');
      this.#publishedRevision = state.revision;
      return;
    }
    const issued = Math.max(Date.now(), this.#lastIssued + 1);
    const key = this.#o.signingKey;
    const text = signSnapshot(doc, key, new Date(issued));
    // Checked exactly as a sidecar will: schema and signature.
    const snapshot = parseSnapshot(text, `snapshot ${doc.version}`, { keys: new Map([[key.kid, key.publicKey]]) });
    const outcome = await publishSnapshot(this.#redis, { key: this.#o.routingKey, channel: this.#o.routingChannel, text, snapshot });
    if (!outcome.published && outcome.reason === 'raced') throw new Error('the routing key changed while publishing');
    if (!outcome.published) {
      // Someone published a later one (another control plane?): ours would be refused as a rollback; issue after it.
      this.#lastIssued = outcome.current.issuedAt ?? issued;
      throw new Error(`Redis holds snapshot ${outcome.current.version}, issued later than ours`);
    }
    this.#lastIssued = issued;
    this.#publishedRevision = state.revision;
    this.#o.log.info({ version: doc.version, models: doc.models.length, receivers: outcome.receivers }, 'routing snapshot published');
  }
}
