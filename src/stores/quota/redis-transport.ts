/**
 * How the quota store's scripts reach Redis: the call (EVALSHA, then EVAL
 * when the server answers NOSCRIPT, e.g. after a restart or SCRIPT FLUSH)
 * and the connection's lifecycle (a RedisLink, for RedisConnectionState).
 *
 * A single node given by a plain redis:// or rediss:// URL goes through the
 * lean RESP client (src/stores/resp/), the hot path of issue #15. A Redis
 * Cluster (slot routing, redirections, topology refresh) and a URL with query
 * options stay on ioredis.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as IoRedis from 'ioredis';
import { encodeScriptCall, RespReplyError } from '../resp/codec.ts';
import { RespClient } from '../resp/client.ts';
import { parseRespEndpoint } from '../resp/endpoint.ts';
import { ioredisLink, type RedisClientOptions, type RedisLink } from '../redis-connection.ts';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

export function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export interface ScriptTransport {
  /** Which client carries the calls (for tests and logs). */
  readonly kind: 'resp' | 'ioredis';
  readonly link: RedisLink;
  /** EVALSHA, then EVAL on NOSCRIPT. Only called while `link.phase` is ready. */
  run(s: Script, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown>;
  /** Disconnects for good; calls still waiting fail. */
  close(): void;
}

export interface ScriptTransportOptions {
  readonly url: string | { readonly cluster: ReadonlyArray<{ readonly host: string; readonly port: number }> };
  /** Bound on a whole call; the connection's own timeouts are derived from it. */
  readonly commandTimeoutMs: number;
  readonly connectionName: string;
}

const requireCjs = createRequire(import.meta.url);

/**
 * ioredis (a CommonJS package) is loaded only for a Redis Cluster or a URL with options: the usual single node never
 * loads it, and a module once loaded stays resident (idle RSS, issue #15; test/server/lazy-loading.test.ts).
 */
function ioredis(): typeof IoRedis {
  return requireCjs('ioredis') as typeof IoRedis;
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

export function createScriptTransport(opts: ScriptTransportOptions): ScriptTransport {
  const connectTimeoutMs = Math.max(1000, 4 * opts.commandTimeoutMs);
  // A silent dead peer: destroy the socket so reconnection starts (and every command waiting on it fails).
  const socketTimeoutMs = Math.max(1000, 4 * opts.commandTimeoutMs);
  const retryDelayMs = (attempt: number): number => Math.min(100 * attempt, 1000);
  const endpoint = typeof opts.url === 'string' ? parseRespEndpoint(opts.url) : null;
  if (endpoint !== null) {
    const client = new RespClient({ endpoint, connectTimeoutMs, socketTimeoutMs, retryDelayMs, connectionName: opts.connectionName });
    return {
      kind: 'resp',
      link: client,
      run: (s, keys, args) =>
        client.send(encodeScriptCall('EVALSHA', s.sha, keys, args)).catch((err: unknown) => {
          if (err instanceof RespReplyError && isNoScript(err)) return client.send(encodeScriptCall('EVAL', s.lua, keys, args));
          throw err;
        }),
      close: () => client.close(),
    };
  }
  const node: RedisClientOptions = {
    connectTimeout: connectTimeoutMs,
    // No per-command timer (ioredis' commandTimeout): each call's own deadline decides (the store's CallDeadlines),
    // and a Redis that stops answering altogether is cut off by socketTimeout, which fails every command still
    // waiting on that connection, so none is left behind.
    enableAutoPipelining: true,
    socketTimeout: socketTimeoutMs,
    maxRetriesPerRequest: 1,
    connectionName: opts.connectionName,
    // close() should not keep the process alive for ioredis' default 2 s when Redis is down.
    disconnectTimeout: 200,
  };
  const { Redis, Cluster } = ioredis();
  const client =
    typeof opts.url === 'string'
      ? new Redis(opts.url, { ...node, lazyConnect: true, enableOfflineQueue: false, retryStrategy: retryDelayMs })
      : new Cluster(
          opts.url.cluster.map((n) => ({ host: n.host, port: n.port })),
          {
            lazyConnect: true,
            enableOfflineQueue: false,
            clusterRetryStrategy: retryDelayMs,
            // Reconnect to a node that went away without a topology change.
            clusterNodeRetryStrategy: retryDelayMs,
            slotsRefreshTimeout: Math.max(1000, opts.commandTimeoutMs),
            retryDelayOnFailover: 50,
            retryDelayOnClusterDown: 50,
            retryDelayOnTryAgain: 50,
            maxRedirections: 4,
            redisOptions: node,
          },
        );
  return {
    kind: 'ioredis',
    link: ioredisLink(client),
    run: async (s, keys, args) => {
      try {
        return await client.evalsha(s.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (isNoScript(err)) return await client.eval(s.lua, keys.length, ...keys, ...args);
        throw err;
      }
    },
    close: () => client.disconnect(),
  };
}
