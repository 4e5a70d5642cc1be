/**
 * The Redis breaker does not turn a blip into an outage (issue #14 item 2),
 * measured the way it was found: two sidecar replicas behind real Envoy,
 * sharing a real Redis, a steady 120 req/s of fail-closed traffic, and Redis
 * stalled (SIGSTOP) for 350 ms. Only requests that waited on the stalled
 * Redis longer than the command timeout may be refused: ≤ 2 % of the run, none
 * after the stall. Before the fix the same stall refused 40 % of requests for
 * 10 s on every replica. And a burst of simultaneous requests on a healthy
 * Redis is decided by the store, every one (it used to produce 503s).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { writeGatewayFiles, type GatewayFiles } from '../helpers/fixtures.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { replica, startSidecarProcess, type SidecarProcess } from '../helpers/stack.ts';

let redis: TestRedis;
let upstream: DemoUpstream;
let files: GatewayFiles;
let envoy: EnvoyProcess;
let url: string;
const sidecars: SidecarProcess[] = [];
const socket = (i: number) => replica(files.dir, i).socket;

before(async () => {
  redis = await startRedis();
  upstream = await startDemoUpstream({ port: 0 });
  files = writeGatewayFiles({
    keys: [{ principal: 'alice', tier: 'closed' }],
    config: {
      redis: { url: redis.url },
      // The default breaker and command timeout: what a deployer runs.
      quotas: { plans: [{ name: 'closed', whenStoreDown: 'fail_closed', limits: [{ scope: 'key', rpm: 1_000_000 }] }] },
    },
  });
  for (const i of [0, 1]) {
    sidecars.push(await startSidecarProcess(files.configFile, replica(files.dir, i).env));
  }
  envoy = await startEnvoy({
    workDir: join(files.dir, 'envoy'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: [socket(0), socket(1)],
      clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: upstream.port }],
    }),
  });
  url = `http://127.0.0.1:${await envoy.listenerPort()}/v1/chat/completions`;
});

after(async () => {
  if (redis?.pid != null) process.kill(redis.pid, 'SIGCONT');
  await envoy?.stop();
  for (const s of sidecars) await s.stop();
  await upstream?.close();
  await redis?.stop();
});

const until = async (at: number): Promise<void> => {
  const wait = at - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
};

async function ask(): Promise<number> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${files.keys['alice'] ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await r.arrayBuffer();
  return r.status;
}

test('a 350 ms Redis stall at 120 req/s through Envoy and two replicas refuses ≤ 2 % of a 10 s run, none after the stall', async (t) => {
  const pid = redis.pid;
  assert.ok(pid !== null);
  for (let i = 0; i < 20; i++) assert.equal(await ask(), 200, 'warm-up');
  const RATE = 120;
  const RUN_MS = 10_000;
  const t0 = performance.now();
  let stallStart = 0;
  let stallEnd = 0;
  const stall = (async () => {
    await until(t0 + 3000);
    process.kill(pid, 'SIGSTOP');
    stallStart = performance.now();
    await until(stallStart + 350);
    process.kill(pid, 'SIGCONT');
    stallEnd = performance.now();
  })();
  const results: Array<{ start: number; status: number }> = [];
  const inflight: Array<Promise<void>> = [];
  for (let i = 0; i < (RATE * RUN_MS) / 1000; i++) {
    await until(t0 + (i * 1000) / RATE);
    const start = performance.now();
    inflight.push(ask().then((status) => void results.push({ start, status })));
  }
  await Promise.all(inflight);
  await stall;
  const refused = results.filter((r) => r.status !== 200);
  const pct = (refused.length / results.length) * 100;
  const lastRefused = Math.max(stallStart, ...refused.map((r) => r.start));
  const statuses = [...new Set(refused.map((r) => r.status))];
  t.diagnostic(
    `${results.length} requests; Redis stalled ${(stallEnd - stallStart).toFixed(0)} ms; ${refused.length} refused (${pct.toFixed(2)}%, statuses ${statuses.join(',') || 'none'}); ` +
      `last refused request started ${(lastRefused - stallEnd).toFixed(0)} ms after the stall ended`,
  );
  assert.ok(pct <= 2, `${pct.toFixed(2)}% refused`);
  assert.ok(lastRefused - stallEnd <= 1000, 'recovered within 1 s of the stall');
  assert.ok(
    statuses.every((s) => s === 503),
    `refusals are the fail-closed 503: ${statuses.join(',')}`,
  );
});

test('a burst of 200 simultaneous requests on a healthy Redis: every one decided by the store, no 503', async (t) => {
  const statuses = await Promise.all(Array.from({ length: 200 }, () => ask()));
  const counts = Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length]));
  t.diagnostic(`200 simultaneous requests: ${JSON.stringify(counts)}`);
  assert.deepEqual(counts, { 200: 200 });
});
