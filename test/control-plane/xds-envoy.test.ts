// The ADS server against a real Envoy 1.40: clusters and endpoints arrive,
// change and leave without a restart; health checks, weights and priorities
// are Envoy's own behaviour on what we serve; a NACK keeps the previous
// version; a dead control plane leaves Envoy serving its last good state.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { startXdsServer } from '../../src/control-plane/xds/server.ts';
import type { XdsCluster } from '../../src/control-plane/xds/types.ts';
import { envoyBinary } from '../envoy/helpers.ts';
import { holdsFor, waitFor } from '../helpers/wait.ts';
import { cdsState, clusterHosts, hit, recordingLog, startXdsRig, stat, type XdsRig } from './xds-harness.ts';

const bin = await envoyBinary();

/** The version Envoy last reported running for a type (Cluster, ClusterLoadAssignment). */
const acked = (r: XdsRig, type: string): string | undefined => r.xds.status().applied.find((x) => x.typeUrl.endsWith(`.${type}`))?.version;

const served = (u: DemoUpstream, path = '/v1/models'): number => u.requests.filter((r) => r.path === path).length;

let rig: XdsRig;
let a: DemoUpstream;
let b: DemoUpstream;

before(async () => {
  if (bin === undefined) return;
  a = await startDemoUpstream({ port: 0 });
  b = await startDemoUpstream({ port: 0 });
  rig = await startXdsRig(bin, [{ name: 'model-a', endpoints: [{ host: '127.0.0.1', port: a.port }] }]);
});

after(async () => {
  await rig?.stop();
  await a?.close();
  await b?.close();
});

void test('the cluster served before Envoy started is there, and Envoy ACKed both types', { skip: bin === undefined }, async () => {
  assert.equal(await hit(rig.url, 'model-a'), 200);
  const st = await waitFor(
    () => {
      const s = rig.xds.status();
      return s.applied.length === 2 && s.applied.every((x) => x.version !== '') ? s : null;
    },
    { what: 'Envoy ACKs CDS and EDS' },
  );
  assert.equal(st.streams, 1);
  assert.deepEqual(st.applied.map((x) => x.version).sort(), [st.versions.clusters, st.versions.endpoints].sort());
  assert.equal(st.nacks, 0);
});

void test('(a) a cluster added with update() serves a request within 2 s, with no Envoy restart', { skip: bin === undefined }, async () => {
  assert.equal(await hit(rig.url, 'model-b'), 503, 'unknown before');
  const pid = rig.envoy.pid;
  const t0 = performance.now();
  rig.xds.update([
    { name: 'model-a', endpoints: [{ host: '127.0.0.1', port: a.port }] },
    { name: 'model-b', endpoints: [{ host: '127.0.0.1', port: b.port }] },
  ]);
  await waitFor(async () => (await hit(rig.url, 'model-b')) === 200, { what: 'model-b serves', timeoutMs: 2000 });
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  assert.ok(served(b) >= 1);
  assert.equal(rig.envoy.pid, pid);
  assert.equal(rig.envoy.exited(), false);
  assert.equal(await stat(rig.envoy.adminUrl, 'server.hot_restart_epoch'), 0);
});

void test('(b) an endpoint removed stops receiving traffic; a cluster removed is gone (503)', { skip: bin === undefined }, async () => {
  rig.xds.update([
    {
      name: 'model-a',
      endpoints: [
        { host: '127.0.0.1', port: a.port },
        { host: '127.0.0.1', port: b.port },
      ],
    },
  ]);
  await waitFor(async () => (await clusterHosts(rig.envoy.adminUrl, 'model-a'))?.length === 2, { what: 'model-a has two hosts' });
  // Both get traffic while both are listed (round robin).
  a.clearRequests();
  b.clearRequests();
  for (let i = 0; i < 10; i++) assert.equal(await hit(rig.url, 'model-a'), 200);
  assert.ok(served(a) > 0 && served(b) > 0, `a ${served(a)}, b ${served(b)}`);
  assert.equal(await hit(rig.url, 'model-b'), 503, 'model-b was removed');

  rig.xds.update([{ name: 'model-a', endpoints: [{ host: '127.0.0.1', port: a.port }] }]);
  await waitFor(async () => (await clusterHosts(rig.envoy.adminUrl, 'model-a'))?.length === 1, { what: 'model-a back to one host' });
  b.clearRequests();
  for (let i = 0; i < 20; i++) assert.equal(await hit(rig.url, 'model-a'), 200);
  assert.equal(served(b), 0, 'the removed endpoint got no request');

  rig.xds.update([]);
  await waitFor(async () => (await clusterHosts(rig.envoy.adminUrl, 'model-a')) === null, { what: 'model-a removed from Envoy' });
  a.clearRequests();
  assert.equal(await hit(rig.url, 'model-a'), 503);
  assert.equal(served(a), 0);
});

const HC = { path: '/health', intervalMs: 100, timeoutMs: 500, unhealthyThreshold: 1, healthyThreshold: 1 };

void test('(c) an active health check takes a dead backend out; traffic goes to the healthy one', { skip: bin === undefined }, async () => {
  const dying = await startDemoUpstream({ port: 0 });
  try {
    rig.xds.update([
      {
        name: 'checked',
        endpoints: [
          { host: '127.0.0.1', port: a.port },
          { host: '127.0.0.1', port: dying.port },
        ],
        healthCheck: HC,
      },
    ]);
    await waitFor(async () => (await clusterHosts(rig.envoy.adminUrl, 'checked'))?.filter((h) => h.healthy).length === 2, {
      what: 'both hosts pass their first health check',
    });
    assert.ok(
      dying.requests.some((r) => r.path === '/health'),
      'Envoy checked GET /health',
    );
    const checks = (await cdsState(rig.envoy.adminUrl)).clusters.get('checked')?.cluster;
    assert.deepEqual((checks?.health_checks as unknown[] | undefined)?.length, 1);

    await dying.close();
    await waitFor(
      async () => {
        const hosts = await clusterHosts(rig.envoy.adminUrl, 'checked');
        return hosts?.find((h) => h.port === dying.port)?.healthy === false;
      },
      { what: 'the stopped backend fails its health check' },
    );
    a.clearRequests();
    // No retry policy on this route: a request Envoy sent to the dead host would fail.
    for (let i = 0; i < 20; i++) assert.equal(await hit(rig.url, 'checked'), 200);
    assert.equal(served(a), 20);
  } finally {
    await dying.close();
  }
});

void test('(d) weights split traffic; priority 1 is used only once priority 0 is down', { skip: bin === undefined }, async () => {
  rig.xds.update([
    {
      name: 'weighted',
      endpoints: [
        { host: '127.0.0.1', port: a.port, weight: 3 },
        { host: '127.0.0.1', port: b.port, weight: 1 },
      ],
    },
  ]);
  await waitFor(
    async () =>
      (await clusterHosts(rig.envoy.adminUrl, 'weighted'))
        ?.map((h) => h.weight)
        .sort()
        .join() === '1,3',
    {
      what: 'weights 3 and 1 in Envoy',
    },
  );
  a.clearRequests();
  b.clearRequests();
  for (let i = 0; i < 100; i++) assert.equal(await hit(rig.url, 'weighted'), 200);
  assert.ok(served(a) >= 65 && served(a) <= 85, `weight 3 got ${served(a)} of 100`);
  assert.equal(served(a) + served(b), 100);

  const primary = await startDemoUpstream({ port: 0 });
  try {
    rig.xds.update([
      {
        name: 'tiered',
        endpoints: [
          { host: '127.0.0.1', port: primary.port, priority: 0 },
          { host: '127.0.0.1', port: b.port, priority: 1 },
        ],
        healthCheck: HC,
      },
    ]);
    await waitFor(
      async () => {
        const hosts = await clusterHosts(rig.envoy.adminUrl, 'tiered');
        return hosts?.length === 2 && hosts.every((h) => h.healthy) && hosts.find((h) => h.port === b.port)?.priority === 1;
      },
      { what: 'both tiers healthy, the fallback at priority 1' },
    );
    b.clearRequests();
    for (let i = 0; i < 20; i++) assert.equal(await hit(rig.url, 'tiered'), 200);
    assert.equal(served(primary), 20, 'priority 0 takes everything while healthy');
    assert.equal(served(b), 0);

    await primary.close();
    await waitFor(async () => (await clusterHosts(rig.envoy.adminUrl, 'tiered'))?.find((h) => h.port === primary.port)?.healthy === false, {
      what: 'priority 0 fails its health check',
    });
    for (let i = 0; i < 20; i++) assert.equal(await hit(rig.url, 'tiered'), 200);
    assert.equal(served(b), 20, 'priority 1 takes over');
  } finally {
    await primary.close();
  }
});

void test('(f) a NACK keeps the previous version: Envoy runs it, the server logs and counts the rejection', { skip: bin === undefined }, async () => {
  const good: XdsCluster[] = [
    {
      name: 'stable',
      endpoints: [{ host: '127.0.0.1', port: a.port }],
      outlierDetection: { consecutive5xx: 5, baseEjectionMs: 30_000, maxEjectionPercent: 100 },
    },
  ];
  rig.xds.update(good);
  const goodVersion = rig.xds.status().versions.clusters;
  await waitFor(async () => (await cdsState(rig.envoy.adminUrl)).version === goodVersion, { what: `Envoy runs CDS version ${goodVersion}` });
  const before = rig.xds.status();
  const outlier = (await cdsState(rig.envoy.adminUrl)).clusters.get('stable')?.cluster.outlier_detection;
  assert.deepEqual(outlier, { consecutive_5xx: 5, base_ejection_time: '30s', max_ejection_percent: 100 });

  // Envoy's rule, not the server's: max_ejection_percent is at most 100.
  rig.xds.update([
    {
      name: 'stable',
      endpoints: [{ host: '127.0.0.1', port: a.port }],
      outlierDetection: { consecutive5xx: 5, baseEjectionMs: 30_000, maxEjectionPercent: 101 },
    },
    { name: 'newcomer', endpoints: [{ host: '127.0.0.1', port: b.port }] },
  ]);
  const rejected = rig.xds.status().versions.clusters;
  assert.notEqual(rejected, goodVersion);
  const st = await waitFor(() => (rig.xds.status().nacks > before.nacks ? rig.xds.status() : null), { what: 'a NACK' });
  assert.equal(st.lastNack?.typeUrl, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
  assert.equal(st.lastNack?.rejectedVersion, rejected);
  assert.equal(st.lastNack?.keptVersion, goodVersion);
  assert.match(st.lastNack?.message ?? '', /max_ejection_percent/);
  assert.ok(rig.log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('xds NACK')));
  const cds = await cdsState(rig.envoy.adminUrl);
  assert.equal(cds.version, goodVersion, 'Envoy still runs the previous version');
  assert.deepEqual(cds.clusters.get('stable')?.cluster.outlier_detection, outlier);
  assert.equal(await hit(rig.url, 'stable'), 200);
  // The rejected state is not sent again: no second NACK for it.
  await holdsFor(() => rig.xds.status().nacks === st.nacks, { forMs: 300, what: 'the NACKed version is not re-sent' });

  // EDS too: a weight of 0 is Envoy's to refuse. The cluster itself is unchanged (a cluster that Envoy
  // re-creates in the same change would wait for these endpoints and, once they are refused, start empty).
  rig.xds.update([{ ...good[0], endpoints: [{ host: '127.0.0.1', port: a.port, weight: 0 }] } as XdsCluster]);
  // (CDS goes back to the clusters Envoy runs: Envoy sees them unchanged, keeps them and ACKs.)
  await waitFor(() => acked(rig, 'Cluster') === rig.xds.status().versions.clusters, { what: 'CDS ACKed' });
  const eds = await waitFor(() => (rig.xds.status().nacks > st.nacks ? rig.xds.status() : null), { what: 'an EDS NACK' });
  assert.equal(eds.lastNack?.typeUrl, 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment');
  assert.equal(await hit(rig.url, 'stable'), 200);

  // The next valid state is applied (only EDS differs from what Envoy runs).
  rig.xds.update(good);
  await waitFor(() => acked(rig, 'ClusterLoadAssignment') === rig.xds.status().versions.endpoints, { what: 'EDS ACKed' });
  assert.equal(await hit(rig.url, 'stable'), 200);
});

void test(
  '(g) a cluster with a DNS name is a STRICT_DNS cluster: Envoy resolves it and serves; it has no EDS resource',
  { skip: bin === undefined },
  async () => {
    const nacks = rig.xds.status().nacks;
    rig.xds.update([
      { name: 'model-a', endpoints: [{ host: '127.0.0.1', port: a.port }] },
      { name: 'by-name', endpoints: [{ host: 'localhost', port: b.port }] },
    ]);
    await waitFor(async () => (await hit(rig.url, 'by-name')) === 200, { what: 'the DNS-named cluster serves', timeoutMs: 5000 });
    // The EDS cluster may still be warming (waiting for its endpoints) when the DNS one already serves: Envoy lists a
    // warming cluster apart from the active ones, so wait for both to be active.
    let cds = await cdsState(rig.envoy.adminUrl);
    await waitFor(
      async () => {
        cds = await cdsState(rig.envoy.adminUrl);
        return cds.clusters.has('by-name') && cds.clusters.has('model-a');
      },
      { what: 'both clusters active', timeoutMs: 5000 },
    );
    assert.equal(cds.clusters.get('by-name')?.cluster['type'], 'STRICT_DNS');
    assert.equal(cds.clusters.get('model-a')?.cluster['type'], 'EDS');
    assert.deepEqual(
      (await clusterHosts(rig.envoy.adminUrl, 'by-name'))?.map((h) => h.port),
      [b.port],
    );
    await waitFor(() => acked(rig, 'ClusterLoadAssignment') === rig.xds.status().versions.endpoints, { what: 'EDS ACKed' });
    assert.equal(rig.xds.status().nacks, nacks, 'no NACK');
  },
);

void test('update() refuses what cannot be encoded, naming the field, and changes nothing', { skip: bin === undefined }, async () => {
  const version = rig.xds.status().versions;
  assert.throws(
    () => rig.xds.update([{ name: 'x', endpoints: [{ host: 'model_internal', port: 80 }] }]),
    /clusters\[0\]\.endpoints\[0\]\.host must be an IP address or a DNS name/,
  );
  assert.throws(() => rig.xds.update([{ name: 'x', endpoints: [{ host: '10.0.0.256', port: 80 }] }]), /clusters\[0\]\.endpoints\[0\]\.host/);
  assert.throws(() => rig.xds.update([{ name: 'x', endpoints: [{ host: '10.0.0.1', port: 70000 }] }]), /clusters\[0\]\.endpoints\[0\]\.port/);
  assert.throws(
    () =>
      rig.xds.update([
        { name: 'x', endpoints: [] },
        { name: 'x', endpoints: [] },
      ]),
    /clusters\[1\]\.name "x" is used twice/,
  );
  assert.throws(() => rig.xds.update([{ name: 'a b', endpoints: [] }]), /clusters\[0\]\.name/);
  assert.deepEqual(rig.xds.status().versions, version);
});

void test(
  '(e) the xDS server killed: Envoy keeps serving the last good clusters; a restarted server pushes nothing before its first update()',
  { skip: bin === undefined },
  async () => {
    const own = await startXdsRig(bin as string, [{ name: 'survivor', endpoints: [{ host: '127.0.0.1', port: a.port }], healthCheck: HC }]);
    try {
      await waitFor(async () => (await clusterHosts(own.envoy.adminUrl, 'survivor'))?.[0]?.healthy === true, { what: 'survivor healthy' });
      const port = own.xds.port;
      await own.xds.close();
      await waitFor(async () => (await stat(own.envoy.adminUrl, 'control_plane.connected_state')) === 0, { what: 'Envoy sees the control plane gone' });
      a.clearRequests();
      for (let i = 0; i < 20; i++) assert.equal(await hit(own.url, 'survivor'), 200);
      assert.equal(served(a), 20);
      // Still there while Envoy retries the stream (it retries with backoff; nothing is dropped meanwhile).
      assert.notEqual(await clusterHosts(own.envoy.adminUrl, 'survivor'), null);

      // A control plane restarted on the same address, before it has loaded its state, must not wipe Envoy's clusters.
      const log = recordingLog();
      const again = await startXdsServer({ host: '127.0.0.1', port, log });
      try {
        await waitFor(async () => (await stat(own.envoy.adminUrl, 'control_plane.connected_state')) === 1 && again.status().streams === 1, {
          what: 'Envoy reconnects',
          timeoutMs: 20_000,
        });
        await waitFor(() => again.status().applied.some((x) => x.typeUrl.endsWith('Cluster')), { what: 'Envoy re-subscribes to CDS' });
        assert.equal(await hit(own.url, 'survivor'), 200, 'no empty state was pushed');
        again.update([
          { name: 'survivor', endpoints: [{ host: '127.0.0.1', port: a.port }] },
          { name: 'late', endpoints: [{ host: '127.0.0.1', port: b.port }] },
        ]);
        await waitFor(async () => (await hit(own.url, 'late')) === 200, { what: 'the restarted server’s cluster serves', timeoutMs: 2000 });
      } finally {
        await again.close();
      }
    } finally {
      await own.stop();
    }
  },
);
