// startEnvoy(): readiness, several instances at once, reliable stop, and
// diagnostics when Envoy refuses a config.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderGatewayConfig, renderPlainConfig } from '../../src/envoy/config.ts';
import { startEnvoy } from '../../src/envoy/process.ts';
import { envoyBinary } from './helpers.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void test('two Envoys run at once, report LIVE and their ports, and stop cleanly', async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const dir = await mkdtemp(join(tmpdir(), 'envoy-process-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const gateway = await startEnvoy({
    bin,
    workDir: join(dir, 'gateway'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: join(dir, 'sidecar.sock'),
      clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: 9 }],
    }),
  });
  t.after(() => gateway.stop());
  const plain = await startEnvoy({
    bin,
    workDir: join(dir, 'plain'),
    concurrency: 2,
    configYaml: renderPlainConfig({ listenerPort: 0, adminPort: 0, cluster: { name: 'up', host: '127.0.0.1', port: 9 } }),
  });
  t.after(() => plain.stop());

  for (const e of [gateway, plain]) {
    assert.ok(e.adminPort > 0);
    const ready = await fetch(`${e.adminUrl}/ready`);
    assert.equal((await ready.text()).trim(), 'LIVE');
    assert.ok((await e.listenerPort()) > 0);
    await e.waitReady(); // idempotent
  }
  assert.notEqual(await gateway.listenerPort(), await plain.listenerPort());

  // The plain baseline has no ext_proc: an unreachable upstream is Envoy's
  // own 503, in the gateway's JSON shape.
  const r = await fetch(`http://127.0.0.1:${await plain.listenerPort()}/v1/models`);
  assert.equal(r.status, 503);
  const body = (await r.json()) as { error: { code: string; type: string } };
  assert.equal(body.error.code, 'upstream_unavailable');
  assert.equal(body.error.type, 'server_error');

  await Promise.all([gateway.stop(), plain.stop()]);
  assert.ok(gateway.exited() && plain.exited());
  assert.ok(!alive(gateway.pid) && !alive(plain.pid));
  await gateway.stop(); // idempotent
});

void test('a config Envoy rejects fails startEnvoy with Envoy’s message, leaving no process', async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const dir = await mkdtemp(join(tmpdir(), 'envoy-process-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bad = 'static_resources:\n  clusters:\n    - name: x\n      type: NOT_A_TYPE\n';
  await assert.rejects(startEnvoy({ bin, workDir: dir, configYaml: bad, readyTimeoutMs: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /exited .* before becoming ready/);
    assert.match(err.message, /NOT_A_TYPE/);
    return true;
  });
});
