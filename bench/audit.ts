/**
 * `npm run bench:audit`: what the audit record costs a request, measured on
 * the real chain writer and sink in one process, for each `audit.durability`
 * (docs/audit.md#durability): file sink with `fsync` and with `write`, and
 * the Redis stream sink with `write` (primary only) and `replicated` (WAIT
 * for 1 replica) against private redis-servers on loopback (no persistence).
 * Per mode: CPU of this process per record (framing, canonical JSON,
 * SHA-256, write / XADD, fdatasync / WAIT, checkpoints) and throughput from
 * a closed loop of 32 concurrent appends (saturation); the commit latency a
 * request waits for at a fixed arrival rate (each record timed from when it
 * was due). Redis's own CPU is not included.
 *
 *   npm run bench:audit [-- --rate=200 --seconds=5 --modes=fsync,write,redis-write,replicated]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/stores/audit/chain.ts';
import { JsonlFileSink } from '../src/stores/audit/file-sink.ts';
import { RedisStreamSink } from '../src/stores/audit/redis-stream-sink.ts';
import type { AuditLineSink } from '../src/stores/audit/port.ts';
import { startRedis, startReplicatedRedis } from '../test/helpers/redis.ts';
import { generateSigningKey } from '../src/crypto/signing.ts';
import { createLogger } from '../src/telemetry/logger.ts';

const RATE = Number(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 200);
const SECONDS = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 5);
const MODES = ['fsync', 'write', 'redis-write', 'replicated'] as const;
type Mode = (typeof MODES)[number];
const only = process.argv
  .find((a) => a.startsWith('--modes='))
  ?.slice(8)
  .split(',');
for (const m of only ?? []) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode ${m} (${MODES.join(', ')})`);
const modes = MODES.filter((m) => only === undefined || only.includes(m));

/** A record shaped like the gateway's (same fields and sizes). */
function sample(i: number): object {
  return {
    v: 1,
    requestId: `0a1b2c3d-0000-4000-8000-${String(i).padStart(12, '0')}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    startedAt: '2026-11-23T00:00:00.000Z',
    endedAt: '2026-11-23T00:00:00.004Z',
    method: 'POST',
    path: '/v1/chat/completions',
    endpoint: 'chat',
    identity: { methods: ['api_key'], principal: 'alice', keyId: 'AbCdEfGh', jwt: null, mtls: null },
    authorization: { org: 'acme', tenant: 'research', tier: 'standard', roles: [] },
    classification: { classes: {} },
    decision: { action: 'permit', code: null, policyVersion: null },
    model: 'gpt-demo',
    deployment: { cluster: 'demo-upstream', model: 'demo-model' },
    snapshotVersion: 'v1',
    status: 200,
    outcome: 'completed',
    latencyMs: { total: 4.123, firstByte: 2.5, firstToken: null },
    usage: { promptTokens: 12, completionTokens: 12, source: 'counted' },
    quota: { plan: 'standard', mode: 'store', reservedTokens: 1036 },
  };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Where each mode writes: a fresh file, or a fresh stream on the private Redis (primary alone, or primary + 1 replica). */
let streams = 0;
function makeSink(mode: Mode, dir: string, redis: { single: string; replicated: string }): AuditLineSink {
  const log = createLogger('silent');
  switch (mode) {
    case 'fsync':
    case 'write':
      return new JsonlFileSink(join(dir, 'audit.jsonl'), { durability: mode });
    case 'redis-write':
      return new RedisStreamSink({ url: redis.single, stream: `bench:${streams++}`, commandTimeoutMs: 1000, durability: 'write', log });
    case 'replicated':
      return new RedisStreamSink({
        url: redis.replicated,
        stream: `bench:${streams++}`,
        commandTimeoutMs: 1000,
        durability: 'replicated',
        replicas: 1,
        replicaWaitMs: 1000,
        log,
      });
  }
}

async function withChain<T>(mode: Mode, redis: { single: string; replicated: string }, fn: (chain: AuditChain) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-audit-'));
  try {
    const key = generateSigningKey(join(dir, 'k.pem'));
    const chain = new AuditChain({
      sink: makeSink(mode, dir, redis),
      key,
      checkpointEvery: 1000,
      checkpointMs: 10_000,
      log: createLogger('silent'),
    });
    const out = await fn(chain);
    await chain.close();
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU per record and throughput: a closed loop of 32 concurrent appends (group commit at work), no timers. */
function saturation(
  mode: Mode,
  redis: { single: string; replicated: string },
  total = 20_000,
  concurrency = 32,
): Promise<{ cpuUs: number; perSecond: number }> {
  return withChain(mode, redis, async (chain) => {
    let next = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await chain.append(sample(next++));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { cpuUs: (cpu.user + cpu.system) / total, perSecond: total / seconds };
  });
}

/** Commit latency at a fixed arrival rate, timed from each record's due time. */
function latency(mode: Mode, redis: { single: string; replicated: string }): Promise<[number, number]> {
  return withChain(mode, redis, async (chain) => {
    const total = RATE * SECONDS;
    const latencies: number[] = [];
    const pending: Array<Promise<void>> = [];
    const start = performance.now() + 10;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      while (performance.now() < due) await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now() - 0.5)));
      pending.push(
        chain.append(sample(i)).then(() => {
          latencies.push(performance.now() - due);
        }),
      );
    }
    await Promise.all(pending);
    latencies.sort((a, b) => a - b);
    return [pct(latencies, 50), pct(latencies, 99)];
  });
}

const single = modes.includes('redis-write') ? await startRedis() : null;
const replicated = modes.includes('replicated') ? await startReplicatedRedis(1) : null;
const redis = { single: single?.url ?? '', replicated: replicated?.primary.url ?? '' };
try {
  process.stdout.write(`Audit commit cost (${new Date().toISOString()}, Node ${process.version}; latency: ${SECONDS} s at ${RATE} records/s)\n`);
  process.stdout.write(
    '| durability | sink | CPU µs / record (32 concurrent) | records/s (32 concurrent) | commit latency p50 (ms, from due time) | p99 (ms) |\n|---|---|--:|--:|--:|--:|\n',
  );
  for (const mode of modes) {
    const { cpuUs, perSecond } = await saturation(mode, redis);
    const [p50, p99] = await latency(mode, redis);
    const [durability, sink] =
      mode === 'redis-write' ? ['write', 'redis_stream'] : mode === 'replicated' ? ['replicated (1 replica)', 'redis_stream'] : [mode, 'file'];
    process.stdout.write(
      `| ${durability} | ${sink} | ${cpuUs.toFixed(1)} | ${Math.round(perSecond).toLocaleString('en-US')} | ${p50.toFixed(2)} | ${p99.toFixed(2)} |\n`,
    );
  }
} finally {
  await single?.stop();
  await replicated?.stop();
}
