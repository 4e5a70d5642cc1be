import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { csvField, exportUsage, usageToCsv, UsageAccumulator } from '../../src/audit/export.ts';
import { fileSources } from '../../src/audit/verify.ts';
import { jsonl, TestChain, tempDir, type Line } from './chain-helper.ts';

const tmp = tempDir();
after(() => tmp.remove());
const key = tmp.key('k.pem');
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

const day1 = (h: number): string => new Date(Date.UTC(2026, 10, 23, h)).toISOString();
const day2 = (h: number): string => new Date(Date.UTC(2026, 10, 24, h)).toISOString();
const authz = (org: string, tenant: string): Line => ({ org, tenant, tier: 'standard', roles: [] });

function fixture(): string {
  const c = new TestChain();
  const lines: Line[] = [
    c.record({
      startedAt: day1(1),
      authorization: authz('acme', 'team-a'),
      model: 'gpt-small',
      usage: { promptTokens: 10, completionTokens: 5, cachedPromptTokens: 0, source: 'counted' },
      cost: { amount: '0.1', currency: 'USD', estimated: false },
    }),
    c.record({
      startedAt: day1(2),
      authorization: authz('acme', 'team-a'),
      model: 'gpt-small',
      usage: { promptTokens: 20, completionTokens: 7, cachedPromptTokens: 0, source: 'estimated' },
      cost: { amount: '0.2', currency: 'USD', estimated: true },
      outcome: 'aborted',
    }),
    // Another key of the same tenant: a row of its own.
    c.record({
      startedAt: day1(2),
      identity: { methods: ['api_key'], principal: 'svc-b', keyId: 'k2', jwt: null, mtls: null },
      authorization: authz('acme', 'team-a'),
      model: 'gpt-small',
      usage: { promptTokens: 1, completionTokens: 1, cachedPromptTokens: 0, source: 'counted' },
      cost: { amount: '0.000000000001', currency: 'USD', estimated: false },
    }),
    c.record({
      startedAt: day1(3),
      authorization: authz('acme', 'team-a'),
      model: 'gpt-big',
      usage: { promptTokens: 100, completionTokens: 50, cachedPromptTokens: 0, source: 'counted' },
      cost: { amount: '12.5', currency: 'EUR', estimated: false },
    }),
    c.record({ startedAt: day1(4), authorization: authz('acme', 'team, "b"'), model: 'gpt-small', usage: null, status: 429, outcome: 'denied' }),
    c.checkpoint(key),
    c.record({ startedAt: day1(5), identity: null, authorization: null, model: null, usage: null, status: 401, outcome: 'denied' }),
    c.record({
      startedAt: day2(0),
      authorization: authz('acme', 'team-a'),
      model: 'gpt-small',
      usage: { promptTokens: 1, completionTokens: 2, cachedPromptTokens: 0, source: 'counted' },
      cost: { amount: '0.3', currency: 'USD', estimated: false },
      outcome: 'failed',
      status: 502,
    }),
    c.record({
      startedAt: day2(23),
      authorization: authz('globex', 'x'),
      model: 'gpt-small',
      usage: { promptTokens: 3, completionTokens: 4, cachedPromptTokens: 0, source: 'estimated' },
    }),
    c.checkpoint(key, true),
  ];
  return `${jsonl(lines)}not json\n`;
}

test('usage per day / org / tenant / key / model / currency: JSON totals, exact cost sums', async () => {
  const file = tmp.write('usage.jsonl', fixture());
  const r = await exportUsage(fileSources([file]));
  assert.equal(r.records, 8);
  assert.equal(r.skipped, 1);
  assert.deepEqual(r.totals, {
    requests: 8,
    promptTokens: 135,
    completionTokens: 69,
    estimatedRequests: 2,
    estimatedTokens: 34,
    // 0.1 + 0.2 + 0.3 + 10⁻¹²: exact (as floats 0.1 + 0.2 alone is 0.30000000000000004).
    cost: { EUR: '12.5', USD: '0.600000000001' },
    outcomes: { completed: 4, aborted: 1, denied: 2, failed: 1 },
  });
  assert.deepEqual(
    r.rows.map((x) => [
      x.day,
      x.org,
      x.tenant,
      x.key,
      x.model,
      x.currency,
      x.cost,
      x.estimatedCost,
      x.requests,
      x.promptTokens,
      x.completionTokens,
      x.estimatedRequests,
    ]),
    [
      ['2026-11-23', null, null, null, null, null, '0', '0', 1, 0, 0, 0],
      ['2026-11-23', 'acme', 'team, "b"', 'k1', 'gpt-small', null, '0', '0', 1, 0, 0, 0],
      ['2026-11-23', 'acme', 'team-a', 'k1', 'gpt-big', 'EUR', '12.5', '0', 1, 100, 50, 0],
      ['2026-11-23', 'acme', 'team-a', 'k1', 'gpt-small', 'USD', '0.3', '0.2', 2, 30, 12, 1],
      ['2026-11-23', 'acme', 'team-a', 'k2', 'gpt-small', 'USD', '0.000000000001', '0', 1, 1, 1, 0],
      ['2026-11-24', 'acme', 'team-a', 'k1', 'gpt-small', 'USD', '0.3', '0', 1, 1, 2, 0],
      ['2026-11-24', 'globex', 'x', 'k1', 'gpt-small', null, '0', '0', 1, 3, 4, 1],
    ],
  );
  assert.deepEqual(r.rows[3]?.outcomes, { completed: 1, aborted: 1 });

  const res = spawnSync(process.execPath, [MAIN, 'audit', 'export', file], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const parsed = JSON.parse(res.stdout) as { totals: { requests: number; promptTokens: number; cost: Record<string, string> } };
  assert.equal(parsed.totals.requests, 8);
  assert.equal(parsed.totals.promptTokens, 135);
  assert.deepEqual(parsed.totals.cost, { EUR: '12.5', USD: '0.600000000001' });
  assert.match(res.stderr, /skipped 1 line/);
});

test('CSV: header row, RFC 4180 quoting, CRLF; --from/--to select UTC days', async () => {
  const file = tmp.write('usage.jsonl', fixture());
  const csv = usageToCsv(await exportUsage(fileSources([file])));
  const rows = csv.split('\r\n');
  assert.equal(rows.pop(), '');
  assert.deepEqual(rows, [
    'day,org,tenant,key,model,requests,prompt_tokens,completion_tokens,estimated_requests,estimated_tokens,currency,cost,estimated_cost,completed,denied,failed,aborted,other',
    '2026-11-23,,,,,1,0,0,0,0,,0,0,0,1,0,0,0',
    '2026-11-23,acme,"team, ""b""",k1,gpt-small,1,0,0,0,0,,0,0,0,1,0,0,0',
    '2026-11-23,acme,team-a,k1,gpt-big,1,100,50,0,0,EUR,12.5,0,1,0,0,0,0',
    '2026-11-23,acme,team-a,k1,gpt-small,2,30,12,1,27,USD,0.3,0.2,1,0,0,1,0',
    '2026-11-23,acme,team-a,k2,gpt-small,1,1,1,0,0,USD,0.000000000001,0,1,0,0,0,0',
    '2026-11-24,acme,team-a,k1,gpt-small,1,1,2,0,0,USD,0.3,0,0,0,1,0,0',
    '2026-11-24,globex,x,k1,gpt-small,1,3,4,1,7,,0,0,1,0,0,0,0',
  ]);

  let res = spawnSync(process.execPath, [MAIN, 'audit', 'export', '--format', 'csv', '--from', '2026-11-24', '--to', '2026-11-24', file], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.split('\r\n').length, 4); // header, 2 rows, trailing ''
  assert.match(res.stdout, /\r\n2026-11-24,globex,x,k1,gpt-small,1,3,4,1,7,,0,0,1,0,0,0,0\r\n$/);

  res = spawnSync(process.execPath, [MAIN, 'audit', 'export', '--format', 'csv', '--to', '2026-11-23T03:00:00Z', file], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.split('\r\n').length, 4); // k1's 2 requests on one row, k2's on another

  assert.equal(spawnSync(process.execPath, [MAIN, 'audit', 'export', '--format', 'xml', file]).status, 2);
  assert.equal(spawnSync(process.execPath, [MAIN, 'audit', 'export', '--from', 'yesterday', file]).status, 2);
});

test('csvField quotes only when needed', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField(null), '');
  assert.equal(csvField(42), '42');
});

test('records without type (before the chain format) are counted; other outcomes go to "other"', () => {
  const acc = new UsageAccumulator();
  acc.add({ v: 1, requestId: 'r', startedAt: day1(1), authorization: null, model: 'm', usage: null, outcome: 'weird' });
  acc.add({ type: 'checkpoint' });
  acc.add({ type: 'request', requestId: 'r2' }); // no startedAt
  const r = acc.report();
  assert.equal(r.records, 1);
  assert.equal(r.skipped, 1);
  assert.match(usageToCsv(r), /,0,0,0,0,1\r\n$/);
});
