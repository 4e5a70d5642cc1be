/**
 * audit.durability (docs/audit.md#durability), each guarantee tested on real
 * processes:
 *   - SIGKILL under load, every mode: a child writing through the sidecar's
 *     own createAuditChain is killed while appends are in flight; every
 *     record whose append had resolved is there, and `audit verify` passes
 *     (a torn last line is cut off when the next process opens the file; a
 *     kill rarely tears a write, so the test tears one itself once).
 *   - replicated: acknowledged records are on the replica (the primary is
 *     killed too and the replica alone is verified); with too few replicas
 *     appends fail within the wait, and succeed again once a replica is back.
 *   - fsync: a record's append resolves only after the fdatasync covering it;
 *     write: no fdatasync on the request path, a background one within
 *     syncIntervalMs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import { JsonlFileSink } from '../../src/stores/audit/file-sink.ts';
import { RedisStreamSink } from '../../src/stores/audit/redis-stream-sink.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startReplicatedRedis, startRedis, replicaLinked, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { tempDir } from './chain-helper.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const WRITER = join(import.meta.dirname, 'durability-writer.ts');
const log = createLogger('silent');
const tmp = tempDir();
after(() => tmp.remove());

interface Writer {
  readonly acked: Set<string>;
  readonly failed: () => number;
  readonly output: () => string;
  kill(): Promise<void>;
  stop(): Promise<number | null>;
}

async function startWriter(configFile: string): Promise<Writer> {
  const child: ChildProcess = spawn(process.execPath, [WRITER, configFile, '16'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Set<string>();
  let failed = 0;
  let out = '';
  let pending = '';
  let ready = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout?.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) {
      if (l === 'ready') ready = true;
      else if (l.startsWith('ack ')) acked.add(l.slice(4));
      else if (l.startsWith('fail ')) failed++;
    }
  });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  await waitFor(
    () => {
      if (gone()) throw new Error(`writer exited before ready:\n${out}`);
      return ready;
    },
    { what: () => `writer ready:\n${out}`, timeoutMs: 15_000 },
  );
  return {
    acked,
    failed: () => failed,
    output: () => out,
    kill: async () => {
      if (!gone()) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (!gone()) child.kill('SIGTERM');
      return exited;
    },
  };
}

function writeConfig(name: string, audit: Record<string, unknown>, redisUrl?: string): string {
  const dir = tmp.path(name);
  const file = join(dir, 'gateway.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    stringify({
      audit: { checkpointEvery: 50, checkpointSeconds: 1, signingKeyFile: join(dir, 'audit-key.pem'), file: join(dir, 'audit.jsonl'), ...audit },
      ...(redisUrl === undefined ? {} : { redis: { url: redisUrl, commandTimeoutMs: 1000 } }),
      logging: { level: 'warn' },
    }),
  );
  return file;
}

/** Request ids in a JSONL audit file; a torn last line (a kill mid-write) is skipped, as the verifier does. */
function fileRecords(file: string): { ids: Set<string>; torn: boolean } {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const ids = new Set<string>();
  for (const l of lines) {
    const r = JSON.parse(l) as { type: string; requestId?: string };
    if (r.type === 'request' && r.requestId !== undefined) ids.add(r.requestId);
  }
  return { ids, torn: last !== '' };
}

async function streamRecords(url: string, stream: string): Promise<Set<string>> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const ids = new Set<string>();
    for (const [, fields] of await client.xrange(stream, '-', '+')) {
      const r = JSON.parse(fields[1] ?? '{}') as { type: string; requestId?: string };
      if (r.type === 'request' && r.requestId !== undefined) ids.add(r.requestId);
    }
    return ids;
  } finally {
    client.disconnect();
  }
}

function verify(keyFile: string, source: string[]): void {
  const r = spawnSync(process.execPath, [MAIN, 'audit', 'verify', '--keys', `${keyFile}.pub`, ...source], { encoding: 'utf8' });
  assert.equal(r.status, 0, `audit verify failed:\n${r.stdout}\n${r.stderr}`);
}

/** Waits until the writer has `n` more acknowledged appends than it had. */
async function more(w: Writer, n: number): Promise<void> {
  const target = w.acked.size + n;
  await waitFor(() => w.acked.size >= target, { what: () => `${n} more acknowledged appends (${w.acked.size} so far):\n${w.output()}`, timeoutMs: 20_000 });
}

for (const durability of ['fsync', 'write'] as const) {
  test(`file sink, durability ${durability}: SIGKILL under load loses no acknowledged record; the torn tail is cut; the chains verify`, async (t) => {
    const config = writeConfig(`file-${durability}`, { durability });
    const dir = join(config, '..');
    const auditFile = join(dir, 'audit.jsonl');
    const acked = new Set<string>();
    let torn = 0;
    for (let round = 0; round < 3; round++) {
      // The next process opens the file as the sidecar would: a torn tail is cut off first.
      const w = await startWriter(config);
      await more(w, 300);
      if (round < 2) await w.kill();
      else assert.equal(await w.stop(), 0, w.output());
      for (const id of w.acked) acked.add(id);
      const { ids, torn: tornNow } = fileRecords(auditFile);
      if (tornNow) torn++;
      const missing = [...w.acked].filter((id) => !ids.has(id));
      assert.deepEqual(missing, [], `round ${round}: acknowledged records missing from the file`);
      if (round === 0 && !tornNow) {
        // A SIGKILL lands between system calls, so it rarely tears a write of this size; a machine crash or a
        // disk filling mid-write does. Tear one here: the next process must cut it before it appends.
        appendFileSync(auditFile, '{"type":"request","v":1,"requestId":"never-acknowledged","chain":{"id');
        torn++;
      }
      // Readable by the verifier right after the kill, torn tail and all (not an error without --require-sealed).
      verify(join(dir, 'audit-key.pem'), [auditFile]);
    }
    t.diagnostic(`${acked.size} acknowledged appends over 3 processes (2 SIGKILLed), ${torn} torn tail(s) cut by the next process`);
    const { ids, torn: tornAtEnd } = fileRecords(auditFile);
    assert.equal(tornAtEnd, false, 'a clean stop leaves no torn tail');
    assert.deepEqual(
      [...acked].filter((id) => !ids.has(id)),
      [],
    );
    verify(join(dir, 'audit-key.pem'), [auditFile]);
  });
}

test('redis_stream, durability write: SIGKILL under load loses no record the primary acknowledged', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const config = writeConfig('redis-write', { sink: 'redis_stream', durability: 'write', stream: 'igw:audit:write' }, redis.url);
  const acked = new Set<string>();
  for (let round = 0; round < 2; round++) {
    const w = await startWriter(config);
    await more(w, 300);
    await w.kill();
    for (const id of w.acked) acked.add(id);
  }
  const ids = await streamRecords(redis.url, 'igw:audit:write');
  assert.deepEqual(
    [...acked].filter((id) => !ids.has(id)),
    [],
  );
  verify(join(config, '..', 'audit-key.pem'), ['--redis', redis.url, '--stream', 'igw:audit:write']);
});

test('redis_stream, durability replicated: SIGKILL of the writer and the primary under load; the replica alone has every acknowledged record', async (t) => {
  const set = await startReplicatedRedis(1);
  t.after(() => set.stop());
  const replica = set.replicas[0] as TestRedis;
  const stream = 'igw:audit:replicated';
  const config = writeConfig('redis-replicated', { sink: 'redis_stream', durability: 'replicated', replicas: 1, replicaWaitMs: 1000, stream }, set.primary.url);
  const acked = new Set<string>();
  const first = await startWriter(config);
  await more(first, 300);
  await first.kill();
  for (const id of first.acked) acked.add(id);
  const second = await startWriter(config);
  await more(second, 300);
  // The primary dies with the writer, mid-load: only what WAIT confirmed on the replica was acknowledged.
  await Promise.all([second.kill(), set.primary.kill()]);
  for (const id of second.acked) acked.add(id);
  const ids = await streamRecords(replica.url, stream);
  t.diagnostic(`${acked.size} acknowledged, ${ids.size} records on the replica`);
  assert.deepEqual(
    [...acked].filter((id) => !ids.has(id)),
    [],
    'an acknowledged record missing on the replica',
  );
  verify(join(config, '..', 'audit-key.pem'), ['--redis', replica.url, '--stream', stream]);
});

test('replicated: too few replicas within replicaWaitMs fails the batch; a returning replica makes appends succeed again', async (t) => {
  const set = await startReplicatedRedis(1);
  t.after(() => set.stop());
  const replica = set.replicas[0] as TestRedis;
  const waitMs = 200;

  // Acknowledged means on the replica, at once (no waiting for it to catch up).
  const one = new RedisStreamSink({
    url: set.primary.url,
    stream: 'r1',
    commandTimeoutMs: 1000,
    durability: 'replicated',
    replicas: 1,
    replicaWaitMs: waitMs,
    log,
  });
  t.after(() => one.close());
  await Promise.all([one.append(['{"n":1}']), one.append(['{"n":2}', '{"n":3}'])]);
  const onReplica = await streamRecordsRaw(replica.url, 'r1');
  assert.deepEqual(onReplica, ['{"n":1}', '{"n":2}', '{"n":3}']);

  // replicas: 2 with one replica: every batch fails after the wait, never hangs.
  const two = new RedisStreamSink({
    url: set.primary.url,
    stream: 'r2',
    commandTimeoutMs: 1000,
    durability: 'replicated',
    replicas: 2,
    replicaWaitMs: waitMs,
    log,
  });
  t.after(() => two.close());
  const t0 = performance.now();
  await assert.rejects(two.append(['{"n":1}']), /reached 1 of 2 required replica\(s\) within 200 ms \(WAIT\)/);
  const took = performance.now() - t0;
  assert.ok(took >= waitMs - 5 && took < waitMs + 1000, `rejected after ${took.toFixed(0)} ms`);

  // The replica gone: replicas: 1 fails the same way, then recovers once it is back and synced.
  await replica.kill();
  await assert.rejects(one.append(['{"n":4}']), /reached 0 of 1 required replica\(s\)/);
  await replica.start();
  await waitFor(() => replicaLinked(set.primary, replica), { what: 'the replica to re-attach', timeoutMs: 15_000 });
  await waitFor(
    () =>
      one.append(['{"n":5}']).then(
        () => true,
        () => false,
      ),
    { what: 'appends to succeed with the replica back', timeoutMs: 10_000 },
  );
  assert.ok((await streamRecordsRaw(replica.url, 'r1')).includes('{"n":5}'));
});

async function streamRecordsRaw(url: string, stream: string): Promise<string[]> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return (await client.xrange(stream, '-', '+')).map(([, f]) => f[1] ?? '');
  } finally {
    client.disconnect();
  }
}

/** Counts FileHandle.datasync calls (all handles) while `fn` runs, and when each finished. */
async function spyDatasync<T>(fn: (done: number[]) => Promise<T>): Promise<T> {
  const probe: FileHandle = await open(tmp.write('probe', ''), 'r');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const original = proto.datasync;
  const done: number[] = [];
  proto.datasync = async function (this: FileHandle) {
    await original.call(this);
    done.push(performance.now());
  };
  try {
    return await fn(done);
  } finally {
    proto.datasync = original;
  }
}

test('fsync: each append resolves after an fdatasync that covers it; write: none on the request path, one in the background', async () => {
  await spyDatasync(async (done) => {
    const sink = new JsonlFileSink(tmp.path('order-fsync.jsonl'), { durability: 'fsync' });
    for (let i = 0; i < 5; i++) {
      const before = done.length;
      await Promise.all([sink.append([`{"i":${i}}`]), sink.append([`{"j":${i}}`])]);
      const resolvedAt = performance.now();
      assert.ok(done.length > before, 'append resolved without an fdatasync');
      assert.ok((done.at(-1) ?? Infinity) <= resolvedAt);
    }
    await sink.close();
  });

  await spyDatasync(async (done) => {
    const sink = new JsonlFileSink(tmp.path('order-write.jsonl'), { durability: 'write', syncIntervalMs: 30 });
    const before = done.length;
    await sink.append(['{"a":1}']);
    assert.equal(done.length, before, 'write mode synced on the request path');
    await waitFor(() => done.length > before, { what: 'the background fdatasync' });
    const synced = done.length;
    await sink.append(['{"a":2}']);
    await waitFor(() => done.length > synced, { what: 'the background fdatasync of the second write' });
    await sink.close();
  });
});
