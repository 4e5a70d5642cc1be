/**
 * The sidecar's own chain writer (src/stores/audit/chain.ts) over both sinks,
 * checked by the verifier: what the gateway writes verifies, sealed at close.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AuditChain } from '../../src/stores/audit/chain.ts';
import { JsonlFileSink } from '../../src/stores/audit/file-sink.ts';
import { RedisStreamSink } from '../../src/stores/audit/redis-stream-sink.ts';
import { fileSources, redisStreamSource, verifyAudit } from '../../src/audit/verify.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startRedis } from '../helpers/redis.ts';
import { keyMap, sampleRecord, tempDir } from './chain-helper.ts';

const log = createLogger('silent');
const tmp = tempDir();
after(() => tmp.remove());
const key = tmp.key('k.pem');

function strip(i: number): object {
  const r: Record<string, unknown> = { ...sampleRecord(i) };
  delete r.type;
  return r;
}

test('the gateway chain writer over the file sink (with rotation) verifies sealed', async () => {
  const dir = tmp.path('gw');
  let t = Date.UTC(2026, 10, 23);
  const sink = new JsonlFileSink(`${dir}/audit.jsonl`, { durability: 'write', maxBytes: 4096, log, now: () => (t += 1000) });
  const chain = new AuditChain({ sink, key, checkpointEvery: 7, checkpointMs: 60_000, log });
  await Promise.all(Array.from({ length: 40 }, (_, i) => chain.append(strip(i + 1))));
  await chain.close();
  const r = await verifyAudit(fileSources([dir]), keyMap(key), { requireSealed: true });
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  assert.equal(r.counts.records, 40);
  assert.ok(r.counts.sources > 1, 'expected rotated files');
  assert.equal(r.chains[0]?.sealed, true);
});

test('the gateway chain writer over the Redis stream sink verifies sealed', async () => {
  const redis = await startRedis();
  try {
    const sink = new RedisStreamSink({ url: redis.url, stream: 'igw:audit', commandTimeoutMs: 1000, log });
    const chain = new AuditChain({ sink, key, checkpointEvery: 5, checkpointMs: 60_000, log });
    await Promise.all(Array.from({ length: 23 }, (_, i) => chain.append(strip(i + 1))));
    await chain.close();
    const r = await verifyAudit(redisStreamSource({ url: redis.url, stream: 'igw:audit' }), keyMap(key), { requireSealed: true });
    assert.equal(r.ok, true, JSON.stringify(r.errors));
    assert.equal(r.counts.records, 23);
    assert.equal(r.chains[0]?.sealed, true);
  } finally {
    await redis.stop();
  }
});
