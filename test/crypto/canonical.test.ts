/**
 * Canonical JSON (docs/audit.md): keys sorted by UTF-16 code units at every
 * level, no whitespace, undefined members dropped. Checked against a
 * straightforward reference on arbitrary JSON values, because every audit
 * hash and every written line depends on it byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from '../../src/crypto/canonical.ts';

function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => reference(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`).join(',')}}`;
}

test('equals the reference on arbitrary JSON, and parses back to the same value', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const c = canonicalJson(v);
      return c === reference(v) && c === canonicalJson(JSON.parse(c));
    }),
    { numRuns: 2000 },
  );
});

test('keys sorted by code unit at every level; undefined members dropped', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: 1, y: undefined }], c: null }, B: 'x', é: 1, e: undefined }),
    '{"B":"x","a":{"c":null,"d":[3,{"z":1}]},"b":1,"é":1}',
  );
  assert.equal(canonicalJson([undefined, 1]), '[null,1]');
});
