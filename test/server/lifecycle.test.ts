/**
 * Start-up and drain of the sidecar process object: TCP and Unix listeners,
 * admin endpoints, readiness during drain, a stale socket file, streams cut
 * at the end of the grace period.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { startSidecar } from '../../src/app.ts';
import { clientConstructors } from '../../src/server/proto/clients.ts';
import type { ProcessingResponse } from '../../src/server/proto/types.ts';
import { writeGatewayFiles, readAudit } from '../helpers/fixtures.ts';

const quiet = pino({ level: 'silent' });

function healthOver(target: string): Promise<string | number | undefined> {
  const client = new (clientConstructors().Health)(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Check({ service: '' }, (err, res) => {
      client.close();
      if (err === null && res !== undefined) resolve(res.status);
      else reject(err ?? new Error('no answer'));
    }),
  );
}

test('listens on the Unix socket and TCP; a stale socket file from a crash is replaced', async () => {
  const files = writeGatewayFiles();
  // A socket file left behind by a process killed with SIGKILL (a clean close would unlink it).
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(files.socketPath)}, () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((r) => holder.stdout.once('data', r));
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  assert.ok(lstatSync(files.socketPath).isSocket(), 'a stale socket file is there');
  const sidecar = await startSidecar(loadConfig(files.configFile, { INFERENCE_GATEWAY_SERVER__GRPC__PORT: '0' }), { log: quiet, processMetrics: false });
  try {
    assert.ok(sidecar.tcpPort !== null && sidecar.tcpPort > 0);
    assert.equal(await healthOver(`unix:${files.socketPath}`), 'SERVING');
    assert.equal(await healthOver(`127.0.0.1:${sidecar.tcpPort}`), 'SERVING');
    const admin = `http://127.0.0.1:${sidecar.adminPort}`;
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, /inference_gateway_routing_snapshot_info\{version="test-1"\} 1/);
  } finally {
    await sidecar.shutdown('test');
  }
});

test('drain: not ready at once, in-flight streams get the grace period, then are failed and recorded as aborted', async () => {
  const files = writeGatewayFiles({ config: { server: { shutdownGraceMs: 300 } } });
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: quiet, processMetrics: false });
  const admin = `http://127.0.0.1:${sidecar.adminPort}`;
  const client = new (clientConstructors().ExternalProcessor)(`unix:${files.socketPath}`, grpc.credentials.createInsecure());
  const call = client.Process();
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  const firstAnswer = new Promise<ProcessingResponse>((resolve) => call.once('data', resolve));
  call.write({
    request_headers: {
      headers: {
        headers: Object.entries({
          ':method': 'POST',
          ':path': '/v1/chat/completions',
          'content-type': 'application/json',
          authorization: `Bearer ${files.keys['alice'] ?? ''}`,
          'x-request-id': 'req-drain-0000-01',
        }).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })),
      },
    },
  });
  assert.equal((await firstAnswer).response, 'request_headers');

  const started = Date.now();
  const stopping = sidecar.shutdown('SIGTERM');
  assert.equal((await fetch(`${admin}/readyz`)).status, 503, 'not ready as soon as the drain starts');
  const s = await status; // the request never finishes: cut at the end of the grace period
  assert.notEqual(s.code, grpc.status.OK, 'an unfinished stream is never ended cleanly');
  assert.ok(Date.now() - started >= 250, 'the stream had its grace period');
  await stopping;
  client.close();
  const rec = readAudit(files.auditFile).find((r) => r.requestId === 'req-drain-0000-01');
  assert.equal(rec?.outcome, 'aborted');
});
