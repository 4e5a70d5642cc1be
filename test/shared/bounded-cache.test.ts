import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BoundedCache } from '../../src/shared/bounded-cache.ts';

test('an entry is served until its expiry (exclusive), then dropped', () => {
  const c = new BoundedCache<string, number>(4);
  c.set('a', 1, 100);
  assert.equal(c.get('a', 99), 1);
  assert.equal(c.get('a', 100), undefined);
  assert.equal(c.size, 0, 'the expired entry is gone, not kept');
  c.set('b', 2);
  assert.equal(c.get('b', Number.MAX_SAFE_INTEGER), 2, 'no expiry by default');
});

test('beyond the bound the least recently used entry goes; a read counts as a use', () => {
  const c = new BoundedCache<string, number>(2);
  c.set('a', 1);
  c.set('b', 2);
  assert.equal(c.get('a', 0), 1);
  c.set('c', 3);
  assert.equal(c.has('b', 0), false);
  assert.equal(c.has('a', 0), true);
  assert.equal(c.has('c', 0), true);
});

test('null is a value (a cached negative answer), distinct from absent', () => {
  const c = new BoundedCache<string, string | null>(2);
  c.set('x', null);
  assert.equal(c.get('x', 0), null);
  assert.equal(c.get('y', 0), undefined);
});

test('delete, clear and replacing a key', () => {
  const c = new BoundedCache<string, number>(3);
  c.set('a', 1);
  c.set('a', 2, 10);
  assert.equal(c.size, 1);
  assert.equal(c.get('a', 5), 2);
  c.delete('a');
  assert.equal(c.get('a', 5), undefined);
  c.set('b', 1);
  c.clear();
  assert.equal(c.size, 0);
});

test('a size that is not a positive integer is refused', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new BoundedCache<string, number>(bad), RangeError);
});

test('property: never more than max entries, and what it returns is the last value set for that key', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.tuple(fc.constantFrom('get', 'set'), fc.integer({ min: 0, max: 12 }), fc.nat(1000))),
      (max, ops) => {
        const c = new BoundedCache<number, number>(max);
        const last = new Map<number, number>();
        for (const [op, key, value] of ops) {
          if (op === 'set') {
            c.set(key, value);
            last.set(key, value);
          } else {
            const got = c.get(key, 0);
            if (got !== undefined) assert.equal(got, last.get(key));
          }
          assert.ok(c.size <= max);
        }
      },
    ),
  );
});
