/**
 * FileKeyStore reloads: a Kubernetes-style Secret update (symlink swap), an
 * in-place rewrite, a bad new version (kept out, logged once, last good kept),
 * start-up errors naming the file. KeyFile edits are atomic renames that
 * keep YAML comments.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/config/errors.ts';
import { ApiKeyVerifier } from '../../src/stages/auth/api-keys.ts';
import { FileKeyStore, KeyFile } from '../../src/stores/keys/file.ts';
import type { KeyRecord } from '../../src/stores/keys/port.ts';
import { entryFromRecord } from '../../src/stores/keys/record.ts';
import { captureLog, eventually, makeKey } from './keys-fixtures.ts';
import { manualPoll } from '../helpers/clock.ts';

const root = mkdtempSync(join(tmpdir(), 'igw-keyfile-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function yaml(records: readonly KeyRecord[]): string {
  return stringify(records.map(entryFromRecord));
}

/**
 * The layout the kubelet makes for a Secret volume:
 *   keys.yaml -> ..data/keys.yaml, ..data -> ..<timestamp>/
 * An update writes a new timestamped folder and renames a new `..data`
 * symlink over the old one; keys.yaml itself is never touched.
 */
class SecretVolume {
  readonly dir: string;
  readonly path: string;
  #version = 0;

  constructor(text: string) {
    this.dir = join(root, `secret-${n++}`);
    mkdirSync(this.dir);
    this.path = join(this.dir, 'keys.yaml');
    this.#publish(text);
    symlinkSync('..data/keys.yaml', this.path);
  }

  update(text: string): void {
    const previous = `..v${this.#version}`;
    this.#publish(text);
    rmSync(join(this.dir, previous), { recursive: true });
  }

  #publish(text: string): void {
    const version = `..v${++this.#version}`;
    mkdirSync(join(this.dir, version));
    writeFileSync(join(this.dir, version, 'keys.yaml'), text);
    symlinkSync(version, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
  }
}

test('a Secret updated by symlink swap is picked up by the next poll, once a second by default (polling alone)', async () => {
  const poll = manualPoll();
  const a = makeKey().record;
  const b = makeKey({ principal: 'bob' }).record;
  const vol = new SecretVolume(yaml([a]));
  const { log, lines } = captureLog();
  const store = new FileKeyStore(vol.path, { log, watch: false, schedule: poll.schedule });
  try {
    assert.deepEqual(poll.intervals, [1000], 'the file is polled every second');
    assert.deepEqual(await store.get(a.id), a);
    vol.update(yaml([b]));
    assert.equal(await store.get(b.id), null, 'not loaded before a poll');
    poll.tick();
    await eventually(async () => (await store.get(b.id)) !== null, 2000, 'the poll to load the new Secret version');
    assert.equal(await store.get(a.id), null, 'a key removed from the Secret is gone');
    assert.ok(lines.some((l) => l['msg'] === 'API key file reloaded' && l['path'] === vol.path));
  } finally {
    await store.close();
  }
  assert.equal(poll.running, 0, 'close() stops the poll');
});

test('a Secret updated by symlink swap is seen through fs.watch on the folder, without waiting for a poll', async (t) => {
  const poll = manualPoll(); // never ticked: only fs.watch can notice the swap
  const a = makeKey().record;
  const b = makeKey({ principal: 'bob' }).record;
  const vol = new SecretVolume(yaml([a]));
  const { log, lines } = captureLog();
  const store = new FileKeyStore(vol.path, { log, schedule: poll.schedule });
  try {
    assert.deepEqual(await store.get(a.id), a);
    vol.update(yaml([b]));
    const took = await eventually(async () => (await store.get(b.id)) !== null, 2000, 'fs.watch to report the new Secret version');
    t.diagnostic(`symlink swap seen after ${took} ms`);
    assert.equal(await store.get(a.id), null, 'a key removed from the Secret is gone');
    assert.ok(lines.some((l) => l['msg'] === 'API key file reloaded' && l['path'] === vol.path));
  } finally {
    await store.close();
  }
});

test('a bad new version is logged once and the last good one is kept; a good one after it loads', async () => {
  const a = makeKey().record;
  const vol = new SecretVolume(yaml([a]));
  const { log, lines } = captureLog();
  const store = new FileKeyStore(vol.path, { log, pollMs: 50 });
  try {
    const broken = yaml([a]).replace(/hash: sha256:[0-9a-f]+/, 'hash: sha256:nothex');
    vol.update(broken);
    await eventually(() => lines.some((l) => l['level'] === 50), 2000, 'the error log');
    // Several more polls of the same bad version: no reload, no second log line.
    for (let i = 0; i < 5; i++) assert.equal(await store.refresh(), false);
    const errors = lines.filter((l) => l['level'] === 50);
    assert.equal(errors.length, 1, 'logged once per bad version');
    assert.equal(errors[0]?.['path'], vol.path);
    assert.match(JSON.stringify(errors[0]?.['problems']), /\[0\]\.hash: must be sha256/);
    assert.deepEqual(await store.get(a.id), a, 'last good version still served');

    vol.update('not: [valid');
    await eventually(() => lines.filter((l) => l['level'] === 50).length === 2, 2000, 'the YAML error');
    assert.deepEqual(await store.get(a.id), a);

    vol.update(''); // an empty file is a mistake, not "no keys"
    await eventually(() => lines.filter((l) => l['level'] === 50).length === 3, 2000, 'the empty-file error');
    assert.deepEqual(await store.get(a.id), a);

    const b = makeKey().record;
    vol.update(yaml([a, b]));
    await eventually(async () => (await store.get(b.id)) !== null, 2000, 'the fixed version');
    assert.equal(store.loads, 2);
  } finally {
    await store.close();
  }
});

test('a file rewritten in place (same inode) is picked up; a deleted file keeps the last good version', async () => {
  const path = join(root, `inplace-${n++}.yaml`);
  const a = makeKey().record;
  const b = makeKey().record;
  writeFileSync(path, yaml([a]));
  const { log, lines } = captureLog();
  const store = new FileKeyStore(path, { log, pollMs: 50 });
  try {
    const ino = statSync(path).ino;
    writeFileSync(path, yaml([a, b]));
    assert.equal(statSync(path).ino, ino);
    await eventually(async () => (await store.get(b.id)) !== null, 2000, 'the rewrite');
    rmSync(path);
    await eventually(() => lines.some((l) => l['level'] === 50), 2000, 'the missing-file error');
    assert.deepEqual(await store.get(b.id), b);
  } finally {
    await store.close();
  }
});

test('a missing or invalid file at start-up is a ConfigError naming the file and the path inside it', () => {
  const { log } = captureLog();
  const missing = join(root, 'nope.yaml');
  assert.throws(
    () => new FileKeyStore(missing, { log }),
    (err: unknown) => err instanceof ConfigError && err.message.includes(missing),
  );
  const bad = join(root, `bad-${n++}.yaml`);
  const k = makeKey().record;
  writeFileSync(bad, stringify([{ ...entryFromRecord(k), principal: 'has spaces', color: 'red' }, entryFromRecord(k)]));
  assert.throws(
    () => new FileKeyStore(bad, { log }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.includes(bad));
      assert.ok(
        err.problems.some((p) => p.startsWith('[0].principal:')),
        err.message,
      );
      assert.ok(
        err.problems.some((p) => p.includes('color')),
        err.message,
      );
      return true;
    },
  );
  const dup = join(root, `dup-${n++}.json`);
  writeFileSync(dup, JSON.stringify([entryFromRecord(k), entryFromRecord(k)]));
  assert.throws(() => new FileKeyStore(dup, { log }), /\[1\]\.id: duplicate key id/);
  const notList = join(root, `map-${n++}.yaml`);
  writeFileSync(notList, 'apiKeys: []\n');
  assert.throws(() => new FileKeyStore(notList, { log }), /must be a list of key entries/);
});

test('KeyFile edits replace the file atomically (new inode), keep comments and the file mode', async () => {
  const path = join(root, `edit-${n++}.yaml`);
  const a = makeKey().record;
  writeFileSync(path, `# managed by ops — do not reorder\n${yaml([a])}`, { mode: 0o640 });
  const file = new KeyFile(path);
  const b = makeKey().record;
  // Each write is its own rename (a freed inode number may come back on the next one).
  let ino = statSync(path).ino;
  await file.create(b);
  assert.notEqual(statSync(path).ino, ino, 'renamed over, not rewritten');
  ino = statSync(path).ino;
  await file.update(a.id, { revokedAt: Date.parse('2026-02-02T00:00:00Z') });
  assert.notEqual(statSync(path).ino, ino, 'renamed over, not rewritten');
  assert.equal(statSync(path).mode & 0o777, 0o640);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.startsWith('# managed by ops — do not reorder'), text);
  assert.match(text, /revokedAt: 2026-02-02T00:00:00.000Z/);
  assert.deepEqual(
    (await file.list()).map((r) => r.id),
    [a.id, b.id],
  );
  assert.equal((await file.get(a.id))?.revokedAt, Date.parse('2026-02-02T00:00:00Z'));
  // No temp or lock files left behind.
  const { readdirSync } = await import('node:fs');
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith(`.edit-`) || f.endsWith('.lock')),
    [],
  );
});

test('KeyFile grows a `[]` file into a block list and refuses to edit an invalid file', async () => {
  const path = join(root, `empty-${n++}.yaml`);
  writeFileSync(path, '[]\n');
  const file = new KeyFile(path);
  const a = makeKey().record;
  await file.create(a);
  assert.match(readFileSync(path, 'utf8'), /^- id: /m);
  assert.deepEqual(await file.get(a.id), a);
  writeFileSync(path, 'nope: true\n');
  await assert.rejects(file.create(makeKey().record), (err: unknown) => err instanceof ConfigError && err.message.includes(path));
  assert.equal(readFileSync(path, 'utf8'), 'nope: true\n', 'left untouched');
});

test('two KeyFile writers at once both land (lock file)', async () => {
  const path = join(root, `race-${n++}.yaml`);
  const keys = Array.from({ length: 8 }, () => makeKey().record);
  await Promise.all(keys.map((k) => new KeyFile(path).create(k)));
  assert.deepEqual(new Set((await new KeyFile(path).list()).map((r) => r.id)), new Set(keys.map((k) => k.id)));
});

test('a key restored to the file is accepted at the next reload, not when the negative cache expires (issue #14)', async () => {
  const path = join(root, `restore-${n++}.yaml`);
  const keep = makeKey().record;
  const back = makeKey();
  writeFileSync(path, yaml([keep, back.record]));
  const store = new FileKeyStore(path, { log: captureLog().log, watch: false, schedule: manualPoll().schedule });
  // A 30 s negative cache, a clock that never moves: only the reload can make the key known again.
  const verifier = new ApiKeyVerifier(store, { unknownKeyCache: { maxEntries: 100, ttlSeconds: 30 }, now: () => 1_000 });
  await verifier.verify(back.key);
  writeFileSync(path, yaml([keep]));
  assert.equal(await store.refresh(), true);
  await assert.rejects(verifier.verify(back.key), /Invalid API key/);
  await assert.rejects(verifier.verify(back.key), /Invalid API key/, 'remembered as unknown');
  writeFileSync(path, `${yaml([keep, back.record])}\n`);
  assert.equal(await store.refresh(), true);
  const credential = await verifier.verify(back.key);
  assert.equal(credential.keyId, back.record.id);
  await store.close();
});
