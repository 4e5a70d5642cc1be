/**
 * Audit records appended to a Redis stream (`audit.sink: redis_stream`):
 * one entry per line, with a single field `line` holding exactly the JSON
 * line a file sink would write (without its newline), so the same verifier
 * reads both (`inference-gateway audit verify --redis URL --stream NAME`).
 *
 * Group commit: appends handed in while a batch is in flight are sent
 * together as the next MULTI/EXEC, so concurrent requests share one round
 * trip and a batch lands in the stream whole, in order. `append()` resolves
 * only once the batch is committed as `durability` says:
 *   - `write`: acknowledged by the primary (in its memory; on its disk only as
 *     its own appendonly/appendfsync settings say) — lost if the primary
 *     dies before a replica or its AOF has it;
 *   - `replicated`: the MULTI/EXEC is followed, in the same round trip, by
 *     `WAIT replicas replicaWaitMs`; the batch counts only when at least
 *     `replicas` replicas acknowledged it. Fewer within the wait and the batch
 *     fails (its requests fail closed), although the primary has it: the
 *     verifier then sees records of requests that failed, never the reverse.
 *
 * Failure behaviour: no offline queue and a bound of `commandTimeoutMs` on
 * each batch (plus `replicaWaitMs` when replicated; and on waiting for a
 * connection being set up), so with Redis
 * down `append()` rejects quickly and the request fails closed. A batch that
 * timed out may still have been applied by Redis (the reply was lost); the
 * verifier then sees those records. Reconnection runs in the background.
 *
 * `maxLen` (optional) trims the stream approximately (`MAXLEN ~`): trimmed
 * history is gone, and a verifier reading the stream then reports a gap at
 * its start — export the stream before trimming if it must stay verifiable.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AuditLineSink } from './port.ts';
import { GroupCommit } from './group-commit.ts';
import { describeRedisUrl, ioredisLink, RedisConnectionState, type RedisConnectionProblem } from '../redis-connection.ts';

export interface RedisStreamSinkOptions {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  /** Stream key, e.g. `igw:audit`. */
  readonly stream: string;
  /** Bound on each batch, and on waiting for a connection being set up. */
  readonly commandTimeoutMs: number;
  /** Approximate maximum stream length (XADD MAXLEN ~); unset = never trimmed. */
  readonly maxLen?: number;
  /** Default `write` (acknowledged by the primary). */
  readonly durability?: 'write' | 'replicated';
  /** durability `replicated`: replicas that must acknowledge each batch (default 1). */
  readonly replicas?: number;
  /** durability `replicated`: how long WAIT waits for them (default 500). */
  readonly replicaWaitMs?: number;
  readonly log: Logger;
}

export class RedisStreamSink implements AuditLineSink {
  readonly description: string;
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #timeoutMs: number;
  readonly #maxLen: number | undefined;
  /** null: acknowledged by the primary is enough. */
  readonly #wait: { readonly replicas: number; readonly ms: number } | null;
  readonly #conn: RedisConnectionState;
  readonly #commits = new GroupCommit<readonly string[]>((batches) => this.#withTimeout(this.#write(batches.flat())));
  #closed = false;

  constructor(opts: RedisStreamSinkOptions) {
    this.description = `${describeRedisUrl(opts.url)} ${opts.stream}`;
    this.#stream = opts.stream;
    this.#wait = opts.durability === 'replicated' ? { replicas: opts.replicas ?? 1, ms: opts.replicaWaitMs ?? 500 } : null;
    // A replicated batch may spend replicaWaitMs inside WAIT on top of the round trip.
    this.#timeoutMs = opts.commandTimeoutMs + (this.#wait?.ms ?? 0);
    this.#maxLen = opts.maxLen;
    this.#redis = new Redis(opts.url, {
      lazyConnect: true,
      connectTimeout: Math.max(1000, 4 * opts.commandTimeoutMs),
      commandTimeout: this.#timeoutMs,
      // A silent dead peer: destroy the socket so reconnection starts.
      socketTimeout: Math.max(1000, 4 * this.#timeoutMs),
      // Never replay an XADD on a new connection (it may have been applied): fail and let the request fail closed.
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      connectionName: 'inference-gateway-audit',
      // close() should not keep the process alive for ioredis' default 2 s when Redis is down.
      disconnectTimeout: 200,
    });
    this.#conn = new RedisConnectionState(ioredisLink(this.#redis), {
      description: this.description,
      log: opts.log,
      label: 'audit Redis stream',
      isClosed: () => this.#closed,
    });
    this.#redis.connect().catch(() => undefined);
  }

  append(lines: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit sink is closed'));
    return this.#commits.add(lines);
  }

  async #write(batch: readonly string[]): Promise<void> {
    if (batch.length === 0) return;
    await this.#ready();
    const trim: Array<string | number> = this.#maxLen === undefined ? [] : ['MAXLEN', '~', this.#maxLen];
    let written: Promise<unknown>;
    if (batch.length === 1) {
      written = this.#redis.xadd(this.#stream, ...trim, '*', 'line', batch[0] as string);
    } else {
      const multi = this.#redis.multi();
      for (const line of batch) multi.xadd(this.#stream, ...trim, '*', 'line', line);
      written = multi.exec().then((results) => {
        if (results === null) throw new Error(`audit batch to ${this.description} was aborted`);
        for (const [err] of results) if (err !== null) throw err;
      });
    }
    if (this.#wait === null) {
      await written;
      return;
    }
    // Sent right behind the batch on the same connection (one round trip): WAIT counts the replicas
    // that have every write this connection made so far, this batch included.
    const { replicas, ms } = this.#wait;
    const acked = this.#redis.wait(replicas, ms);
    const [w, a] = await Promise.allSettled([written, acked]);
    if (w.status === 'rejected') throw w.reason instanceof Error ? w.reason : new Error(String(w.reason));
    if (a.status === 'rejected') throw a.reason instanceof Error ? a.reason : new Error(String(a.reason));
    if (a.value < replicas) {
      throw new Error(`audit batch to ${this.description} reached ${a.value} of ${replicas} required replica(s) within ${ms} ms (WAIT)`);
    }
  }

  #withTimeout<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`audit write to ${this.description} timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /**
   * Ready → go. A connection being set up → wait for it (the batch timeout
   * bounds this). Down (waiting to reconnect) or closed → fail now.
   */
  #ready(): Promise<void> {
    return this.#conn.ready(this.#timeoutMs, (problem: RedisConnectionProblem) => {
      switch (problem) {
        case 'closed':
          return new Error(`audit Redis stream ${this.description} is closed`);
        case 'unreachable':
          return new Error(`audit Redis stream ${this.description} is unreachable${this.#conn.why()}`);
        case 'timeout':
          return new Error(`audit Redis stream ${this.description} did not connect within ${this.#timeoutMs} ms`);
      }
    });
  }

  /** Waits for queued appends (each bounded by the timeout), then disconnects. */
  async close(): Promise<void> {
    await this.#commits.drained();
    if (this.#closed) return;
    this.#closed = true;
    this.#redis.disconnect();
  }
}
