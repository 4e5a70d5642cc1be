/**
 * Connection management shared by the Redis adapters (quota store, key
 * store, audit stream sink): where a URL points (without credentials), a
 * bounded wait for a connection being set up, the last connection error for
 * messages, and rate-limited warnings while the connection fails, with an
 * info line once it is reachable again.
 *
 * Each adapter keeps its own commands, timeouts and error classes: the
 * errors thrown here are made by the adapter (`makeError`).
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Options the adapters build for their ioredis clients. ioredis declares
 * `replyMapping` as `?: T | undefined` in RedisOptions but as `?: T` in its
 * constructors, so a value typed RedisOptions cannot be passed on under
 * exactOptionalPropertyTypes; the gateway never sets it.
 */
export type RedisClientOptions = Omit<RedisOptions, 'replyMapping'>;

export interface RedisClusterSeed {
  readonly host: string;
  readonly port: number;
}

/** Where a URL (or a cluster's seed nodes) points, without credentials (for messages). */
export function describeRedisUrl(url: string | { readonly cluster: readonly RedisClusterSeed[] }): string {
  if (typeof url !== 'string') return `cluster(${url.cluster.map((n) => `${n.host}:${n.port}`).join(',')})`;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'redis';
  }
}

/**
 * Why `ready()` cannot go on: the adapter is closed, the connection is down
 * (waiting to reconnect, or closed while being set up), or it was not set up
 * within the timeout.
 */
export type RedisConnectionProblem = 'closed' | 'unreachable' | 'timeout';

export interface RedisConnectionStateOptions {
  /** Where the client points (for log lines). */
  readonly description: string;
  readonly log: Logger;
  /** What is connected, for log lines: `<label> connection error`, `<label> reachable again`. */
  readonly label: string;
  /** Whether the adapter was closed: no more error logs, and `ready()` fails. */
  readonly isClosed: () => boolean;
  /** Extra fields on the warnings about this client's errors (e.g. `{ connection: 'command' }`). */
  readonly logFields?: Readonly<Record<string, unknown>>;
}

/**
 * A connection's lifecycle as RedisConnectionState sees it:
 *   idle        never connected yet (lazy): `connect()` starts it
 *   connecting  being set up (TCP, TLS, handshake)
 *   ready       commands may be sent
 *   down        lost or failed; reconnecting in the background
 *   closed      closed for good by its owner
 */
export type RedisLinkPhase = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

/** What a link reports: a connection error, the connection being ready, a connection (or attempt) ending. */
export interface RedisLinkListener {
  error(err: Error): void;
  ready(): void;
  lost(): void;
}

/**
 * The small surface RedisConnectionState needs from a client: ioredis
 * clients through ioredisLink(), the quota store's own RESP client directly.
 */
export interface RedisLink {
  readonly phase: RedisLinkPhase;
  /** Starts connecting when idle (errors are reported to listeners, not thrown). */
  connect(): void;
  /** Subscribes; returns the function that unsubscribes. */
  watch(listener: Partial<RedisLinkListener>): () => void;
}

/** An ioredis client (standalone or Cluster) as a RedisLink. */
export function ioredisLink(client: Redis | Cluster): RedisLink {
  return {
    get phase(): RedisLinkPhase {
      switch (client.status) {
        case 'ready':
          return 'ready';
        case 'wait':
          return 'idle';
        case 'connecting':
        case 'connect':
          return 'connecting';
        case 'end':
          return 'closed';
        default:
          return 'down';
      }
    },
    connect(): void {
      client.connect().catch(() => undefined);
    },
    watch(listener: Partial<RedisLinkListener>): () => void {
      const { error, ready, lost } = listener;
      if (error !== undefined) client.on('error', error);
      if (ready !== undefined) client.on('ready', ready);
      if (lost !== undefined) client.on('close', lost);
      return () => {
        if (error !== undefined) client.off('error', error);
        if (ready !== undefined) client.off('ready', ready);
        if (lost !== undefined) client.off('close', lost);
      };
    },
  };
}

export class RedisConnectionState {
  readonly #client: RedisLink;
  readonly #description: string;
  readonly #log: Logger;
  readonly #label: string;
  readonly #isClosed: () => boolean;
  readonly #logFields: Readonly<Record<string, unknown>>;
  #readyWait: Promise<void> | null = null;
  #lastErrorLog = 0;
  #lastError: string | null = null;
  #failing = false;

  constructor(client: RedisLink, opts: RedisConnectionStateOptions) {
    this.#client = client;
    this.#description = opts.description;
    this.#log = opts.log;
    this.#label = opts.label;
    this.#isClosed = opts.isClosed;
    this.#logFields = opts.logFields ?? {};
    client.watch({
      error: (err: Error) => this.noteError(err, this.#logFields),
      ready: () => {
        this.#lastError = null;
        if (this.#failing) this.#log.info({ redis: this.#description }, `${this.#label} reachable again`);
        this.#failing = false;
      },
    });
  }

  /** Whether a connection error was seen since the client was last ready. */
  get isFailing(): boolean {
    return this.#failing;
  }

  /** `: <last connection error>`, or '' when there is none (appended to messages). */
  why(): string {
    return this.#lastError === null ? '' : `: ${this.#lastError}`;
  }

  /**
   * Records a connection error and warns (at most once per 10 s). The
   * client's own errors come here; an adapter passes errors of a companion
   * connection with `recordLastError: false` so `why()` keeps describing
   * this client.
   */
  noteError(err: Error, fields: Readonly<Record<string, unknown>> = {}, recordLastError = true): void {
    if (this.#isClosed()) return;
    this.#failing = true;
    if (recordLastError) this.#lastError = err.message;
    const now = Date.now();
    if (now - this.#lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.#lastErrorLog = now;
    this.#log.warn({ redis: this.#description, ...fields, err: err.message }, `${this.#label} connection error`);
  }

  /**
   * Ready → go. A connection being set up → wait for it, at most
   * `timeoutMs` (concurrent callers share one wait). Down (waiting to
   * reconnect) or closed → fail now.
   */
  async ready(timeoutMs: number, makeError: (problem: RedisConnectionProblem) => Error): Promise<void> {
    const c = this.#client;
    const phase = c.phase;
    if (phase === 'ready') return;
    if (this.#isClosed() || phase === 'closed') throw makeError('closed');
    if (phase === 'idle') c.connect();
    else if (phase !== 'connecting') throw makeError('unreachable');
    this.#readyWait ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        unwatch();
        this.#readyWait = null;
        if (err === undefined) resolve();
        else reject(err);
      };
      const timer = setTimeout(() => done(makeError('timeout')), timeoutMs);
      const unwatch = c.watch({ ready: () => done(), lost: () => done(makeError('unreachable')) });
    });
    return this.#readyWait;
  }
}
