// The whole gateway (Envoy + the sidecar as its own process + the demo model
// server) with its upstream clusters from the xDS server: the routing
// snapshot's model `gpt-demo` names cluster `demo-upstream`, which exists in
// Envoy only once the control plane serves it. Added, it serves a request
// through the official client within 2 s; removed, requests fail closed; no
// process is restarted.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startXdsServer, type XdsServer } from '../../src/control-plane/xds/server.ts';
import { recordingLog } from '../control-plane/xds-harness.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let xds: XdsServer;
let stack: TestStack;

before(async () => {
  xds = await startXdsServer({ host: '127.0.0.1', port: 0, log: recordingLog() });
  // The control plane has loaded its state (no backend yet): Envoy's first CDS answer comes at once.
  xds.update([]);
  stack = await startTestStack({ xds: { port: xds.port } });
});

after(async () => {
  await stack?.stop();
  await xds?.close();
});

async function chat(): Promise<{ ok: true; content: string } | { ok: false; status: number | undefined; code: string | null | undefined }> {
  try {
    const r = await stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'Hello there' }] });
    return { ok: true, content: r.choices[0]?.message.content ?? '' };
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    return { ok: false, status: typeof err.status === 'number' ? err.status : undefined, code: typeof err.code === 'string' ? err.code : null };
  }
}

void test('a backend added through the xDS server serves the gateway within 2 s; removed, requests fail closed', async () => {
  const envoyPid = stack.envoy.pid;
  const sidecarPid = stack.sidecar?.pid;
  assert.deepEqual(await chat(), { ok: false, status: 503, code: 'upstream_unavailable' }, 'no cluster yet');

  const t0 = performance.now();
  xds.update([
    {
      name: 'demo-upstream',
      endpoints: [{ host: '127.0.0.1', port: stack.upstream.port }],
      healthCheck: { path: '/health', intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
      outlierDetection: { consecutive5xx: 5, baseEjectionMs: 30_000, maxEjectionPercent: 100 },
    },
  ]);
  const first = await waitFor(
    async () => {
      const r = await chat();
      return r.ok ? r : null;
    },
    { what: 'a chat completion through the gateway', timeoutMs: 2000 },
  );
  assert.ok(performance.now() - t0 < 2000);
  assert.ok(first.content.length > 0);
  const upstreamCalls = stack.upstream.requests.filter((r) => r.path === '/v1/chat/completions');
  assert.ok(upstreamCalls.length >= 1);
  assert.equal((upstreamCalls.at(-1)?.body as { model?: string }).model, 'demo-model', 'the sidecar rewrote the model for the deployment');

  xds.update([]);
  await waitFor(async () => (await chat()).ok === false, { what: 'the removed backend is gone' });
  const before = stack.upstream.requests.length;
  assert.deepEqual(await chat(), { ok: false, status: 503, code: 'upstream_unavailable' });
  assert.equal(stack.upstream.requests.filter((r) => r.path === '/v1/chat/completions').length, upstreamCalls.length);
  assert.ok(
    stack.upstream.requests.slice(before).every((r) => r.path === '/health'),
    'only health checks, if anything, reached it',
  );

  assert.equal(stack.envoy.pid, envoyPid);
  assert.equal(stack.envoy.exited(), false);
  assert.equal(stack.sidecar?.pid, sidecarPid);
});
