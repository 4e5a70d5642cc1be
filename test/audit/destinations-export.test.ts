/**
 * `audit export --by destination` over hand-written records: rows per day,
 * model and serving deployment; the class filter; what is skipped. The same
 * over a real stack's audit file: test/e2e/destinations.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DestinationAccumulator } from '../../src/audit/destinations.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';

const rec = (n: number, over: Record<string, unknown>): Record<string, unknown> => ({
  type: 'request',
  requestId: `r${n}`,
  startedAt: '2026-12-05T10:00:00.000Z',
  model: 'care',
  outcome: 'completed',
  decision: { code: null },
  classification: { classes: { found: [], sent: [] } },
  deployment: { id: 'general' },
  destinations: null,
  attempts: null,
  ...over,
});

const RECORDS = [
  rec(1, { classification: { classes: { found: ['PHI'], sent: ['PHI'] } }, deployment: { id: 'hipaa' }, destinations: { constraining: ['phi-hipaa'] } }),
  rec(2, { classification: { classes: { found: ['PHI'], sent: ['PHI'] } }, deployment: { id: 'hipaa' }, destinations: { constraining: ['phi-hipaa'] } }),
  rec(3, {}),
  rec(4, { classification: { classes: { found: ['PII'], sent: [] } } }),
  rec(5, {
    classification: { classes: { found: ['PHI', 'PII'], sent: ['PHI', 'PII'] } },
    deployment: null,
    outcome: 'failed',
    decision: { code: 'authorized_deployment_unavailable' },
    destinations: { constraining: ['phi-hipaa'] },
    attempts: [
      { n: 1, id: 'hipaa', refused: false },
      { n: 2, id: 'general', refused: true },
    ],
  }),
  rec(6, { startedAt: '2026-12-06T00:00:01.000Z', classification: { classes: { found: ['PHI'], sent: [] } } }),
  { type: 'checkpoint' },
];

test('rows per day, model and serving deployment, with classes found and sent, constraining rules, vetoes and codes', () => {
  const acc = new DestinationAccumulator();
  for (const r of RECORDS) acc.add(r);
  acc.addLine('not json');
  const report = acc.report();
  assert.equal(report.records, 6);
  assert.equal(report.skipped, 1);
  assert.deepEqual(
    report.rows.map((r) => [r.day, r.deployment, r.requests]),
    [
      ['2026-12-05', null, 1],
      ['2026-12-05', 'general', 2],
      ['2026-12-05', 'hipaa', 2],
      ['2026-12-06', 'general', 1],
    ],
  );
  const failed = report.rows[0];
  assert.deepEqual(failed?.vetoed, { general: 1 });
  assert.deepEqual(failed?.codes, { authorized_deployment_unavailable: 1 });
  assert.deepEqual(report.rows[2]?.constrainedBy, { 'phi-hipaa': 2 });
  assert.deepEqual(report.rows[1]?.found, { PII: 1 });
  assert.deepEqual(report.rows[1]?.sent, {});
});

test('--class keeps only the requests in which the class was found (sent or redacted), and the range applies', () => {
  const acc = new DestinationAccumulator({ to: '2026-12-05' }, 'PHI');
  for (const r of RECORDS) acc.add(r);
  const report = acc.report();
  assert.equal(report.dataClass, 'PHI');
  assert.equal(report.outside, 1);
  assert.deepEqual(
    report.rows.map((r) => [r.deployment, r.requests, r.sent['PHI'] ?? 0]),
    [
      [null, 1, 1],
      ['hipaa', 2, 2],
    ],
  );
});

test('CLI: --by destination --class PHI prints the report; a bad class, csv, or --class without --by destination are usage errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-dest-export-'));
  const file = join(dir, 'audit.jsonl');
  writeFileSync(file, `${RECORDS.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const run = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'audit', 'export', ...args], { encoding: 'utf8' });
  const ok = run('--by', 'destination', '--class', 'PHI', file);
  assert.equal(ok.status, 0, ok.stderr);
  const report = JSON.parse(ok.stdout) as { rows: Array<{ deployment: string | null }> };
  assert.deepEqual(
    report.rows.map((r) => r.deployment),
    [null, 'hipaa', 'general'],
  );
  for (const args of [
    ['--by', 'destination', '--class', 'XYZ', file],
    ['--by', 'destination', '--format', 'csv', file],
    ['--class', 'PHI', file],
    ['--by', 'where', file],
  ]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});
