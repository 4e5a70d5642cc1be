/**
 * DESIGN §6 faults on the other side of the socket and inside the sidecar:
 * Envoy killed mid-stream and started again (the sidecar keeps running,
 * audits the cut stream as aborted and serves the new Envoy), and an
 * unexpected process-level fault in the sidecar (logged, exit non-zero for
 * the orchestrator to restart it, never a silent pass-through).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy } from '../../src/envoy/process.ts';
import { readAudit, writeGatewayFiles } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack({});
});

after(async () => {
  await stack.stop();
});

test('Envoy killed mid-stream and restarted: the sidecar audits the cut stream as aborted and serves the new Envoy', async () => {
  const sidecarPid = stack.sidecar?.pid;
  // A slow stream in flight when Envoy dies.
  const stream = await stack.client('alice', { 'x-demo-chunk-delay-ms': '100', 'x-demo-words': '100' }).chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'long' }] }).withResponse();
  const cutId = stream.response.headers.get('x-request-id');
  const drained = (async () => {
    try {
      for await (const _ of stream.data) {
        // read until the connection goes
      }
      return 'ended';
    } catch {
      return 'cut';
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  await stack.envoy.stop(0); // SIGTERM then SIGKILL at once: a crash, not a drain
  assert.equal(await drained, 'cut');

  // The sidecar noticed the reset: the stream is audited as aborted, and the process is the same one.
  let record = readAudit(stack.files.auditFile).find((r) => r.requestId === cutId);
  for (let i = 0; i < 50 && record === undefined; i++) {
    await new Promise((r) => setTimeout(r, 100));
    record = readAudit(stack.files.auditFile).find((r) => r.requestId === cutId);
  }
  assert.equal(record?.outcome, 'aborted');
  assert.equal(stack.sidecar?.pid, sidecarPid);
  assert.equal((await fetch(`${stack.sidecar?.adminUrl ?? ''}/healthz`)).status, 200, 'the sidecar survived Envoy going away');

  // A new Envoy (new ports), the same sidecar socket: served at once.
  const envoy = await startEnvoy({
    workDir: join(stack.files.dir, 'envoy-2'),
    configYaml: renderGatewayConfig({ listenerPort: 0, adminPort: 0, sidecarSocket: stack.files.socketPath, clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: stack.upstream.port }] }),
  });
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${await envoy.listenerPort()}/v1`, apiKey: stack.files.keys['alice'] ?? '', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'again' }] });
    assert.match(r.choices[0]?.message.content ?? '', /Demo reply/);
  } finally {
    await envoy.stop();
  }
});

test('an unexpected process-level fault is logged and the sidecar exits 70 (the orchestrator restarts it)', async () => {
  const files = writeGatewayFiles({ keys: [{ principal: 'alice' }] });
  // Preloaded into the sidecar's process: a throw outside any request, after it is up.
  const fault = `data:text/javascript,setTimeout(() => { throw new Error('injected fault'); }, 3000);`;
  const child = spawn(process.execPath, ['--import', fault, join(PROJECT_ROOT, 'src/cli/main.ts'), 'serve', '--config', files.configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFERENCE_GATEWAY_LOGGING__LEVEL: 'info' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.ok(out.includes('"sidecar ready"'), 'it was serving before the fault');
  assert.equal(code, 70);
  const fatal = out.split('\n').find((l) => l.includes('uncaught exception: exiting'));
  assert.ok(fatal !== undefined, out);
  assert.equal((JSON.parse(fatal) as { level: number; err: string }).level, 60);
  assert.match(fatal, /injected fault/);
});
