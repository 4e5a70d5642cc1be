/**
 * `npm run bench:quota-redis -- [--requests 30000] [--rounds 3]`: what the
 * quota store's scripts cost the Redis server, which every sidecar replica
 * shares (one Redis runs one script at a time, so its time per admission
 * bounds the admissions per second of the whole fleet). A private loopback
 * redis-server; 32 admissions in flight, each against the five limits of
 * `npm run bench`'s plan (six keys), each settled when admitted. The store's
 * clock moves 25 ms per admission, so the two 60 s windows hold their full
 * 61 sub-windows after the first 2,440 requests, as under a sustained load of
 * any rate. Prints Redis' own accounting (INFO commandstats): µs per EVALSHA
 * (admissions and settlement batches) and per admission, per round.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RedisQuotaStore } from '../src/stores/quota/redis.ts';
import { BENCH_STORE_LIMITS } from './lib/plan.ts';
import { adminClient, startRedis } from '../test/helpers/redis.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '30000' }, rounds: { type: 'string', default: '3' } } });
const requests = Number(values.requests);
const rounds = Number(values.rounds);

for (let round = 1; round <= rounds; round++) {
  const redis = await startRedis();
  let clock = Date.now();
  const store = new RedisQuotaStore({ url: redis.url, keyPrefix: 'bench:', commandTimeoutMs: 5000, log: pino({ level: 'silent' }), now: () => (clock += 25) });
  const admin = await adminClient(redis.url);
  try {
    let seq = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (seq < requests) {
          const id = `r${seq++}`;
          if (!(await store.admit(id, 'org', BENCH_STORE_LIMITS)).admitted) throw new Error('a bench admission was refused');
          await store.settle(id, 'org', { tokenDelta: -100, costDelta: 0 });
        }
      }),
    );
    const stats = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await admin.info('commandstats'));
    if (stats === null) throw new Error('no EVALSHA in INFO commandstats');
    const calls = Number(stats[1]);
    const usec = Number(stats[2]);
    process.stdout.write(
      `round ${round}: ${requests} admissions, ${calls} EVALSHA calls, ${(usec / calls).toFixed(1)} µs per call, ` +
        `${(usec / requests).toFixed(1)} µs of Redis per admission (settlement included), window sub-windows ${(await admin.hkeys('bench:{org}:rpm')).filter((f) => !f.startsWith('-')).length}\n`,
    );
  } finally {
    await store.close();
    admin.disconnect();
    await redis.stop();
  }
}
