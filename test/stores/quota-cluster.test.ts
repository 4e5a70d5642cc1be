/**
 * RedisQuotaStore on a Redis Cluster (three local masters): every key of a
 * decision carries the `{tag}` hash tag, so admit and settle are one script
 * call on one slot — no CROSSSLOT — for orgs spread over all three nodes, and
 * admission stays exact when two sidecars race.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import { subWindowMs } from '../../src/stores/quota/memory.ts';
import type { Decision, LimitSpec } from '../../src/stores/quota/port.ts';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';

const PREFIX = 'qcl:';
const DAY = 86_400_000;
const FOREVER = 1_000_000_000_000;
let cluster: TestRedisCluster;
let admin: Cluster;

before(async () => {
  cluster = await startRedisCluster(3);
  admin = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })));
  admin.on('error', () => undefined);
});
after(async () => {
  admin.disconnect();
  await cluster.stop();
});

function sidecar(): RedisQuotaStore {
  return new RedisQuotaStore({ url: { cluster: cluster.nodes }, keyPrefix: PREFIX, commandTimeoutMs: 1000, log: pino({ level: 'silent' }) });
}

/** Which master (by port) serves each slot. */
async function slotOwners(): Promise<(slot: number) => number> {
  const ranges = await admin.cluster('SLOTS');
  return (slot) => {
    for (const [from, to, master] of ranges) if (master !== undefined && slot >= from && slot <= to) return master[1];
    throw new Error(`slot ${slot} unowned`);
  };
}

const limits = (cost: number): LimitSpec[] => [
  { kind: 'rate', name: 'requests:rps', key: 'rps', ratePerSec: 1, burst: 1000 },
  { kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 20, windowMs: FOREVER, cost: 1 },
  { kind: 'window', name: 'tokens:tpm', key: 'tpm', limit: 1_000_000, windowMs: FOREVER, cost },
  { kind: 'day', name: 'tokens:tpd', key: 'tpd', limit: 1_000_000, utcOffsetMs: -8 * 3_600_000, cost },
  { kind: 'concurrency', name: 'requests:concurrent', key: 'conc', limit: 20, leaseMs: 60_000 },
];

test('the cluster refuses a multi-slot script (so a passing test means one slot per decision)', async () => {
  await assert.rejects(admin.eval('return 1', 2, 'x:{a}:1', 'x:{b}:1'), /CROSSSLOT/);
});

test('orgs on all three nodes: 21 concurrent admits per org from two sidecars → exactly 20 each; settle applies deltas and frees leases', async (t) => {
  const owner = await slotOwners();
  const byNode = new Map<number, string[]>();
  for (let i = 0; byNode.size < 3 || [...byNode.values()].some((orgs) => orgs.length < 2); i++) {
    const org = `org-${i}`;
    const slot = await admin.cluster('KEYSLOT', `${PREFIX}{${org}}:rpm`);
    const port = owner(slot);
    byNode.set(port, [...(byNode.get(port) ?? []), org]);
    if (i > 200) throw new Error('tags did not spread over the nodes');
  }
  const orgs = [...byNode.values()].flatMap((o) => o.slice(0, 2));
  t.diagnostic(`orgs by node: ${JSON.stringify(Object.fromEntries(byNode))}`);
  const a = sidecar();
  const b = sidecar();
  try {
    const errors: string[] = [];
    const started = performance.now();
    const results = await Promise.all(
      orgs.map(async (org) => {
        const ids = Array.from({ length: 21 }, (_, i) => `${org}-req-${i}`);
        const decisions = await Promise.all(
          ids.map((id, i) =>
            (i % 2 === 0 ? a : b).admit(id, org, limits(100)).catch((err: unknown) => {
              errors.push(err instanceof Error ? err.message : String(err));
              return null;
            }),
          ),
        );
        return { org, ids, decisions };
      }),
    );
    t.diagnostic(`${orgs.length} orgs × 21 concurrent admits through 2 cluster-mode stores in ${(performance.now() - started).toFixed(1)} ms`);
    assert.deepEqual(errors, [], 'no errors (in particular no CROSSSLOT)');
    for (const { org, decisions } of results) {
      const admitted = decisions.filter((d): d is Decision => d !== null && d.admitted);
      assert.equal(admitted.length, 20, `${org}: exactly 20 admitted`);
      const denied = decisions.find((d) => d !== null && !d.admitted);
      assert.ok(denied !== undefined && !denied.admitted && denied.deniedBy === 'requests:rpm', `${org}: the 21st refused by requests:rpm`);
      assert.equal(await admin.zcard(`${PREFIX}{${org}}:conc`), 20);
    }

    // Settle through the other sidecar: −50 tokens each, leases released; twice (idempotent).
    for (let round = 0; round < 2; round++) {
      await Promise.all(
        results.flatMap(({ org, ids, decisions }) =>
          ids.filter((_, i) => decisions[i]?.admitted === true).map((id, i) => (i % 2 === 0 ? b : a).settle(id, org, { tokenDelta: -50, costDelta: 0 })),
        ),
      );
    }
    for (const { org, decisions } of results) {
      const now = (decisions.find((d) => d !== null) as Decision).now;
      const dayIdx = Math.floor((now + -8 * 3_600_000) / DAY);
      assert.equal(await admin.zcard(`${PREFIX}{${org}}:conc`), 0, `${org}: leases released`);
      assert.equal(await admin.hget(`${PREFIX}{${org}}:tpd`, String(dayIdx)), String(20 * 50), `${org}: 20 × (100 − 50) tokens today`);
      assert.equal(
        await admin.hget(`${PREFIX}{${org}}:tpm`, String(Math.floor(now / subWindowMs(FOREVER)))),
        String(20 * 50),
        'on the sub-window of the admission',
      );
      assert.equal(await admin.exists(`${PREFIX}{${org}}:res:${org}-req-0`), 0, 'reservation deleted');
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('cluster mode: a store created before the first command connects lazily and decides', async () => {
  const s = sidecar();
  try {
    const d = await s.admit('lazy-1', 'lazy-org', limits(1));
    assert.equal(d.admitted, true);
    await s.settle('lazy-1', 'lazy-org', { tokenDelta: 0, costDelta: 0 });
  } finally {
    await s.close();
  }
});

test('one master killed: decisions for its orgs fail within commandTimeoutMs, the other orgs are still decided', async (t) => {
  const owner = await slotOwners();
  const orgOn = new Map<number, string>();
  for (let i = 0; orgOn.size < 3; i++) {
    const org = `down-${i}`;
    const port = owner(await admin.cluster('KEYSLOT', `${PREFIX}{${org}}:x`));
    if (!orgOn.has(port)) orgOn.set(port, org);
  }
  const s = sidecar();
  try {
    for (const org of orgOn.values()) assert.equal((await s.admit(`${org}-warm`, org, limits(1))).admitted, true);
    const [victim, victimOrg] = [...orgOn.entries()][0] as [number, string];
    await cluster.killNode(victim);
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const err = await s.admit(`${victimOrg}-${i}`, victimOrg, limits(1)).then(
        () => null,
        (e: unknown) => e,
      );
      const ms = performance.now() - started;
      t.diagnostic(`node ${victim} down → admit for ${victimOrg} threw in ${ms.toFixed(1)} ms (${err instanceof Error ? err.message : String(err)})`);
      assert.ok(err instanceof Error, 'no decision without the node');
      assert.ok(ms <= 1000 + 150, `${ms} ms`);
    }
    for (const [port, org] of orgOn) {
      if (port === victim) continue;
      const started = performance.now();
      assert.equal((await s.admit(`${org}-after`, org, limits(1))).admitted, true);
      t.diagnostic(`node ${port} alive → admit for ${org} in ${(performance.now() - started).toFixed(1)} ms`);
    }
  } finally {
    await s.close();
  }
});
