import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSources, listAuditFiles, loadPublicKeys, verifyAudit, type SourceLine, type VerifyReport } from '../../src/audit/verify.ts';
import { buildChain, jsonl, keyMap, signCheckpoint, TestChain, tempDir, type Line } from './chain-helper.ts';

const tmp = tempDir();
after(() => tmp.remove());
const keyA = tmp.key('a.pem');
const keyB = tmp.key('b.pem');
const keys = keyMap(keyA);

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function verifyFiles(paths: string[], k = keys, requireSealed = false): Promise<VerifyReport> {
  return verifyAudit(fileSources(paths), k, { requireSealed });
}

async function* linesOf(source: string, text: string): AsyncGenerator<SourceLine> {
  const parts = text.split('\n');
  const last = parts.pop() ?? '';
  let n = 0;
  for (const p of parts) yield { source, line: ++n, text: p };
  if (last !== '') yield { source, line: n + 1, text: last, partial: true };
}

/** 1-based line number of the line whose JSON satisfies pred. */
function lineOf(text: string, pred: (l: Line) => boolean): number {
  const idx = text.split('\n').findIndex((l) => l !== '' && pred(JSON.parse(l) as Line));
  assert.ok(idx >= 0, 'line not found');
  return idx + 1;
}
const isRecord =
  (seq: number) =>
  (l: Line): boolean =>
    l.type === 'request' && (l.chain as { seq: number }).seq === seq;
const isCheckpoint =
  (seq: number) =>
  (l: Line): boolean =>
    l.type === 'checkpoint' && l.seq === seq;

const clean = jsonl(buildChain(keyA, 10, 4)); // records 1..10, checkpoints at 4, 8, final 10

test('a clean chain verifies, in process and via the CLI (exit 0)', async () => {
  const file = tmp.write('clean.jsonl', clean);
  const r = await verifyFiles([file], keys, true);
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  assert.equal(r.counts.records, 10);
  assert.equal(r.counts.checkpoints, 3);
  assert.equal(r.chains.length, 1);
  const ch = r.chains[0];
  assert.ok(ch !== undefined);
  assert.equal(ch.lastSeq, 10);
  assert.equal(ch.lastCheckpointSeq, 10);
  assert.equal(ch.sealed, true);
  assert.deepEqual(r.warnings, []);

  const res = cli(['audit', 'verify', '--keys', tmp.path('keys/a.pem.pub'), '--require-sealed', file]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /^OK: 10 record\(s\), 3 checkpoint\(s\) in 1 chain\(s\) \(1 sealed, 0 unsealed\)/);
});

test('one byte changed inside a record: the next record names it (prev mismatch); CLI exit 1 with the position', async () => {
  const text = clean;
  const line4 = lineOf(text, isRecord(4));
  const lines = text.split('\n');
  lines[line4 - 1] = (lines[line4 - 1] ?? '').replace('"req-4"', '"req-5"');
  const file = tmp.write('flip.jsonl', lines.join('\n'));
  const r = await verifyFiles([file]);
  assert.equal(r.ok, false);
  const e = r.firstError;
  assert.ok(e !== null);
  // Record 4 is followed by checkpoint 4, which no longer matches it.
  assert.equal(e.kind, 'checkpoint_mismatch');
  assert.equal(e.line, line4 + 1);
  assert.match(e.reason, new RegExp(`record seq 4 at .*flip\\.jsonl:${line4}`));
  // ...and record 5's prev no longer matches either.
  const prev = r.errors.find((x) => x.kind === 'prev_mismatch');
  assert.ok(prev !== undefined);
  assert.equal(prev.line, lineOf(text, isRecord(5)));
  assert.match(prev.reason, new RegExp(`hash of record seq 4 at .*flip\\.jsonl:${line4}`));

  const res = cli(['audit', 'verify', '--keys', tmp.path('keys'), file]);
  assert.equal(res.code, 1, res.stdout + res.stderr);
  assert.match(res.stdout, /^BROKEN/);
  assert.match(res.stdout, new RegExp(`first broken position: .*flip\\.jsonl:${line4 + 1}: checkpoint hash does not match record seq 4`));
});

test('a byte changed in a record not followed by a checkpoint: error at the next record', async () => {
  const line2 = lineOf(clean, isRecord(2));
  const lines = clean.split('\n');
  lines[line2 - 1] = (lines[line2 - 1] ?? '').replace('"total":12.5', '"total":12.6');
  const r = await verifyAudit(linesOf('x', lines.join('\n')), keys);
  assert.equal(r.firstError?.kind, 'prev_mismatch');
  assert.equal(r.firstError.line, line2 + 1);
  assert.equal(r.counts.errors, 1);
});

test('a byte that breaks the JSON: "not valid JSON" at that line', async () => {
  const line3 = lineOf(clean, isRecord(3));
  const lines = clean.split('\n');
  lines[line3 - 1] = (lines[line3 - 1] ?? '').replace('{"type"', '["type"');
  const r = await verifyAudit(linesOf('x', lines.join('\n')), keys);
  assert.equal(r.firstError?.kind, 'invalid_json');
  assert.equal(r.firstError.line, line3);
  assert.match(r.firstError.reason, /not valid JSON/);
  assert.ok(r.errors.some((e) => e.kind === 'gap' && e.line === line3 + 1));
});

test('a record removed: a gap at the record after it', async () => {
  const line6 = lineOf(clean, isRecord(6));
  const lines = clean.split('\n');
  lines.splice(line6 - 1, 1);
  const file = tmp.write('gap.jsonl', lines.join('\n'));
  const r = await verifyFiles([file]);
  assert.equal(r.firstError?.kind, 'gap');
  assert.equal(r.firstError.line, line6); // record 7 moved up into line6's place
  assert.match(r.firstError.reason, /record seq 7 follows seq 5 .*record 6 is missing/);
});

test('records reordered or duplicated: seq errors', async () => {
  const l5 = lineOf(clean, isRecord(5));
  const lines = clean.split('\n');
  const [a, b] = [lines[l5 - 1] ?? '', lines[l5] ?? ''];
  lines[l5 - 1] = b;
  lines[l5] = a;
  let r = await verifyAudit(linesOf('x', lines.join('\n')), keys);
  assert.equal(r.ok, false);
  assert.equal(r.firstError?.line, l5);

  const dup = clean.split('\n');
  dup.splice(l5, 0, dup[l5 - 1] ?? '');
  r = await verifyAudit(linesOf('x', dup.join('\n')), keys);
  assert.equal(r.firstError?.kind, 'order');
  assert.equal(r.firstError.line, l5 + 1);
});

test('tail cut off: a checkpoint naming a removed seq is "truncated"; cut after a checkpoint is "unsealed"', async () => {
  // Remove records 9 and 10 but keep the final checkpoint.
  const lines = clean.split('\n');
  const l9 = lineOf(clean, isRecord(9));
  lines.splice(l9 - 1, 2);
  const file = tmp.write('trunc.jsonl', lines.join('\n'));
  let r = await verifyFiles([file]);
  assert.equal(r.ok, false);
  assert.equal(r.firstError?.kind, 'truncated');
  assert.equal(r.firstError.line, l9); // the final checkpoint, moved up
  assert.match(r.firstError.reason, /checkpoint names seq 10 but the chain ends at seq 8 .*records 9\.\.10 were removed/);
  assert.equal(r.chains[0]?.sealed, false);

  // Everything after the checkpoint at seq 8 cut off: only provably incomplete.
  const cp8 = lineOf(clean, isCheckpoint(8));
  const head = clean.split('\n').slice(0, cp8).join('\n') + '\n';
  const file2 = tmp.write('unsealed.jsonl', head);
  r = await verifyFiles([file2]);
  assert.equal(r.ok, true);
  assert.equal(r.chains[0]?.sealed, false);
  assert.equal(r.chains[0]?.lastCheckpointSeq, 8);
  assert.equal(r.warnings[0]?.kind, 'unsealed');
  r = await verifyFiles([file2], keys, true);
  assert.equal(r.ok, false);
  assert.equal(r.firstError?.kind, 'unsealed');

  // A record after the last checkpoint, no final: unsealed, "1 record(s) after it".
  const l9b = lineOf(clean, isRecord(9));
  const file3 = tmp.write('unsealed2.jsonl', clean.split('\n').slice(0, l9b).join('\n') + '\n');
  r = await verifyFiles([file3], keys, true);
  assert.equal(r.firstError?.kind, 'unsealed');
  assert.match(r.firstError.reason, /last checkpoint at seq 8, 1 record\(s\) after it/);
  const res = cli(['audit', 'verify', '--keys', tmp.path('keys'), file3]);
  assert.equal(res.code, 0, res.stdout);
  assert.match(res.stdout, /warning: .*unsealed/);
  assert.equal(cli(['audit', 'verify', '--keys', tmp.path('keys'), '--require-sealed', file3]).code, 1);
});

test('last line cut in half: torn tail (error only with --require-sealed); mid-stream it is invalid JSON', async () => {
  const torn = clean.slice(0, clean.length - 40); // inside the final checkpoint, no newline
  const file = tmp.write('torn.jsonl', torn);
  let r = await verifyFiles([file]);
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  assert.equal(r.tornTail?.kind, 'torn_tail');
  assert.equal(r.tornTail.line, clean.split('\n').length - 1);
  assert.ok(r.warnings.some((w) => w.kind === 'torn_tail'));
  r = await verifyFiles([file], keys, true);
  assert.equal(r.ok, false);
  assert.ok(r.errors.some((e) => e.kind === 'torn_tail'));

  const res = cli(['audit', 'verify', '--keys', tmp.path('keys'), file]);
  assert.equal(res.code, 0);
  assert.match(res.stdout, /warning: .*torn tail/);

  // The same torn file followed by another file: not a tail any more.
  const other = tmp.write('other.jsonl', jsonl(buildChain(keyA, 2)));
  r = await verifyFiles([file, other]);
  assert.equal(r.ok, false);
  assert.equal(r.firstError?.kind, 'invalid_json');
  assert.equal(r.firstError.source, file);
});

test('forged checkpoints: altered seq or hash → bad signature; unknown key; re-signed wrong hash → mismatch', async (t) => {
  const cp4 = lineOf(clean, isCheckpoint(4));
  const edit = (f: (cp: Line) => Line): string => {
    const lines = clean.split('\n');
    lines[cp4 - 1] = JSON.stringify(f(JSON.parse(lines[cp4 - 1] ?? '') as Line));
    return lines.join('\n');
  };
  const ch = new TestChain();
  ch.record(); // ch.prev: a valid-looking hash of some other record
  const cases: Array<[string, string, string]> = [
    ['seq changed', edit((cp) => ({ ...cp, seq: 3 })), 'bad_signature'],
    ['hash changed', edit((cp) => ({ ...cp, hash: ch.prev })), 'bad_signature'],
    ['final flipped', edit((cp) => ({ ...cp, final: true })), 'bad_signature'],
    ['signed by an unknown key', edit((cp) => signCheckpoint(keyB, { ...cp, kid: keyB.kid })), 'unknown_key'],
    ['kid swapped', edit((cp) => ({ ...cp, kid: keyB.kid })), 'unknown_key'],
    ['re-signed with the right key, wrong hash', edit((cp) => signCheckpoint(keyA, { ...cp, hash: ch.prev })), 'checkpoint_mismatch'],
    ['re-signed with the right key, seq ahead', edit((cp) => signCheckpoint(keyA, { ...cp, seq: 5 })), 'checkpoint_ahead'],
  ];
  for (const [name, text, kind] of cases) {
    await t.test(name, async () => {
      const r = await verifyAudit(linesOf('x', text), keys);
      assert.equal(r.ok, false, name);
      assert.equal(r.firstError?.kind, kind, `${name}: ${JSON.stringify(r.errors)}`);
      assert.equal(r.firstError.line, cp4, name);
    });
  }
});

test('key rotation: both public keys verify; with only the new key the old checkpoints fail', async () => {
  const chain = new TestChain();
  const lines: Line[] = [];
  for (let i = 1; i <= 6; i++) {
    lines.push(chain.record());
    if (i === 3) lines.push(chain.checkpoint(keyA));
  }
  lines.push(chain.checkpoint(keyB, true));
  const file = tmp.write('rotation.jsonl', jsonl(lines));

  const both = loadPublicKeys([tmp.path('keys')]); // a directory: *.pem (private) and *.pub
  assert.deepEqual([...both.keys()].sort(), [keyA.kid, keyB.kid].sort());
  let r = await verifyFiles([file], both, true);
  assert.equal(r.ok, true, JSON.stringify(r.errors));

  const onlyNew = loadPublicKeys([tmp.path('keys/b.pem.pub')]);
  r = await verifyFiles([file], onlyNew, true);
  assert.equal(r.ok, false);
  assert.equal(r.firstError?.kind, 'unknown_key');
  assert.equal(r.firstError.line, 4);
  assert.match(r.firstError.reason, new RegExp(keyA.kid));

  assert.equal(cli(['audit', 'verify', '--keys', tmp.path('keys/a.pem.pub'), '--keys', tmp.path('keys/b.pem'), file]).code, 0);
  const res = cli(['audit', 'verify', '--keys', tmp.path('keys/b.pem.pub'), file]);
  assert.equal(res.code, 1);
  assert.match(res.stdout, /first broken position: .*rotation\.jsonl:4: checkpoint seq 3 is signed with key/);
});

test('several chains interleaved in one file; tampering in one chain names only that chain', async () => {
  const chains = [new TestChain(), new TestChain(), new TestChain()];
  const lines: Line[] = [];
  let n = 0;
  for (let round = 0; round < 12; round++) {
    for (const [i, c] of chains.entries()) {
      if ((round + i) % 3 === 2) continue; // uneven interleaving
      lines.push(c.record());
      if (++n % 5 === 0) lines.push(c.checkpoint(keyA));
    }
  }
  for (const c of chains) lines.push(c.checkpoint(keyA, true));
  const text = jsonl(lines);
  let r = await verifyAudit(linesOf('mix', text), keys, { requireSealed: true });
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  assert.equal(r.chains.length, 3);
  assert.ok(r.chains.every((c) => c.sealed && c.records === c.lastSeq));

  // Remove record 4 of chain 1.
  const target = chains[1];
  assert.ok(target !== undefined);
  const idx = lines.findIndex(
    (l) => l.type === 'request' && (l.chain as { id: string; seq: number }).id === target.id && (l.chain as { seq: number }).seq === 4,
  );
  const cut = [...lines.slice(0, idx), ...lines.slice(idx + 1)];
  r = await verifyAudit(linesOf('mix', jsonl(cut)), keys);
  assert.equal(r.ok, false);
  assert.ok(
    r.errors.every((e) => e.chain === target.id),
    JSON.stringify(r.errors),
  );
  assert.equal(r.firstError?.kind, 'gap');
});

test('chains spanning rotated files: a directory reads rotated files first, then the live file', async () => {
  const dir = tmp.path('rotated');
  mkdirSync(dir);
  const a = new TestChain();
  const b = new TestChain();
  const files: Record<string, Line[]> = {
    'audit-2026-11-23T00-00-00-000Z.jsonl': [],
    'audit-2026-11-23T10-00-00-000Z.jsonl': [],
    'audit.jsonl': [],
  };
  const names = Object.keys(files);
  for (const [fi, name] of names.entries()) {
    const out = files[name] ?? [];
    for (let i = 0; i < 4; i++) {
      out.push(a.record());
      if (fi > 0) out.push(b.record()); // b starts in the second file
    }
    if (fi < names.length - 1)
      out.push(a.checkpoint(keyA), ...(fi > 0 ? [b.checkpoint(keyA)] : [])); // rotation checkpoints
    else out.push(a.checkpoint(keyA, true), b.checkpoint(keyA, true));
  }
  // Written in reverse so directory order is not creation order.
  for (const name of [...names].reverse()) writeFileSync(join(dir, name), jsonl(files[name] ?? []));
  writeFileSync(join(dir, 'notes.txt'), 'not audit');

  assert.deepEqual(
    await listAuditFiles([dir]),
    names.map((n) => join(dir, n)),
  );
  let r = await verifyFiles([dir], keys, true);
  assert.equal(r.ok, true, JSON.stringify(r.errors));
  const ca = r.chains.find((c) => c.id === a.id);
  assert.equal(ca?.lastSeq, 12);
  assert.equal(ca.firstSource, join(dir, names[0] ?? ''));
  assert.equal(ca.lastSource, join(dir, 'audit.jsonl'));
  assert.equal(r.chains.find((c) => c.id === b.id)?.lastSeq, 8);
  assert.equal(cli(['audit', 'verify', '--keys', tmp.path('keys'), '--require-sealed', dir]).code, 0);

  // A whole rotated file removed: a gap at the first line of the next file.
  const middle = join(dir, names[1] ?? '');
  const saved = readFileSync(middle, 'utf8');
  writeFileSync(middle, '');
  r = await verifyFiles([dir]);
  assert.equal(r.firstError?.kind, 'gap');
  assert.equal(r.firstError.source, join(dir, 'audit.jsonl'));
  assert.equal(r.firstError.line, 1);
  writeFileSync(middle, saved);

  // Files given out of order on the command line are read in that order: broken.
  r = await verifyFiles([join(dir, 'audit.jsonl'), join(dir, names[0] ?? ''), middle]);
  assert.equal(r.ok, false);
});

test('other malformed input: unknown line type, missing chain, records after the final checkpoint, blank lines', async () => {
  const ch = new TestChain();
  const lines = [ch.record(), ch.checkpoint(keyA, true), ch.record()];
  let r = await verifyAudit(linesOf('x', jsonl(lines)), keys);
  assert.equal(r.firstError?.kind, 'after_final');
  assert.equal(r.firstError.line, 3);

  r = await verifyAudit(linesOf('x', `${JSON.stringify({ type: 'other' })}\n${JSON.stringify({ type: 'request', v: 1 })}\n\n[1]\n`), keys);
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.kind]),
    [
      [1, 'invalid_line'],
      [2, 'invalid_line'],
      [3, 'invalid_json'],
      [4, 'invalid_line'],
    ],
  );

  r = await verifyAudit(linesOf('x', ''), keys);
  assert.equal(r.ok, true);
  assert.equal(r.counts.lines, 0);
});

test('CLI usage errors exit 2', () => {
  assert.equal(cli(['audit', 'verify']).code, 2);
  assert.equal(cli(['audit', 'verify', '--bogus', 'x']).code, 2);
  assert.equal(cli(['audit', 'verify', tmp.path('does-not-exist.jsonl')]).code, 2);
  assert.equal(cli(['audit', 'verify', '--redis', 'redis://127.0.0.1:1', tmp.path('clean.jsonl')]).code, 2);
  assert.equal(cli(['audit', 'verify', '--keys', tmp.path('clean.jsonl'), tmp.path('clean.jsonl')]).code, 2);
  assert.equal(cli(['audit', 'nope']).code, 2);
  assert.equal(cli(['audit', 'keygen']).code, 2);
  const help = cli(['audit', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /audit <command>/);
});

test('audit keygen writes FILE and FILE.pub and prints the kid; refuses to overwrite', async () => {
  const out = tmp.path('gen/signing.pem');
  const res = cli(['audit', 'keygen', '--out', out]);
  assert.equal(res.code, 0, res.stderr);
  const kid = res.stdout.trim();
  assert.match(kid, /^[0-9a-f]{16}$/);
  const pub = loadPublicKeys([`${out}.pub`]);
  assert.deepEqual([...pub.keys()], [kid]);
  const priv = loadPublicKeys([out]);
  assert.deepEqual([...priv.keys()], [kid]);
  assert.equal(cli(['audit', 'keygen', '--out', out]).code, 1);
});
