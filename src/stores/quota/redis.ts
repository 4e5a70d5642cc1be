/**
 * The quota store on Redis (standalone or Cluster): one Lua script call per
 * admit; settlements ride along with the next admit, or go out per tag after
 * at most settleDelayMs (EVALSHA, falling back to EVAL when the server
 * does not know the script, e.g. after a restart). Semantics: see memory.ts;
 * the scripts are in redis-script.ts.
 *
 * Keys (all under `keyPrefix`, all with the hash tag `{<tag>}` so one
 * decision touches one cluster slot; see hashTag() for tags with braces):
 *   <prefix>{<tag>}:<limit key>        rate: hash {tokens, ts}
 *                                      window/day/month: hash bucket index → count
 *                                      concurrency: sorted set requestId → expiry ms
 *   <prefix>{<tag>}:res:<requestId>    reservation: hash `t:<key>` → bucket
 *                                      index (token buckets charged), `b:<key>`
 *                                      → bucket index (budget buckets charged),
 *                                      `l:<key>` → 1 (leases held)
 *
 * Failure behaviour (as the key store): the connection never queues commands
 * while disconnected, and a whole call — waiting for a connection being set
 * up included — is bounded by `commandTimeoutMs`; admit/settle then throw.
 * The bound is on Redis, not on this process: it starts once the command is
 * written (after the current turn of the event loop), and when it fires, a
 * reply that has already arrived but not been read yet (the event loop was
 * busy, e.g. with a burst of requests) is read first and wins. Commands issued in
 * the same turn of the event loop go out in one write, so a burst of
 * admissions costs one syscall and one Redis read, not hundreds.
 * Reconnection runs in the background (backoff capped at 1 s), so the same
 * store works again once Redis is back. A call that timed out may still have
 * been applied by Redis: its leases then expire after leaseMs. On a single
 * node, calls waiting on a connection that is lost fail at once (they are not
 * sent again on the next connection, as ioredis would, which could apply an
 * admission after its caller was told it failed).
 *
 * The client (redis-transport.ts): a single node (a plain redis:// or
 * rediss:// URL) is spoken to by the lean RESP client of src/stores/resp/,
 * which writes each call straight as RESP text and reads only the reply types
 * the scripts return (issue #15: a fifth to a third less CPU per admission and
 * settlement than ioredis, `node bench/quota-client.ts`, figures in
 * docs/benchmarks.md); a Redis Cluster, or a URL with query options, goes
 * through ioredis (auto-pipelining, the same timeouts).
 */
import type { Logger } from 'pino';
import type { Decision, LimitSpec, LimitState, QuotaStore, Settlement } from './port.ts';
import { isBudgetLimit, isTokenLimit, validateLimits, wholeCost } from './memory.ts';
import { ADMIT_LUA, RENEW_LUA, SETTLE_LUA } from './redis-script.ts';
import { describeRedisUrl, RedisConnectionState, type RedisConnectionProblem } from '../redis-connection.ts';
import { createScriptTransport, script, type Script, type ScriptTransport } from './redis-transport.ts';
import { errorMessage } from '../../shared/values.ts';
import { CallDeadlines } from '../call-deadlines.ts';

export interface RedisClusterNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisQuotaStoreOptions {
  /** redis:// or rediss:// URL, or the seed nodes of a Redis Cluster. */
  readonly url: string | { readonly cluster: readonly RedisClusterNode[] };
  readonly keyPrefix: string;
  /** Bound on a whole admit/settle call (connection wait included). */
  readonly commandTimeoutMs: number;
  /** Longest a settlement waits for an admission to ride along with (default 10 ms). */
  readonly settleDelayMs?: number;
  readonly log: Logger;
  /**
   * Tests only: decide at this time (ms) instead of Redis `TIME`, so a test
   * can step a clock through exact boundaries. Key lifetimes (garbage
   * collection, the reservation record) still run on Redis' own clock.
   */
  readonly now?: () => number;
}

/** The store could not decide (Redis unreachable, slow, or erroring). */
export class QuotaStoreUnavailableError extends Error {
  override readonly name = 'QuotaStoreUnavailableError';
}

interface PendingSettlement {
  readonly requestId: string;
  readonly delta: number;
  readonly costDelta: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A released lease or returned tokens reach Redis at most this long after the request ended (or with the next admission). */
const DEFAULT_SETTLE_DELAY_MS = 10;

const ADMIT = script(ADMIT_LUA);
const SETTLE = script(SETTLE_LUA);
const RENEW = script(RENEW_LUA);
const KIND_CODE = { rate: 'r', window: 'w', day: 'd', month: 'm', concurrency: 'c' } as const;

/**
 * The tag as it goes between the braces: never empty (`{}` would hash the
 * whole key) and without braces (`}` would end the hash tag early); `%`,
 * `{` and `}` are percent-encoded so distinct tags stay distinct.
 */
export function hashTag(tag: string): string {
  if (tag === '') return '%';
  return tag.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  throw new QuotaStoreUnavailableError(`unexpected quota script reply element ${String(v)}`);
}

export class RedisQuotaStore implements QuotaStore {
  readonly description: string;
  readonly #client: ScriptTransport;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #now: (() => number) | undefined;
  readonly #conn: RedisConnectionState;
  readonly #deadlines: CallDeadlines;
  /** Settlements waiting to go out (see settle()), by hash tag. */
  #settling = new Map<string, PendingSettlement[]>();
  #settleTimer: NodeJS.Timeout | null = null;
  readonly #settleDelayMs: number;
  #closed = false;

  constructor(opts: RedisQuotaStoreOptions) {
    this.description = describeRedisUrl(opts.url);
    this.#prefix = opts.keyPrefix;
    this.#timeoutMs = opts.commandTimeoutMs;
    this.#deadlines = new CallDeadlines(opts.commandTimeoutMs);
    this.#settleDelayMs = opts.settleDelayMs ?? DEFAULT_SETTLE_DELAY_MS;
    this.#now = opts.now;
    this.#client = createScriptTransport({ url: opts.url, commandTimeoutMs: opts.commandTimeoutMs, connectionName: 'inference-gateway-quota' });
    this.#conn = new RedisConnectionState(this.#client.link, {
      description: this.description,
      log: opts.log,
      label: 'Redis quota store',
      isClosed: () => this.#closed,
    });
  }

  /** Which client carries the calls: the lean RESP client for a single node, ioredis for a Cluster (see redis-transport.ts). */
  get client(): 'resp' | 'ioredis' {
    return this.#client.kind;
  }

  async admit(requestId: string, tag: string, limits: readonly LimitSpec[]): Promise<Decision> {
    validateLimits(limits);
    // Waiting settlements go first, in the same write: no round trip of their own, and what they free counts here.
    if (this.#settling.size > 0) void this.#flushSettlements();
    const base = `${this.#prefix}{${hashTag(tag)}}:`;
    const keys = [`${base}res:${requestId}`];
    let spec = '';
    for (const s of limits) {
      keys.push(base + s.key);
      const tok = isTokenLimit(s) ? '1' : isBudgetLimit(s) ? '2' : '0';
      switch (s.kind) {
        case 'rate':
          spec += `${KIND_CODE.rate} ${s.ratePerSec} ${s.burst} 0 ${tok} `;
          break;
        case 'window':
          spec += `${KIND_CODE.window} ${s.limit} ${s.windowMs} ${wholeCost(s.cost)} ${tok} `;
          break;
        case 'day':
          spec += `${KIND_CODE.day} ${s.limit} ${s.utcOffsetMs} ${wholeCost(s.cost)} ${tok} `;
          break;
        case 'month':
          spec += `${KIND_CODE.month} ${s.limit} ${s.utcOffsetMs} ${wholeCost(s.cost)} ${tok} `;
          break;
        case 'concurrency':
          spec += `${KIND_CODE.concurrency} ${s.limit} ${s.leaseMs} 0 ${tok} `;
          break;
      }
    }
    const reply = await this.#run(ADMIT, keys, [requestId, this.#now === undefined ? '' : String(Math.floor(this.#now())), spec]);
    const nums = typeof reply === 'string' ? reply.split(' ').map(Number) : [];
    if (nums.length !== 4 + 3 * limits.length || !nums.every(Number.isFinite)) {
      throw new QuotaStoreUnavailableError('malformed quota script reply');
    }
    const at = (i: number): number => nums[i] as number;
    const states: LimitState[] = limits.map((s, i) => ({ name: s.name, limit: at(4 + 3 * i), remaining: at(5 + 3 * i), resetMs: at(6 + 3 * i) }));
    const now = at(1);
    if (at(0) === 1) return { admitted: true, now, states };
    const denied = limits[at(2) - 1];
    if (denied === undefined) throw new QuotaStoreUnavailableError('malformed quota script reply');
    return { admitted: false, now, states, deniedBy: denied.name, retryAfterMs: at(3) };
  }

  /**
   * Settlements are deferred a little and go out together, one script call per tag (all of a tag's keys share a
   * cluster slot): with the next admission this store sends (same write, before it, so a lease released here is
   * free for that admission), or `settleDelayMs` after the first one waiting, whichever comes first. At a steady
   * rate a request's settlement then costs no round trip of its own, and at saturation one call settles many
   * requests. The promise resolves once Redis applied it; nobody on the request path waits for it.
   */
  settle(requestId: string, tag: string, settlement: Settlement): Promise<void> {
    const delta = Math.round(settlement.tokenDelta);
    if (!Number.isSafeInteger(delta)) return Promise.reject(new RangeError(`tokenDelta ${settlement.tokenDelta} is not a finite number`));
    const costDelta = Math.round(settlement.costDelta);
    if (!Number.isSafeInteger(costDelta)) return Promise.reject(new RangeError(`costDelta ${settlement.costDelta} is not a finite number`));
    return new Promise<void>((resolve, reject) => {
      const t = hashTag(tag);
      const batch = this.#settling.get(t);
      const item = { requestId, delta, costDelta, resolve, reject };
      if (batch === undefined) this.#settling.set(t, [item]);
      else batch.push(item);
      if (this.#settleTimer === null) this.#settleTimer = setTimeout(() => void this.#flushSettlements(), this.#settleDelayMs);
    });
  }

  /** Sends every settlement waiting, one call per tag; resolves when all of them are answered (either way). */
  #flushSettlements(): Promise<void> {
    if (this.#settleTimer !== null) {
      clearTimeout(this.#settleTimer);
      this.#settleTimer = null;
    }
    if (this.#settling.size === 0) return Promise.resolve();
    const groups = this.#settling;
    this.#settling = new Map();
    const calls: Array<Promise<void>> = [];
    for (const [t, items] of groups) {
      const base = `${this.#prefix}{${t}}:res:`;
      const keys: string[] = [];
      const args: Array<string | number> = [];
      for (const i of items) {
        keys.push(base + i.requestId);
        args.push(i.requestId, i.delta, i.costDelta);
      }
      calls.push(
        this.#run(SETTLE, keys, args).then(
          () => items.forEach((i) => i.resolve()),
          (err: unknown) => items.forEach((i) => i.reject(err instanceof Error ? err : new Error(String(err)))),
        ),
      );
    }
    return Promise.all(calls).then(() => undefined);
  }

  async renew(tag: string, requestIds: readonly string[], leaseMs: number): Promise<boolean[]> {
    if (requestIds.length === 0) return [];
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 1) throw new RangeError('leaseMs must be a positive integer');
    const base = `${this.#prefix}{${hashTag(tag)}}:res:`;
    const reply = await this.#run(
      RENEW,
      requestIds.map((id) => base + id),
      [this.#now === undefined ? '' : String(Math.floor(this.#now())), leaseMs, ...requestIds],
    );
    if (!Array.isArray(reply) || reply.length !== requestIds.length) throw new QuotaStoreUnavailableError('malformed lease renewal reply');
    return reply.map((v) => toNumber(v) === 1);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#flushSettlements(); // bounded by the command timeout
    this.#closed = true;
    this.#client.close();
  }

  /** EVALSHA, then EVAL on NOSCRIPT; the whole call bounded by the command timeout (see CallDeadlines). */
  #run(s: Script, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let over = false;
      const deadline = this.#deadlines.track(() => {
        over = true;
        reject(new QuotaStoreUnavailableError(`Redis (${this.description}) did not answer within ${this.#timeoutMs} ms${this.#conn.why()}`));
      });
      this.#call(s, keys, args).then(
        (reply) => {
          if (over) return;
          deadline.done();
          resolve(reply);
        },
        (err: unknown) => {
          if (over) return; // after the deadline nobody waits for it any more
          deadline.done();
          if (err instanceof QuotaStoreUnavailableError || err instanceof RangeError) reject(err);
          else reject(new QuotaStoreUnavailableError(`Redis (${this.description}) quota call failed: ${errorMessage(err)}`, { cause: err }));
        },
      );
    });
  }

  async #call(s: Script, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    if (this.#client.link.phase !== 'ready') await this.#ready();
    return this.#client.run(s, keys, args);
  }

  /**
   * Ready → go. A connection being set up → wait for it (the caller's
   * deadline bounds the wait). Down (waiting to reconnect) or closed → fail now.
   */
  #ready(): Promise<void> {
    return this.#conn.ready(this.#timeoutMs, (problem: RedisConnectionProblem) => {
      switch (problem) {
        case 'closed':
          return new QuotaStoreUnavailableError('the Redis quota store is closed');
        case 'unreachable':
          return new QuotaStoreUnavailableError(`Redis (${this.description}) is unreachable${this.#conn.why()}`);
        case 'timeout':
          return new QuotaStoreUnavailableError(`Redis (${this.description}) did not connect within ${this.#timeoutMs} ms`);
      }
    });
  }
}
