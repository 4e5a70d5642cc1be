/**
 * A lean Redis client for one node, made for the quota store's hot path
 * (issue #15): ioredis spends CPU per command on command objects, argument
 * flattening, auto-pipeline objects and generic reply decoding; written and
 * read as plain RESP on a socket, the store's admission and settlement cost
 * a fifth to a third less CPU (`node bench/quota-client.ts`, docs/benchmarks.md).
 *
 * What it does, and no more:
 * - commands are RESP text (codec.ts); those sent during one turn of the
 *   event loop go out in one write at the check phase (as ioredis'
 *   auto-pipelining), and replies are matched to them in order (FIFO);
 * - it never queues a command while not connected: send() then fails at once;
 * - it connects lazily (connect(), or the first RedisConnectionState.ready()),
 *   over TCP with Nagle off, or TLS for rediss://; then AUTH (credentials from
 *   the URL), SELECT (database from the URL path) and CLIENT SETNAME, in one
 *   write, before it reports ready;
 * - a connection that fails or is lost fails every command waiting on it and
 *   is set up again in the background after `retryDelayMs(attempt)`;
 * - a connection that does not get ready within `connectTimeoutMs`, or that
 *   receives nothing for `socketTimeoutMs` while commands wait for replies
 *   (a silent dead peer), is destroyed, which fails those commands and
 *   reconnects.
 * It reports its lifecycle as a RedisLink, for RedisConnectionState.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { RedisLink, RedisLinkListener, RedisLinkPhase } from '../redis-connection.ts';
import { encodeCommand, RespParser, RespReplyError, type RespValue } from './codec.ts';
import type { RespEndpoint } from './endpoint.ts';

export interface RespClientOptions {
  readonly endpoint: RespEndpoint;
  /** A connection not ready (TCP/TLS and handshake) within this long is dropped and tried again. */
  readonly connectTimeoutMs: number;
  /** Commands waiting and nothing received for this long: the peer is taken for dead and the connection dropped. */
  readonly socketTimeoutMs: number;
  /** Delay before reconnection attempt `attempt` (1, 2, … since the connection was last ready). */
  readonly retryDelayMs: (attempt: number) => number;
  /** CLIENT SETNAME after connecting (shows in CLIENT LIST); none when unset. */
  readonly connectionName?: string;
  /** More options for tls.connect (rediss://), e.g. `ca` for a private CA. */
  readonly tls?: ConnectionOptions;
}

/** A command failed because of the connection (not connected, lost, closed, timed out), not because Redis refused it. */
export class RespConnectionError extends Error {
  override readonly name = 'RespConnectionError';
}

interface Waiter {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

/** Redis refuses AUTH when no password is configured: ioredis goes on then, and so does this client. */
function isNoPasswordConfigured(err: Error): boolean {
  return /without any password configured|no password is set/i.test(err.message);
}

export class RespClient implements RedisLink {
  readonly #opts: RespClientOptions;
  readonly #listeners = new Set<Partial<RedisLinkListener>>();
  readonly #parser: RespParser;
  #phase: RedisLinkPhase = 'idle';
  #socket: Socket | null = null;
  /** Commands written (or about to be) on #socket, oldest first; #head is the next to be answered. */
  #waiting: Waiter[] = [];
  #head = 0;
  /** Commands of this turn, written together at the check phase. */
  #out = '';
  #flushing: NodeJS.Immediate | null = null;
  #attempts = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  /** Since when (performance.now()) the commands waiting have received nothing. */
  #quietSince = 0;

  constructor(opts: RespClientOptions) {
    this.#opts = opts;
    this.#parser = new RespParser((value) => this.#answer(value));
  }

  get phase(): RedisLinkPhase {
    return this.#phase;
  }

  /** Commands sent and not answered yet (for tests). */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  connect(): void {
    if (this.#phase === 'idle') this.#open();
  }

  watch(listener: Partial<RedisLinkListener>): () => void {
    // A wrapper per subscription, so the same listener object may be subscribed twice and removed once.
    const entry = { ...listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /**
   * Sends one encoded command (codec.ts); resolves with its reply, rejects with
   * RespReplyError when Redis refused it, or RespConnectionError when not
   * connected or the connection was lost before the reply.
   */
  send(command: string): Promise<RespValue> {
    if (this.#phase !== 'ready' || this.#socket === null) {
      return Promise.reject(new RespConnectionError(this.#phase === 'closed' ? 'the client is closed' : 'not connected'));
    }
    const { promise, resolve, reject } = Promise.withResolvers<RespValue>();
    this.#enqueue(command, { resolve, reject });
    return promise;
  }

  /** Closes for good: commands still waiting fail, no reconnection. */
  close(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const socket = this.#socket;
    if (socket !== null) {
      this.#drop(new RespConnectionError('the client is closed'));
      socket.destroy();
      // Anyone waiting for the connection to get ready learns now (the socket's own close event is ignored: it is no longer current).
      this.#emit('lost');
    }
  }

  #enqueue(command: string, waiter: Waiter): void {
    if (this.#head === this.#waiting.length) this.#quietSince = performance.now();
    this.#waiting.push(waiter);
    this.#out += command;
    if (this.#flushing === null) this.#flushing = setImmediate(() => this.#flush());
    if (this.#idleTimer === null) this.#armIdle(this.#opts.socketTimeoutMs);
  }

  #flush(): void {
    this.#flushing = null;
    const out = this.#out;
    this.#out = '';
    const socket = this.#socket;
    if (out !== '' && socket !== null && !socket.destroyed) socket.write(out);
  }

  #open(): void {
    const { endpoint, tls } = this.#opts;
    this.#phase = 'connecting';
    const socket = endpoint.tls
      ? tlsConnect({ host: endpoint.host, port: endpoint.port, ...(isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}), ...tls })
      : netConnect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    this.#socket = socket;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = null;
      if (this.#socket === socket && this.#phase === 'connecting') {
        socket.destroy(new RespConnectionError(`connection not ready within ${this.#opts.connectTimeoutMs} ms`));
      }
    }, this.#opts.connectTimeoutMs);
    socket.on(endpoint.tls ? 'secureConnect' : 'connect', () => {
      if (this.#socket !== socket) return;
      socket.setNoDelay(true);
      this.#handshake();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      this.#quietSince = performance.now();
      try {
        this.#parser.push(chunk);
      } catch (err) {
        socket.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('error', (err: Error) => {
      if (this.#socket === socket) this.#emit('error', err);
    });
    socket.on('close', () => this.#lost(socket));
  }

  /** AUTH, SELECT and CLIENT SETNAME in one write; ready once all are answered. */
  #handshake(): void {
    const { endpoint, connectionName } = this.#opts;
    const steps: Array<{ command: string; required: (err: Error) => boolean }> = [];
    if (endpoint.password !== null) {
      const auth = endpoint.username === null ? ['AUTH', endpoint.password] : ['AUTH', endpoint.username, endpoint.password];
      steps.push({ command: encodeCommand(auth), required: (err) => !isNoPasswordConfigured(err) });
    }
    if (endpoint.db !== 0) steps.push({ command: encodeCommand(['SELECT', endpoint.db]), required: () => true });
    // The name is a convenience for operators: a server that refuses it (e.g. CLIENT renamed away) is still usable.
    if (connectionName !== undefined) steps.push({ command: encodeCommand(['CLIENT', 'SETNAME', connectionName]), required: () => false });
    if (steps.length === 0) {
      this.#ready();
      return;
    }
    const socket = this.#socket as Socket;
    let left = steps.length;
    const answered = (): void => {
      if (--left === 0 && this.#socket === socket) this.#ready();
    };
    for (const step of steps) {
      this.#enqueue(step.command, {
        resolve: answered,
        reject: (err) => {
          if (err instanceof RespReplyError && step.required(err)) socket.destroy(err);
          else if (err instanceof RespReplyError) answered();
          // A connection error: the socket is going away already.
        },
      });
    }
  }

  #ready(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#attempts = 0;
    this.#phase = 'ready';
    this.#emit('ready');
  }

  #answer(value: RespValue): void {
    if (this.#head === this.#waiting.length) {
      this.#socket?.destroy(new RespConnectionError('a reply arrived for no command'));
      return;
    }
    const waiter = this.#waiting[this.#head] as Waiter;
    this.#head++;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      // Under steady load the queue may never drain: drop the answered front now and then.
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    if (value instanceof RespReplyError) waiter.reject(value);
    else waiter.resolve(value);
  }

  /**
   * One timer watches for a silent peer, instead of one per command or a
   * reset per reply: when it fires it checks how long the waiting commands
   * have gone without receiving anything, and either drops the connection or
   * waits for the rest.
   */
  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      const socket = this.#socket;
      if (socket === null || this.#head === this.#waiting.length) return;
      const quiet = performance.now() - this.#quietSince;
      const limit = this.#opts.socketTimeoutMs;
      if (quiet >= limit) socket.destroy(new RespConnectionError(`no data from Redis for ${limit} ms while commands waited`));
      else this.#armIdle(Math.max(1, Math.ceil(limit - quiet)));
    }, ms);
  }

  /** The socket closed (error, peer, timeout or close()): fail what waits on it, then reconnect unless closed. */
  #lost(socket: Socket): void {
    if (this.#socket !== socket) return;
    this.#drop(new RespConnectionError(`connection to Redis lost`));
    this.#emit('lost');
    if (this.#phase === 'closed') return;
    this.#phase = 'down';
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#phase === 'down') this.#open();
    }, this.#opts.retryDelayMs(++this.#attempts));
  }

  /** Forgets the current socket: fails every command waiting on it, clears its timers and partial input. */
  #drop(err: Error): void {
    this.#socket = null;
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#parser.reset();
    this.#out = '';
    const waiting = this.#waiting;
    const head = this.#head;
    this.#waiting = [];
    this.#head = 0;
    for (let i = head; i < waiting.length; i++) (waiting[i] as Waiter).reject(err);
  }

  #emit(event: 'error', err: Error): void;
  #emit(event: 'ready' | 'lost'): void;
  #emit(event: keyof RedisLinkListener, err?: Error): void {
    for (const l of [...this.#listeners]) {
      if (event === 'error') l.error?.(err as Error);
      else l[event]?.();
    }
  }
}
