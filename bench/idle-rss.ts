/**
 * `npm run bench:idle-rss`: the sidecar's resident memory at idle, as
 * `npm run bench` reads it (VmRSS from /proc, bench/lib/rss.ts), without
 * Envoy or load: a sidecar started as `inference-gateway serve` starts, the
 * reading taken once it is ready and has settled, over several starts.
 *
 *   npm run bench:idle-rss -- [--config default|bench] [--rounds 5] [--settle-ms 1000]
 *                             [--root DIR] [--sidecar-node-args=S] [--max-mb N]
 *
 * --config default: the test fixtures' configuration (an inline API key,
 *   in-memory quotas, the audit file, no Redis, no tracing);
 *   bench: what `npm run bench` runs (its quota plan on a private
 *   redis-server, audit durability fsync).
 * --root DIR: start the launcher (bin/inference-gateway.js) of another
 *   checkout, e.g. an older commit extracted with `git archive`, with this
 *   checkout's node_modules linked in, to compare.
 * --max-mb N: exit 1 when the median is above N.
 *
 * One start before the measured ones fills Node's compile cache
 * (bin/compile-cache.js) for these sources and node options, as any earlier
 * start of the same code does; its reading is shown apart.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeGatewayFiles } from '../test/helpers/fixtures.ts';
import { startRedis, type TestRedis } from '../test/helpers/redis.ts';
import { BENCH_PLAN } from './lib/plan.ts';
import { freePort, startSidecarProcess } from './lib/procs.ts';
import { readRssMb } from './lib/rss.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'default' },
    rounds: { type: 'string', default: '5' },
    'settle-ms': { type: 'string', default: '1000' },
    root: { type: 'string' },
    'sidecar-node-args': { type: 'string', default: '' },
    'max-mb': { type: 'string' },
  },
});
const configName = values.config;
if (configName !== 'default' && configName !== 'bench') throw new Error('--config must be default or bench');
const rounds = Number(values.rounds);
const settleMs = Number(values['settle-ms']);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
const root = resolve(values.root ?? fileURLToPath(new URL('..', import.meta.url)));
const cli = join(root, 'bin', 'inference-gateway.js');
const nodeArgs = values['sidecar-node-args'].split(' ').filter((a) => a !== '');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let redis: TestRedis | null = null;
const adminPort = await freePort();
if (configName === 'bench') redis = await startRedis();
const files = writeGatewayFiles({
  keys: [{ principal: 'bench', tier: 'bench' }],
  config: {
    server: { admin: { port: adminPort } },
    ...(redis === null ? {} : { audit: { durability: 'fsync' }, quotas: { plans: [BENCH_PLAN] }, redis: { url: redis.url } }),
  },
});

/** One start: ready, settled, read, stopped. */
async function idleRss(): Promise<number> {
  const sidecar = await startSidecarProcess(files.configFile, adminPort, undefined, nodeArgs, cli);
  try {
    await sleep(settleMs);
    return readRssMb(sidecar.pid);
  } finally {
    await sidecar.stop(3000);
  }
}

try {
  process.stdout.write(`idle RSS of ${cli} serve (--config ${configName}${nodeArgs.length > 0 ? `, node ${nodeArgs.join(' ')}` : ''})\n`);
  process.stdout.write(`  first start (fills the compile cache if needed): ${(await idleRss()).toFixed(1)} MB\n`);
  const readings: number[] = [];
  for (let i = 0; i < rounds; i++) readings.push(await idleRss());
  const sorted = [...readings].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
  process.stdout.write(`  starts: ${readings.map((r) => r.toFixed(1)).join(', ')} MB\n`);
  process.stdout.write(`  median ${median.toFixed(1)} MB (min ${sorted[0]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)})\n`);
  if (values['max-mb'] !== undefined && !(median <= Number(values['max-mb']))) {
    process.stdout.write(`  ABOVE the budget of ${values['max-mb']} MB\n`);
    process.exitCode = 1;
  }
} finally {
  await redis?.stop();
  rmSync(files.dir, { recursive: true, force: true });
}
