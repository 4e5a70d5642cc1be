/**
 * `node bench/quota-client.ts [--rounds 7] [--seconds 3] [--concurrency 32]`:
 * the Redis quota store's CPU per request with each of its two clients, on a
 * private loopback redis-server: the lean RESP client (what a plain
 * redis:// URL gets) and ioredis (what a URL with query options gets, as a
 * Cluster does; here `?connectionName=…` selects it). Each request is one
 * admission against five limits (six keys, as the bench's plan) and its
 * settlement; `concurrency` requests are in flight at once. The two stores
 * alternate, round after round, in this one process; prints each round and
 * the medians of µs of this process's CPU per request and requests/s.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RedisQuotaStore } from '../src/stores/quota/redis.ts';
import { BENCH_STORE_LIMITS } from './lib/plan.ts';
import { startRedis } from '../test/helpers/redis.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

const redis = await startRedis();
const log = pino({ level: 'silent' });
const stores = {
  resp: new RedisQuotaStore({ url: redis.url, keyPrefix: 'bench:', commandTimeoutMs: 1000, log }),
  ioredis: new RedisQuotaStore({ url: `${redis.url}?connectionName=quota-bench`, keyPrefix: 'bench:', commandTimeoutMs: 1000, log }),
};
if (stores.resp.client !== 'resp' || stores.ioredis.client !== 'ioredis') throw new Error('the stores did not pick the expected clients');

let seq = 0;
let failedSettlements = 0;
async function load(store: RedisQuotaStore, ms: number): Promise<{ cpuUs: number; requests: number; wallMs: number }> {
  const until = performance.now() + ms;
  let requests = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const id = `r${seq++}`;
      const d = await store.admit(id, 'bench-org', BENCH_STORE_LIMITS);
      if (!d.admitted) throw new Error('a bench request was denied');
      // Settled without waiting, as the sidecar does at the end of a request.
      store.settle(id, 'bench-org', { tokenDelta: -100, costDelta: 0 }).catch(() => failedSettlements++);
      requests++;
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(cpu);
  return { cpuUs: used.user + used.system, requests, wallMs: performance.now() - started };
}

const results: Record<keyof typeof stores, Array<{ cpuUs: number; rps: number }>> = { resp: [], ioredis: [] };
for (const s of Object.values(stores)) await load(s, 1000); // warm-up: connections, scripts loaded, JIT
for (let round = 1; round <= rounds; round++) {
  const order: Array<keyof typeof stores> = round % 2 === 1 ? ['ioredis', 'resp'] : ['resp', 'ioredis'];
  for (const name of order) {
    const r = await load(stores[name], seconds * 1000);
    const perReq = r.cpuUs / r.requests;
    const rps = r.requests / (r.wallMs / 1000);
    results[name].push({ cpuUs: perReq, rps });
    process.stdout.write(`round ${round} ${name}: ${perReq.toFixed(1)} µs CPU per request, ${Math.round(rps)} requests/s\n`);
  }
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
for (const name of ['ioredis', 'resp'] as const) {
  const rs = results[name];
  process.stdout.write(
    `median ${name}: ${median(rs.map((r) => r.cpuUs)).toFixed(1)} µs CPU per request, ${Math.round(median(rs.map((r) => r.rps)))} requests/s ` +
      `(${concurrency} in flight, ${rs.length} rounds of ${seconds} s); Node ${process.version}\n`,
  );
}
if (failedSettlements > 0) throw new Error(`${failedSettlements} settlements failed`);
await stores.resp.close();
await stores.ioredis.close();
await redis.stop();
