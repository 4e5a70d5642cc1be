/** The audit pipeline a sidecar writes to: the signed hash chain over the configured sink. */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import { AuditChain } from './chain.ts';
import { JsonlFileSink } from './file-sink.ts';
import type { AuditLineSink } from './port.ts';
import { loadOrCreateSigningKey } from '../../crypto/signing.ts';

export async function createAuditChain(config: GatewayConfig, log: Logger): Promise<AuditChain> {
  const a = config.audit;
  const { key, created } = loadOrCreateSigningKey(a.signingKeyFile);
  if (created) log.warn({ file: a.signingKeyFile, kid: key.kid }, 'created a new audit signing key (keep its .pub for verification)');
  let sink: AuditLineSink;
  if (a.sink === 'redis_stream') {
    const { RedisStreamSink } = await import('./redis-stream-sink.ts');
    sink = new RedisStreamSink({
      url: config.redis.url ?? '',
      stream: a.stream,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      durability: a.durability === 'replicated' ? 'replicated' : 'write',
      replicas: a.replicas,
      replicaWaitMs: a.replicaWaitMs,
      log,
    });
  } else {
    // The schema allows only fsync or write with the file sink.
    sink = new JsonlFileSink(a.file, {
      durability: a.durability === 'write' ? 'write' : 'fsync',
      syncIntervalMs: a.syncIntervalMs,
      maxBytes: a.maxFileBytes,
      log,
    });
  }
  const chain = new AuditChain({ sink, key, checkpointEvery: a.checkpointEvery, checkpointMs: a.checkpointSeconds * 1000, log });
  log.info({ chain: chain.id, kid: key.kid, sink: a.sink, durability: a.durability }, 'audit chain started');
  return chain;
}
