/**
 * The key store the gateway runs with, from config: inline `auth.apiKeys`,
 * then each of `auth.apiKeyFiles` in order, then Redis when
 * `auth.redisKeys` is on. The first source that knows an id answers. The
 * Redis store (and ioredis with it) is loaded only when configured.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import type { ApiKeyStore } from './port.ts';
import { CompositeKeyStore } from './composite.ts';
import { FileKeyStore } from './file.ts';
import { StaticKeyStore } from './static.ts';

export type { ApiKeyStore, KeyRecord, KeyStatus, KeyUpdate, WritableKeyStore } from './port.ts';
export { keyStatus } from './port.ts';
export { StaticKeyStore } from './static.ts';
export { FileKeyStore, KeyFile } from './file.ts';
export { CompositeKeyStore } from './composite.ts';

/** Rejects (ConfigError for a bad key file) when a source cannot be set up; Redis connects lazily. */
export async function createKeyStore(config: GatewayConfig, log: Logger): Promise<ApiKeyStore> {
  const stores: ApiKeyStore[] = [];
  const klog = log.child({ component: 'api-keys' });
  try {
    if (config.auth.apiKeys.length > 0) stores.push(new StaticKeyStore(config.auth.apiKeys));
    for (const path of config.auth.apiKeyFiles) stores.push(new FileKeyStore(path, { log: klog }));
    if (config.auth.redisKeys) {
      const url = config.redis.url;
      if (url === undefined) throw new Error('auth.redisKeys needs redis.url');
      const { RedisKeyStore } = await import('./redis.ts');
      stores.push(
        new RedisKeyStore({
          url,
          keyPrefix: config.redis.keyPrefix,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          cacheSeconds: config.auth.keyCacheSeconds,
          log: klog,
        }),
      );
    }
  } catch (err) {
    for (const s of stores) void s.close();
    throw err;
  }
  if (stores.length === 1 && stores[0] !== undefined) return stores[0];
  return new CompositeKeyStore(stores);
}
