import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DEMO_PORT, parseDemoUpstreamArgs } from '../../src/demo/main.ts';

const MAIN = fileURLToPath(new URL('../../src/demo/main.ts', import.meta.url));

void test('parseDemoUpstreamArgs: defaults and flags', () => {
  assert.deepEqual(parseDemoUpstreamArgs([]), {
    host: '127.0.0.1',
    port: DEFAULT_DEMO_PORT,
    record: true,
    help: false,
  });
  assert.deepEqual(parseDemoUpstreamArgs(['--host', '0.0.0.0', '--port=0', '--no-record', '--model', 'a', '--model=b']), {
    host: '0.0.0.0',
    port: 0,
    record: false,
    help: false,
    modelIds: ['a', 'b'],
  });
  assert.equal(parseDemoUpstreamArgs(['--help']).help, true);
  assert.throws(() => parseDemoUpstreamArgs(['--port']), /--port needs a value/);
  assert.throws(() => parseDemoUpstreamArgs(['--port', 'x']), /--port must be/);
  assert.throws(() => parseDemoUpstreamArgs(['--port', '70000']), /--port must be/);
  assert.throws(() => parseDemoUpstreamArgs(['--bogus']), /unknown argument: --bogus/);
});

void test('runDemoUpstream: prints the listening line, serves, stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [MAIN, '--port', '0', '--no-record', '--model', 'cli-model'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: child.stdout });
    const iter = lines[Symbol.asyncIterator]();
    const first = await iter.next();
    const ready = JSON.parse(String(first.value)) as { msg: string; url: string; record: boolean };
    assert.equal(ready.msg, 'demo upstream listening');
    assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(ready.record, false);

    const res = await fetch(`${ready.url}/v1/models`);
    const models = (await res.json()) as { data: Array<{ id: string }> };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['cli-model'],
    );
    const recorded = await fetch(`${ready.url}/__demo/requests`);
    assert.deepEqual(await recorded.json(), []);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    const last = await iter.next();
    assert.equal((JSON.parse(String(last.value)) as { msg: string }).msg, 'demo upstream stopped');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
