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
import { waitFor } from '../helpers/wait.ts';

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
  const stream = await stack
    .client('alice', { 'x-demo-chunk-delay-ms': '100', 'x-demo-words': '100' })
    .chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'long' }] })
    .withResponse();
  const cutId = stream.response.headers.get('x-request-id');
  let chunks = 0;
  const drained = (async () => {
    try {
      for await (const _ of stream.data) {
        chunks++; // read until the connection goes
      }
      return 'ended';
    } catch {
      return 'cut';
    }
  })();
  await waitFor(() => chunks >= 2, { what: 'the slow stream to be flowing' });
  await stack.envoy.stop(0); // SIGTERM then SIGKILL at once: a crash, not a drain
  assert.equal(await drained, 'cut');

  // The sidecar noticed the reset: the stream is audited as aborted, and the process is the same one.
  const record = await waitFor(() => readAudit(stack.files.auditFile).find((r) => r.requestId === cutId), { what: 'the audit record of the cut stream' });
  assert.equal(record.outcome, 'aborted');
  assert.equal(stack.sidecar?.pid, sidecarPid);
  assert.equal((await fetch(`${stack.sidecar?.adminUrl ?? ''}/healthz`)).status, 200, 'the sidecar survived Envoy going away');

  // A new Envoy (new ports), the same sidecar socket: served at once.
  const envoy = await startEnvoy({
    workDir: join(stack.files.dir, 'envoy-2'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: stack.files.socketPath,
      clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: stack.upstream.port }],
    }),
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
  // Preloaded into the sidecar's process: a throw outside any request, once the test signals that it is up.
  const fault = `data:text/javascript,process.on('SIGUSR2', () => setImmediate(() => { throw new Error('injected fault'); }));`;
  const child = spawn(process.execPath, ['--import', fault, join(PROJECT_ROOT, 'src/cli/main.ts'), 'serve', '--config', files.configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFERENCE_GATEWAY_LOGGING__LEVEL: 'info' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  await waitFor(() => out.includes('"sidecar ready"') || child.exitCode !== null, {
    what: () => `the sidecar to be ready:\n${out}`,
    timeoutMs: 20_000,
    intervalMs: 50,
  });
  child.kill('SIGUSR2');
  const code = await exited;
  assert.ok(out.includes('"sidecar ready"'), 'it was serving before the fault');
  assert.equal(code, 70);
  const fatal = out.split('\n').find((l) => l.includes('uncaught exception: exiting'));
  assert.ok(fatal !== undefined, out);
  assert.equal((JSON.parse(fatal) as { level: number; err: string }).level, 60);
  assert.match(fatal, /injected fault/);
});
