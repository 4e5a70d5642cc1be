/** Quota plans in the routing snapshot: parsed with the config's plan schema, by name; refusals name the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { ConfigError } from '../../src/config/errors.ts';

const models = [{ id: 'm', endpoints: ['chat'], target: { cluster: 'c', model: 'x' } }];
const doc = (plans?: unknown): string => JSON.stringify({ version: 'v1', models, ...(plans === undefined ? {} : { plans }) });

function problems(text: string): readonly string[] {
  try {
    parseSnapshot(text, 'test');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('the snapshot was accepted');
}

test('plans are parsed by name with the defaults of the config schema; a snapshot without plans has none', () => {
  const s = parseSnapshot(doc([{ name: 'gold', limits: [{ scope: 'key', rpm: 600, budgetDaily: '2.5' }] }]), 'test');
  const gold = s.plans.get('gold');
  assert.equal(gold?.limits[0]?.rpm, 600);
  assert.equal(gold?.whenStoreDown, 'fail_closed');
  assert.equal(gold?.defaultMaxTokens, 1024);
  assert.equal(parseSnapshot(doc(), 'test').plans.size, 0);
});

test('a bad plan or a name listed twice is refused, naming the field', () => {
  assert.ok(
    problems(doc([{ name: 'gold', limits: [{ scope: 'key', rpm: -1 }] }])).some((p) => p.startsWith('plans[0].limits[0].rpm')),
    'a negative limit',
  );
  assert.ok(
    problems(doc([{ name: 'gold' }, { name: 'gold' }])).some((p) => p.startsWith('plans[1].name') && p.includes('duplicate')),
    'a duplicate name',
  );
  assert.ok(
    problems(doc([{ name: 'gold', colour: 'x' }])).some((p) => p.startsWith('plans[0]')),
    'an unknown field',
  );
});
