import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisStreamSource, verifyAudit } from '../../src/audit/verify.ts';
import { exportUsage } from '../../src/audit/export.ts';
import { RedisStreamSink } from '../../src/stores/audit/redis-stream-sink.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { keyMap, TestChain, tempDir, type Line } from './chain-helper.ts';
import { waitFor } from '../helpers/wait.ts';

const log = createLogger('silent');
const tmp = tempDir();
const key = tmp.key('k.pem');
const keys = keyMap(key);
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

let redis: TestRedis;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
});
after(async () => {
  client.disconnect();
  await redis.stop();
  tmp.remove();
});

async function commandCalls(cmd: string): Promise<number> {
  const info = await client.info('commandstats');
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info);
  return m === null ? 0 : Number(m[1]);
}

test('concurrent appends are group-committed, each line is the record JSON, and the stream verifies', async () => {
  const stream = 'igw:audit:t1';
  const sink = new RedisStreamSink({ url: redis.url, stream, commandTimeoutMs: 1000, log });
  const chains = [new TestChain(), new TestChain()];
  // Concurrent appends, in the order a chain writer hands them in.
  const lines: Line[] = [];
  for (let i = 1; i <= 30; i++) {
    for (const c of chains) {
      lines.push(c.record());
      if (i % 10 === 0 && i < 30) lines.push(c.checkpoint(key));
    }
  }
  for (const c of chains) lines.push(c.checkpoint(key, true));
  const execBefore = await commandCalls('exec');
  const xaddBefore = await commandCalls('xadd');
  await Promise.all(lines.map((l) => sink.append([JSON.stringify(l)])));
  await sink.close();
  const execs = (await commandCalls('exec')) - execBefore;
  assert.equal((await commandCalls('xadd')) - xaddBefore, lines.length);
  assert.ok(execs >= 1 && execs <= 3, `expected the appends batched into few transactions, got ${execs} EXEC`);

  const entries = await client.xrange(stream, '-', '+');
  assert.equal(entries.length, lines.length);
  assert.deepEqual(entries[0]?.[1], ['line', JSON.stringify(lines[0])]);

  const r = await verifyAudit(redisStreamSource({ url: redis.url, stream, pageSize: 7 }), keys, { requireSealed: true });
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  assert.equal(r.counts.records, 60);
  assert.equal(r.counts.chains, 2);
  assert.ok(r.chains.every((c) => c.sealed));

  // prefix + stream name the same key.
  const r2 = await verifyAudit(redisStreamSource({ url: redis.url, prefix: 'igw:', stream: 'audit:t1' }), keys);
  assert.equal(r2.counts.lines, lines.length);

  const keyFile = tmp.path('keys/k.pem.pub');
  let res = spawnSync(process.execPath, [MAIN, 'audit', 'verify', '--keys', keyFile, '--require-sealed', '--redis', redis.url, '--stream', stream], {
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /^OK: 60 record\(s\)/);

  const usage = await exportUsage(redisStreamSource({ url: redis.url, stream }));
  assert.equal(usage.totals.requests, 60);

  // An entry injected into the stream breaks its chain at that entry.
  const first = chains[0];
  assert.ok(first !== undefined);
  const forged = new TestChain(first.id).record();
  await client.xadd(stream, '*', 'line', JSON.stringify(forged));
  res = spawnSync(process.execPath, [MAIN, 'audit', 'verify', '--keys', keyFile, '--redis', redis.url, '--stream', stream], { encoding: 'utf8' });
  assert.equal(res.status, 1, res.stdout);
  assert.match(
    res.stdout,
    new RegExp(
      `first broken position: redis://127\\.0\\.0\\.1:${redis.port} ${stream}:${lines.length + 1} \\(entry \\d+-\\d+\\): record seq 1 after the final checkpoint`,
    ),
  );
});

test('maxLen trims the stream approximately', async () => {
  const stream = 'igw:audit:trim';
  const sink = new RedisStreamSink({ url: redis.url, stream, commandTimeoutMs: 1000, maxLen: 10, log });
  const c = new TestChain();
  for (let i = 0; i < 500; i++) await sink.append([JSON.stringify(c.record())]);
  await sink.close();
  const len = await client.xlen(stream);
  assert.ok(len < 500, `stream length ${len}`);
});

test('Redis down: append rejects within the command timeout (no offline queue), and recovers when Redis is back', async () => {
  const stream = 'igw:audit:down';
  const timeoutMs = 200;
  const sink = new RedisStreamSink({ url: redis.url, stream, commandTimeoutMs: timeoutMs, log });
  const c = new TestChain();
  await sink.append([JSON.stringify(c.record())]);
  await redis.kill();
  try {
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const results = await Promise.allSettled([
        sink.append([JSON.stringify(c.record())]),
        sink.append([JSON.stringify(c.record())]),
        sink.append([JSON.stringify(c.record())]),
      ]);
      const elapsed = Date.now() - t0;
      assert.ok(
        results.every((r) => r.status === 'rejected'),
        JSON.stringify(results),
      );
      assert.ok(elapsed < timeoutMs * 2 + 100, `rejected after ${elapsed} ms`);
    }
  } finally {
    await redis.start();
  }
  await waitFor(
    () =>
      sink.append([JSON.stringify(c.record())]).then(
        () => true,
        () => false,
      ),
    { what: 'the sink to append again once Redis is back', timeoutMs: 10_000, intervalMs: 50 },
  );
  await sink.close();
  await assert.rejects(sink.append([JSON.stringify(c.record())]), /closed/);
});

test('a sink that never reached Redis rejects within the timeout', async () => {
  const sink = new RedisStreamSink({ url: 'redis://127.0.0.1:1', stream: 'x', commandTimeoutMs: 150, log });
  const t0 = Date.now();
  await assert.rejects(sink.append([JSON.stringify({ type: 'request' })]));
  assert.ok(Date.now() - t0 < 500, `took ${Date.now() - t0} ms`);
  await sink.close();
});
