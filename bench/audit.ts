/**
 * `npm run bench:audit`: what the audit record costs a request, measured on
 * the real chain writer and file sink in one process: CPU per record (framing,
 * canonical JSON, SHA-256, JSON line, write, fdatasync, checkpoints) and the
 * commit latency a request waits for, at a fixed arrival rate (each record
 * timed from when it was due) with and without fsync.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/stores/audit/chain.ts';
import { JsonlFileSink } from '../src/stores/audit/file-sink.ts';
import { generateSigningKey } from '../src/crypto/signing.ts';
import { createLogger } from '../src/telemetry/logger.ts';

const RATE = Number(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 200);
const SECONDS = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 5);

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

async function withChain<T>(fsync: boolean, fn: (chain: AuditChain) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-audit-'));
  try {
    const key = generateSigningKey(join(dir, 'k.pem'));
    const chain = new AuditChain({
      sink: new JsonlFileSink(join(dir, 'audit.jsonl'), { fsync }),
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

/** CPU per record: a closed loop of 32 concurrent appends (group commit at work), no timers. */
function cpuPerRecord(fsync: boolean, total = 20_000, concurrency = 32): Promise<number> {
  return withChain(fsync, async (chain) => {
    let next = 0;
    const cpu0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await chain.append(sample(next++));
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / total;
  });
}

/** Commit latency at a fixed arrival rate, timed from each record's due time. */
function latency(fsync: boolean): Promise<[number, number]> {
  return withChain(fsync, async (chain) => {
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

process.stdout.write(`Audit commit cost (${new Date().toISOString()}, Node ${process.version}; latency: ${SECONDS} s at ${RATE} records/s)\n`);
process.stdout.write('| fsync | CPU µs / record (32 concurrent) | commit latency p50 (ms, from due time) | p99 (ms) |\n|---|--:|--:|--:|\n');
for (const fsync of [true, false]) {
  const cpu = await cpuPerRecord(fsync);
  const [p50, p99] = await latency(fsync);
  process.stdout.write(`| ${fsync ? 'on' : 'off'} | ${cpu.toFixed(1)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} |\n`);
}
