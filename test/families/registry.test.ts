/**
 * The families registered (src/families/index.ts) and the endpoint catalogue
 * the schemas read (src/families/endpoints.ts) must agree, and endpoint
 * names and paths must be unique across families: config, key records and
 * snapshots refer to endpoints by name alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENDPOINT_NAMES, ENDPOINT_TABLES, ROUTED_ENDPOINT_NAMES } from '../../src/families/endpoints.ts';
import { API_FAMILIES } from '../../src/families/index.ts';

test("every registered family's endpoints are in the catalogue, and the catalogue has no others", () => {
  assert.deepEqual(
    API_FAMILIES.flatMap((f) => f.endpoints),
    ENDPOINT_TABLES.flat(),
  );
});

test('endpoint names and method+path pairs are unique across families', () => {
  const all = ENDPOINT_TABLES.flat();
  assert.equal(new Set(all.map((e) => e.name)).size, all.length);
  assert.equal(new Set(all.map((e) => `${e.method} ${e.path}`)).size, all.length);
  assert.deepEqual(
    ENDPOINT_NAMES,
    all.map((e) => e.name),
  );
});

test('only inference endpoints can be routed by a snapshot', () => {
  assert.deepEqual(ROUTED_ENDPOINT_NAMES, ['chat', 'completions', 'embeddings']);
});

test("each family matches its own endpoints' paths and no other family's", () => {
  for (const family of API_FAMILIES) {
    for (const e of family.endpoints) {
      const path = e.path.replace('{model}', 'some-model');
      const m = family.match(e.method, path);
      assert.ok(m?.ok === true && m.endpoint.name === e.name, `${family.name} ${e.method} ${path}`);
      for (const other of API_FAMILIES) if (other !== family) assert.equal(other.match(e.method, path), null, `${other.name} claims ${path}`);
    }
  }
});
