/**
 * `inference-gateway stack --control-plane` as a user runs it: a child
 * process with its own folder and free ports, then the README's walkthrough
 * (the same steps, rendered into the README from src/cli/stack-walkthrough.ts):
 * register a model, add a backend on a cluster Envoy only learns over xDS,
 * create a tenant and a key, and call the model through Envoy with that key.
 * The demo model still answers with the demo key. Ctrl+C (SIGINT) stops the
 * stack and every process it started (Envoy, PostgreSQL, redis-server).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { README_PLACES, renderWalkthrough, WALKTHROUGH_CHAT, walkthroughSteps } from '../../src/cli/stack-walkthrough.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

/** Every live process below `root` (children, their children, …), from /proc. */
function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parentOf.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    for (const [child, parent] of parentOf) {
      if (parent !== pid) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

/** Whether `pid` still runs (a zombie waiting to be reaped does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

test('the README shows the walkthrough this test runs', () => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(renderWalkthrough(README_PLACES)), 'README.md holds renderWalkthrough(README_PLACES) verbatim');
});

test('stack --control-plane without PostgreSQL or redis-server says what is missing and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-cpstack-missing-'));
  try {
    // PATH without redis-server (node is started by its full path), PG_BIN without initdb.
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'stack', '--control-plane', '--dir', join(dir, 'stack')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: dir, PG_BIN: join(dir, 'no-postgres') },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 1, err);
    assert.match(err, /PostgreSQL server binaries not found/);
    assert.match(err, /redis-server not found/);
    assert.deepEqual(readdirSync(dir), [], 'nothing was started or written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stack --control-plane: a model, a backend over xDS and a key created at runtime serve a completion; SIGINT stops every process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-cpstack-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user when we are root: it must reach its folder inside
  const ports = { port: await freePort(), redis: await freePort(), postgres: await freePort() };
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'src/cli/main.ts'),
      'stack',
      '--control-plane',
      '--dir',
      dir,
      '--port',
      String(ports.port),
      '--redis-port',
      String(ports.redis),
      '--postgres-port',
      String(ports.postgres),
      '--upstream-port',
      '0',
      '--admin-port',
      '0',
      '--envoy-admin-port',
      '0',
      '--control-plane-port',
      '0',
      '--xds-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const adminUrl = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the stack exited (${child.exitCode}):\n${out}`);
        if (!out.includes('Register a model, add a backend')) return null;
        return /admin API\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out)?.[1] ?? null;
      },
      { what: () => `the stack to be ready:\n${out}`, timeoutMs: 90_000, intervalMs: 100 },
    );
    const upstreamAddress = /"address":"(127\.0\.0\.1:\d+)"/.exec(out.slice(out.indexOf('Register a model')))?.[1];
    assert.ok(upstreamAddress !== undefined, 'the printed walkthrough names the demo server');
    assert.ok(!upstreamAddress.endsWith(':0'));
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const base = `http://127.0.0.1:${ports.port}`;

    let key = '';
    for (const step of walkthroughSteps(upstreamAddress)) {
      const res = await fetch(`${adminUrl}${step.path}`, {
        method: step.method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(step.body),
      });
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 201, `${step.title}: ${JSON.stringify(body)}`);
      if (step.path === '/v1/keys') key = String(body['key']);
    }
    assert.match(key, /^igw_/);

    // The key reaches the sidecar through Redis and the cluster reaches Envoy over xDS: poll until the call is served.
    const completion = await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(WALKTHROUGH_CHAT),
        });
        const text = await res.text();
        return res.status === 200 ? (JSON.parse(text) as { object: string; model: string; choices: Array<{ message: { content: string } }> }) : null;
      },
      { what: () => `the walkthrough's call to be served:\n${out.slice(-4000)}`, timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, WALKTHROUGH_CHAT.model);
    assert.ok((completion.choices[0]?.message.content ?? '').length > 0, 'a completion with content');

    // The demo model, now a control plane resource on the static demo cluster, still answers the demo key.
    const demoKey = readFileSync(join(dir, 'demo-api-key'), 'utf8').trim();
    const demo = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(demo.status, 200, await demo.clone().text());

    const started = descendants(child.pid ?? -1);
    assert.ok(started.length >= 3, `Envoy, PostgreSQL and redis-server run under the stack: ${started.join(', ')}`);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out.slice(-4000));
    await waitFor(() => started.every((pid) => !alive(pid)), {
      what: () => `every process of the stack to exit; still running: ${started.filter(alive).join(', ')}`,
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      for (const pid of descendants(child.pid ?? -1)) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
