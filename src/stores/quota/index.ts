/**
 * Which quota store a sidecar uses: Redis when `redis.url` is set (shared by
 * every replica, behind a circuit breaker), otherwise memory (the embedded
 * single-node default). The local in-memory store also serves plans whose
 * store-down policy is `local`. The Redis store (and ioredis with it) is
 * loaded only when configured.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import type { QuotaStore } from './port.ts';
import { MemoryQuotaStore } from './memory.ts';
import { CircuitBreaker } from './breaker.ts';

export interface QuotaStores {
  readonly primary: QuotaStore;
  readonly local: QuotaStore;
  readonly breaker: CircuitBreaker | null;
  close(): Promise<void>;
}

export async function createQuotaStores(config: GatewayConfig, log: Logger): Promise<QuotaStores> {
  const local = new MemoryQuotaStore();
  const nodes = config.redis.clusterNodes;
  const url =
    nodes.length > 0
      ? { cluster: nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })) }
      : config.redis.url;
  if (url === undefined) {
    return { primary: local, local, breaker: null, close: () => local.close() };
  }
  const { RedisQuotaStore } = await import('./redis.ts');
  const primary = new RedisQuotaStore({ url, keyPrefix: config.redis.keyPrefix, commandTimeoutMs: config.redis.commandTimeoutMs, log });
  const breaker = new CircuitBreaker(config.quotas.breaker);
  return {
    primary,
    local,
    breaker,
    close: async () => {
      await primary.close();
      await local.close();
    },
  };
}
