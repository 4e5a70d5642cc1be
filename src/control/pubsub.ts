/**
 * Routing snapshots delivered over Redis (`routing.redis`): the control plane
 * SETs the signed snapshot document in a key and PUBLISHes a notification on
 * a channel (`inference-gateway snapshot publish`); every sidecar re-reads
 * the key when notified, and also whenever its subscription is (re)made —
 * at start and after every reconnect — because pub/sub drops whatever is
 * published while a subscriber is disconnected.
 *
 * Why a notification and not the document itself on the channel: the key is
 * then the single source of truth (a replica that was notified and one that
 * just reconnected end up reading the same bytes, through the same code
 * path), and Redis copies each message into every subscriber's output
 * buffer — a snapshot can be megabytes, a notification is a version string.
 * The extra GET per publish is nothing next to how rarely routing changes.
 * The message body is only logged.
 *
 * Every document goes through `acceptSnapshot` with the control-plane keys:
 * Redis delivery requires `routing.publicKeys` (the config refuses it
 * otherwise), so write access to Redis is not enough to redirect routing;
 * an older `issuedAt` is refused as a rollback. The same document is never
 * evaluated twice in a row (re-reads after a reconnect find the same bytes),
 * so a rejection is logged and counted once, not once per reconnect.
 *
 * Failure behaviour: Redis down changes nothing for requests — the snapshot
 * in use keeps serving, readiness is not touched (`routing.maxAgeSeconds`
 * covers staleness). Both connections reconnect by themselves with capped
 * exponential backoff; a failed read is retried with the same backoff.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError } from '../config/errors.ts';
import { describeRedisUrl, ioredisLink, type RedisClientOptions, RedisConnectionState } from '../stores/redis-connection.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { acceptSnapshot } from './accept.ts';
import { parseSnapshot, type SnapshotHolder, type SnapshotTrust } from './snapshot.ts';

/** Same bound as the admin push: a larger value in the key is refused, not parsed. */
const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024;

/** 200 ms, 400 ms, … capped at 2 s: quick recovery from a blip, no hammering of a Redis that is down. */
export function redisBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(attempt, 1), 5), 2000);
}

export interface RedisSnapshotOptions {
  /** redis:// or rediss:// URL (`redis.url`). */
  readonly url: string;
  /** Key holding the latest signed snapshot document. */
  readonly key: string;
  /** Channel on which a new snapshot is announced. */
  readonly channel: string;
  /** Bound on each read, and on waiting for a connection being set up (`redis.commandTimeoutMs`). */
  readonly commandTimeoutMs: number;
  readonly holder: SnapshotHolder;
  readonly trust: SnapshotTrust;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class RedisSnapshotSubscriber {
  readonly description: string;
  readonly #opts: RedisSnapshotOptions;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #conn: RedisConnectionState;
  #closed = false;
  #subscribedOnce = false;
  /** A read is running; `#again` asks it to read once more when it ends (notifications coalesce). */
  #reading = false;
  #again = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  /** The last document read from the key (accepted or not); null = none or absent. */
  #lastText: string | null = null;
  #attempted = false;
  #attemptWaiters: Array<() => void> = [];

  constructor(opts: RedisSnapshotOptions) {
    // Defence in depth: the config refuses this, but an unsigned snapshot from Redis must never be possible.
    if (opts.trust.keys.size === 0) throw new Error('routing snapshots over Redis need routing.publicKeys: only signed snapshots may be delivered this way');
    this.#opts = opts;
    this.description = describeRedisUrl(opts.url);
    const common: RedisClientOptions = {
      lazyConnect: true,
      connectTimeout: Math.max(1000, 4 * opts.commandTimeoutMs),
      retryStrategy: (times) => redisBackoffMs(times),
      // close() should not keep the process alive for ioredis' default 2 s when Redis is down.
      disconnectTimeout: 200,
    };
    this.#cmd = new Redis(opts.url, {
      ...common,
      connectionName: 'inference-gateway-routing',
      commandTimeout: opts.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      // A read while disconnected fails at once and is retried by us, instead of piling up in a queue.
      enableOfflineQueue: false,
    });
    this.#conn = new RedisConnectionState(ioredisLink(this.#cmd), {
      description: this.description,
      log: opts.log,
      label: 'Redis routing snapshot delivery',
      isClosed: () => this.#closed,
      logFields: { connection: 'command' },
    });
    this.#cmd.on('error', () => this.#noteAttempt());
    this.#sub = new Redis(opts.url, {
      ...common,
      connectionName: 'inference-gateway-routing-sub',
      // Subscribed by hand on every (re)connect, so the key is re-read once the subscription is live again.
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    this.#sub.on('error', (err: Error) => {
      this.#conn.noteError(err, { connection: 'subscriber' }, false);
      this.#noteAttempt();
    });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== opts.channel) return;
      opts.log.debug({ channel, message }, 'routing snapshot announced over Redis');
      this.#read();
    });
    this.#sub.on('ready', () => {
      this.#sub.subscribe(opts.channel).then(
        () => {
          opts.log.info(
            { redis: this.description, channel: opts.channel, key: opts.key },
            this.#subscribedOnce ? 'routing snapshot channel resubscribed; re-reading the key' : 'routing snapshot channel subscribed',
          );
          this.#subscribedOnce = true;
          // Subscribe first, read second: anything published from now on is announced, anything before is in the key.
          this.#read();
        },
        (err: unknown) => this.#conn.noteError(err instanceof Error ? err : new Error(String(err)), { connection: 'subscriber' }, false),
      );
    });
    this.#cmd.connect().catch(() => undefined);
    this.#sub.connect().catch(() => undefined);
  }

  /**
   * Resolves after the first attempt to read the key (applied, rejected,
   * absent, or Redis unreachable), or after `timeoutMs` — so a sidecar
   * serves the latest published snapshot from its first request when Redis
   * is up, and starts on its file snapshot without waiting when it is not.
   */
  firstAttempt(timeoutMs: number): Promise<void> {
    if (this.#attempted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.#attemptWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#noteAttempt();
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }

  #noteAttempt(): void {
    this.#attempted = true;
    for (const w of this.#attemptWaiters.splice(0)) w();
  }

  /** Reads the key now, or once more after the read in progress. */
  #read(): void {
    if (this.#closed) return;
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      do {
        this.#again = false;
        let text: string | null;
        try {
          await this.#conn.ready(
            this.#opts.commandTimeoutMs,
            (problem) => new Error(`Redis (${this.description}) is ${problem === 'timeout' ? 'not connected yet' : problem}${this.#conn.why()}`),
          );
          text = await this.#cmd.get(this.#opts.key);
        } catch (err) {
          this.#retryLater(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (this.#failures > 0) this.#opts.log.info({ redis: this.description, key: this.#opts.key }, 'routing snapshot readable from Redis again');
        this.#failures = 0;
        this.#apply(text);
      } while (this.#again && !this.#closed);
    } finally {
      this.#reading = false;
      this.#noteAttempt();
    }
  }

  #retryLater(err: Error): void {
    if (this.#closed) return;
    this.#failures++;
    const delay = redisBackoffMs(this.#failures);
    // Warn when reading starts failing; the retries while Redis stays down are only debug lines.
    const level = this.#failures === 1 ? 'warn' : 'debug';
    this.#opts.log[level](
      { redis: this.description, key: this.#opts.key, err: err.message, retryInMs: delay, keeping: this.#opts.holder.current().version },
      'cannot read the routing snapshot from Redis; the current one keeps serving',
    );
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#read();
    }, delay);
    this.#retryTimer.unref();
  }

  #apply(text: string | null): void {
    if (text === this.#lastText) return;
    this.#lastText = text;
    const { key, trust, holder, metrics, log } = this.#opts;
    if (text === null) {
      log.info({ redis: this.description, key, keeping: holder.current().version }, 'no routing snapshot in Redis yet');
      return;
    }
    const source = `Redis key ${key}`;
    acceptSnapshot(
      'redis',
      () => {
        if (Buffer.byteLength(text) > MAX_SNAPSHOT_BYTES) throw new ConfigError(source, [`is larger than ${MAX_SNAPSHOT_BYTES} bytes`]);
        return parseSnapshot(text, source, trust);
      },
      { holder, metrics, log },
      { redis: this.description, key },
    );
  }
}
