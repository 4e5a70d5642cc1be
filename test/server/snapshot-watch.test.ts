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
import { clientConstructors } from '../../src/server/proto/load.ts';
import type { ProcessingResponse } from '../../src/server/proto/types.ts';
import { writeGatewayFiles } from '../helpers/fixtures.ts';

test('snapshot swap by atomic rename takes effect; a broken snapshot is rejected and the old one kept', async (t) => {
  const files = writeGatewayFiles();
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const client = new (clientConstructors().ExternalProcessor)(`unix:${files.socketPath}`, grpc.credentials.createInsecure());
  t.after(() => client.close());

  const models = () => new Promise<string[]>((resolve, reject) => {
    const call = client.Process();
    call.on('error', reject);
    call.on('data', (r: ProcessingResponse) => {
      const body = JSON.parse(Buffer.from(r.immediate_response?.body ?? '').toString()) as { data: Array<{ id: string }> };
      resolve(body.data.map((m) => m.id).sort());
      call.end();
    });
    call.write({ request_headers: { headers: { headers: Object.entries({ ':method': 'GET', ':path': '/v1/models', authorization: `Bearer ${files.keys['alice'] ?? ''}` }).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) }, end_of_stream: true } });
  });
  const eventually = async (want: string[]) => {
    for (let i = 0; i < 40; i++) {
      if (JSON.stringify(await models()) === JSON.stringify(want)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await models(), want);
  };

  assert.deepEqual(await models(), ['embed-demo', 'gpt-demo']);
  const tmp = `${files.snapshotFile}.new`;
  writeFileSync(tmp, stringify({ version: 'test-2', models: [{ id: 'gpt-next', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'next' } }] }));
  renameSync(tmp, files.snapshotFile);
  await eventually(['gpt-next']);

  writeFileSync(tmp, 'version: test-3\nmodels: [{ id: broken }]\n');
  renameSync(tmp, files.snapshotFile);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await models(), ['gpt-next'], 'the last good snapshot keeps serving');
  const metrics = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`)).text();
  assert.match(metrics, /inference_gateway_routing_snapshot_rejections_total\{source="file"\} 1/);
  assert.match(metrics, /inference_gateway_routing_snapshot_rejections_total\{source="redis"\} 0/, 'each source has its series from the start');
  assert.match(metrics, /inference_gateway_routing_snapshot_info\{version="test-2"\} 1/);
});

test('readiness follows the snapshot age: ready while fresh, not ready once older than routing.maxAgeSeconds, ready again after a newer one', async (t) => {
  const files = writeGatewayFiles({ config: { routing: { maxAgeSeconds: 2 } } });
  const snapshot = (issuedAt: string, version: string) => {
    writeFileSync(`${files.snapshotFile}.tmp`, stringify({ version, issuedAt, models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'demo-model' } }] }));
    renameSync(`${files.snapshotFile}.tmp`, files.snapshotFile);
  };
  snapshot(new Date().toISOString(), 'fresh');
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`);
    return { status: res.status, text: await res.text() };
  };
  assert.equal((await readyz()).status, 200);
  await new Promise((r) => setTimeout(r, 2300));
  const stale = await readyz();
  assert.equal(stale.status, 503, 'a snapshot issued more than maxAgeSeconds ago makes the pod not ready');
  assert.match(stale.text, /older than routing.maxAgeSeconds/);
  snapshot(new Date().toISOString(), 'fresh-again');
  let status = 0;
  for (let i = 0; i < 30 && status !== 200; i++) {
    status = (await readyz()).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200, 'a newer snapshot makes it ready again');
});

test('with routing.maxAgeSeconds, a snapshot without issuedAt cannot prove its age: not ready', async (t) => {
  const files = writeGatewayFiles({ config: { routing: { maxAgeSeconds: 3600 } } });
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`);
  assert.equal(res.status, 503);
});
