/**
 * Signed routing snapshots: the operator CLI signs and verifies; a sidecar
 * with control-plane keys refuses unsigned, altered and older (replayed)
 * snapshots — from the file and pushed to the admin endpoint — and keeps
 * serving the last good one; without keys, pushing is refused outright.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify, parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { startSidecar } from '../../src/app.ts';
import { writeGatewayFiles } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const quiet = pino({ level: 'silent' });
const cli = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8' });
const snapshotDoc = (version: string, cluster = 'demo-upstream') => ({
  version,
  models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster, model: 'demo-model' } }],
});

function signed(dir: string, keyFile: string, doc: object, issuedAt: string): string {
  const file = join(dir, `snap-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, stringify(doc));
  const r = cli('snapshot', 'sign', '--key', keyFile, '--issued-at', issuedAt, file);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(file, 'utf8');
}

test('sign and verify with the CLI; an altered snapshot fails verification', () => {
  const files = writeGatewayFiles();
  const key = join(files.dir, 'cp.pem');
  generateSigningKey(key);
  const text = signed(files.dir, key, snapshotDoc('v1'), '2026-11-23T00:00:00Z');
  const file = join(files.dir, 'signed.yaml');
  writeFileSync(file, text);
  assert.equal(cli('snapshot', 'verify', '--keys', `${key}.pub`, file).status, 0);
  writeFileSync(file, text.replace('demo-upstream', 'attacker-cluster'));
  const bad = cli('snapshot', 'verify', '--keys', `${key}.pub`, file);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /does not verify/);
});

test('a sidecar with control-plane keys refuses unsigned, altered and replayed snapshots and keeps the good one', async (t) => {
  const files = writeGatewayFiles({ config: { routing: { publicKeys: ['cp.pem.pub'] } } });
  const key = join(files.dir, 'cp.pem');
  generateSigningKey(key);
  // Unsigned at start: refused.
  await assert.rejects(
    startSidecar(loadConfig(files.configFile, {}), { log: quiet, processMetrics: false }),
    (err: unknown) => err instanceof ConfigError && /unsigned/.test(err.message),
  );

  writeFileSync(files.snapshotFile, signed(files.dir, key, snapshotDoc('v1'), '2026-11-23T00:00:00Z'));
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: quiet, processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const admin = `http://127.0.0.1:${sidecar.adminPort}`;
  const push = async (body: string) => {
    const res = await fetch(`${admin}/routing/snapshot`, { method: 'PUT', body });
    return { status: res.status, body: (await res.json()) as { status: string; version: string; problems?: string[] } };
  };
  const version = async () => /routing_snapshot_info\{version="([^"]+)"\} 1/.exec(await (await fetch(`${admin}/metrics`)).text())?.[1];

  const v2 = signed(files.dir, key, snapshotDoc('v2'), '2026-11-23T01:00:00Z');
  assert.deepEqual((await push(v2)).body, { status: 'accepted', version: 'v2' });
  assert.equal(await version(), 'v2');

  const tampered = v2.replace('demo-upstream', 'attacker-cluster').replace('version: v2', 'version: v3');
  const r1 = await push(tampered);
  assert.equal(r1.status, 422);
  assert.match(r1.body.problems?.join() ?? '', /does not verify/);
  const unsigned = stringify(snapshotDoc('v4'));
  assert.match((await push(unsigned)).body.problems?.join() ?? '', /unsigned/);
  const older = signed(files.dir, key, snapshotDoc('v0'), '2026-11-22T00:00:00Z');
  assert.match((await push(older)).body.problems?.join() ?? '', /older than the snapshot in use/, 'a replayed old snapshot cannot roll routing back');
  const stranger = join(files.dir, 'other.pem');
  generateSigningKey(stranger);
  assert.match(
    (await push(signed(files.dir, stranger, snapshotDoc('v5'), '2026-11-23T02:00:00Z'))).body.problems?.join() ?? '',
    /not a trusted control-plane key/,
  );
  assert.equal(await version(), 'v2', 'the last good snapshot keeps serving');
  const rejections = async (source: string) =>
    Number(new RegExp(`routing_snapshot_rejections_total\\{source="${source}"\\} (\\d+)`).exec(await (await fetch(`${admin}/metrics`)).text())?.[1]);
  assert.equal(await rejections('admin_push'), 4, 'tampered, unsigned, older and foreign-key pushes are counted as admin pushes');

  // The watched file gets the same checks.
  const tmp = `${files.snapshotFile}.tmp`;
  const doc = parseYaml(signed(files.dir, key, snapshotDoc('v6'), '2026-11-23T03:00:00Z')) as Record<string, unknown>;
  doc['version'] = 'v6-altered';
  writeFileSync(tmp, stringify(doc));
  renameSync(tmp, files.snapshotFile);
  await waitFor(async () => (await rejections('file')) >= 1, { what: 'the watched altered snapshot to be rejected', intervalMs: 50 });
  assert.equal(await version(), 'v2');
  assert.equal(await rejections('file'), 1);
  writeFileSync(tmp, signed(files.dir, key, snapshotDoc('v7'), '2026-11-23T04:00:00Z'));
  renameSync(tmp, files.snapshotFile);
  await waitFor(async () => (await version()) === 'v7', { what: 'the watched v7 snapshot to serve', intervalMs: 50 });
});

test('without control-plane keys the admin endpoint refuses pushes', async (t) => {
  const files = writeGatewayFiles();
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: quiet, processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/routing/snapshot`, { method: 'PUT', body: stringify(snapshotDoc('x')) });
  assert.equal(res.status, 403);
});
