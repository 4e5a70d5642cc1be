/**
 * The routing snapshot file is followed: an atomic replace (as a ConfigMap
 * update does) changes routing without a restart; a broken snapshot is
 * rejected, counted, and the last good one keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { startSidecar } from '../../src/app.ts';
import { clientConstructors } from '../../src/server/proto/clients.ts';
import type { ProcessingResponse } from '../../src/server/proto/types.ts';
import { writeGatewayFiles } from '../helpers/fixtures.ts';
import { manualPoll } from '../helpers/clock.ts';
import { waitFor } from '../helpers/wait.ts';
import { loadSnapshotFile, NO_TRUST, SnapshotHolder } from '../../src/control/snapshot.ts';
import { watchSnapshotFile } from '../../src/control/watch.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';

test('snapshot swap by atomic rename takes effect; a broken snapshot is rejected and the old one kept', async (t) => {
  const files = writeGatewayFiles();
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const client = new (clientConstructors().ExternalProcessor)(`unix:${files.socketPath}`, grpc.credentials.createInsecure());
  t.after(() => client.close());

  const models = () =>
    new Promise<string[]>((resolve, reject) => {
      const call = client.Process();
      call.on('error', reject);
      call.on('data', (r: ProcessingResponse) => {
        const body = JSON.parse(Buffer.from(r.immediate_response?.body ?? '').toString()) as { data: Array<{ id: string }> };
        resolve(body.data.map((m) => m.id).sort());
        call.end();
      });
      call.write({
        request_headers: {
          headers: {
            headers: Object.entries({ ':method': 'GET', ':path': '/v1/models', authorization: `Bearer ${files.keys['alice'] ?? ''}` }).map(([key, v]) => ({
              key,
              raw_value: Buffer.from(v),
            })),
          },
          end_of_stream: true,
        },
      });
    });
  const metrics = async () => (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();

  assert.deepEqual(await models(), ['embed-demo', 'gpt-demo']);
  const tmp = `${files.snapshotFile}.new`;
  writeFileSync(tmp, stringify({ version: 'test-2', models: [{ id: 'gpt-next', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'next' } }] }));
  renameSync(tmp, files.snapshotFile);
  await waitFor(async () => JSON.stringify(await models()) === JSON.stringify(['gpt-next']), {
    what: 'the swapped snapshot to serve gpt-next',
    intervalMs: 50,
  });

  writeFileSync(tmp, 'version: test-3\nmodels: [{ id: broken }]\n');
  renameSync(tmp, files.snapshotFile);
  // The rejection is counted once the watcher has read the broken file; then the old one must still serve.
  const text = await waitFor(
    async () => {
      const m = await metrics();
      return /inference_gateway_routing_snapshot_rejections_total\{source="file"\} [1-9]/.test(m) ? m : undefined;
    },
    { what: 'the broken snapshot to be rejected', intervalMs: 50 },
  );
  assert.deepEqual(await models(), ['gpt-next'], 'the last good snapshot keeps serving');
  assert.match(text, /inference_gateway_routing_snapshot_rejections_total\{source="file"\} 1/);
  assert.match(text, /inference_gateway_routing_snapshot_rejections_total\{source="redis"\} 0/, 'each source has its series from the start');
  assert.match(text, /inference_gateway_routing_snapshot_info\{version="test-2"\} 1/);
});

test('readiness follows the snapshot age: ready while fresh, not ready once older than routing.maxAgeSeconds, ready again after a newer one', async (t) => {
  const files = writeGatewayFiles({ config: { routing: { maxAgeSeconds: 2 } } });
  const snapshot = (issuedAt: string, version: string) => {
    writeFileSync(
      `${files.snapshotFile}.tmp`,
      stringify({ version, issuedAt, models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'demo-model' } }] }),
    );
    renameSync(`${files.snapshotFile}.tmp`, files.snapshotFile);
  };
  const issued = Date.now();
  snapshot(new Date(issued).toISOString(), 'fresh');
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`);
    return { status: res.status, text: await res.text() };
  };
  assert.equal((await readyz()).status, 200);
  // The age is measured on the sidecar's wall clock (src/app.ts), which a test cannot move: wait for the
  // answer to change, and check it did not change before the snapshot was maxAgeSeconds old.
  const stale = await waitFor(
    async () => {
      const r = await readyz();
      return r.status === 200 ? undefined : r;
    },
    { what: 'readiness to drop once the snapshot is older than 2 s', timeoutMs: 6000, intervalMs: 50 },
  );
  assert.ok(Date.now() - issued > 2000, `not ready after only ${Date.now() - issued} ms`);
  assert.equal(stale.status, 503, 'a snapshot issued more than maxAgeSeconds ago makes the pod not ready');
  assert.match(stale.text, /older than routing.maxAgeSeconds/);
  snapshot(new Date().toISOString(), 'fresh-again');
  await waitFor(async () => (await readyz()).status === 200, { what: 'a newer snapshot to make it ready again', intervalMs: 50 });
});

test('with routing.maxAgeSeconds, a snapshot without issuedAt cannot prove its age: not ready', async (t) => {
  const files = writeGatewayFiles({ config: { routing: { maxAgeSeconds: 3600 } } });
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`);
  assert.equal(res.status, 503);
});

test('the file watch checks once a second by default; a poll loads a file renamed over or rewritten in place, and rejects a broken one', async () => {
  const files = writeGatewayFiles();
  const holder = new SnapshotHolder(loadSnapshotFile(files.snapshotFile));
  const metrics = new Metrics({ processMetrics: false });
  const poll = manualPoll();
  const watch = watchSnapshotFile(files.snapshotFile, holder, { log: pino({ level: 'silent' }), metrics, trust: NO_TRUST, schedule: poll.schedule });
  const rejections = async () => (await metrics.snapshotRejections.get()).values.find((v) => v.labels.source === 'file')?.value ?? 0;
  const doc = (version: string, id: string) => stringify({ version, models: [{ id, endpoints: ['chat'], target: { cluster: 'demo-upstream', model: id } }] });
  try {
    assert.deepEqual(poll.intervals, [1000]);
    const first = holder.current();
    poll.tick();
    assert.equal(holder.current(), first, 'an unchanged file is not loaded again');

    writeFileSync(`${files.snapshotFile}.new`, doc('renamed', 'gpt-renamed'));
    renameSync(`${files.snapshotFile}.new`, files.snapshotFile);
    assert.equal(holder.current(), first, 'nothing happens between polls');
    poll.tick();
    assert.equal(holder.current().version, 'renamed');

    writeFileSync(files.snapshotFile, doc('in-place', 'gpt-rewritten-in-place'));
    poll.tick();
    assert.equal(holder.current().version, 'in-place');

    writeFileSync(files.snapshotFile, 'version: broken\nmodels: [{ id: broken }]\n');
    poll.tick();
    assert.equal(holder.current().version, 'in-place', 'the last good snapshot keeps serving');
    assert.equal(await rejections(), 1);
    poll.tick();
    assert.equal(await rejections(), 1, 'the same broken file is rejected once');
  } finally {
    watch.stop();
  }
  assert.equal(poll.running, 0, 'stop() ends the poll');
});
