/**
 * The families registered (src/families/index.ts) and the endpoint catalogue
 * the schemas read (src/families/endpoints.ts) must agree. Config, key
 * records and snapshots refer to endpoints by name alone, so a name means one
 * operation: two families share a name (and a path) only for the model
 * catalogue, where the request's headers pick the family.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENDPOINT_NAMES, ENDPOINT_TABLES, ROUTED_ENDPOINT_NAMES } from '../../src/families/endpoints.ts';
import { API_FAMILIES } from '../../src/families/index.ts';
import type { EndpointSpec } from '../../src/pipeline/endpoint.ts';

const key = (e: EndpointSpec): string => `${e.name} ${e.kind} ${e.method} ${e.path}`;
const SHARED_KINDS = new Set(['model_list', 'model_get']);

test("every registered family's endpoints are in the catalogue, and the catalogue has no others", () => {
  assert.deepEqual(API_FAMILIES.flatMap((f) => f.endpoints.map(key)).sort(), ENDPOINT_TABLES.flat().map(key).sort());
});

test('an endpoint name means one operation: shared across families only by the model catalogue, with the same kind and path', () => {
  const byName = new Map<string, EndpointSpec[]>();
  for (const e of ENDPOINT_TABLES.flat()) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
  for (const [name, specs] of byName) {
    if (specs.length === 1) continue;
    assert.ok(
      specs.every((s) => SHARED_KINDS.has(s.kind)),
      `${name} is shared but is not a catalogue endpoint`,
    );
    assert.equal(new Set(specs.map(key)).size, 1, `${name} differs between families`);
  }
  for (const f of API_FAMILIES) assert.equal(new Set(f.endpoints.map((e) => e.name)).size, f.endpoints.length, `${f.name} repeats a name`);
  assert.deepEqual(ENDPOINT_NAMES, [...byName.keys()]);
});

test('only inference endpoints can be routed by a snapshot', () => {
  assert.deepEqual(ROUTED_ENDPOINT_NAMES, ['chat', 'completions', 'embeddings', 'messages', 'count_tokens']);
});

const ANTHROPIC_HEADERS = new Map([['anthropic-version', '2023-06-01']]);
const NO_HEADERS = new Map<string, string>();

for (const family of API_FAMILIES) {
  for (const e of family.endpoints) {
    const path = e.path.replace('{model}', 'some-model');
    test(`${family.name} ${e.method} ${path}: the first family to match is ${family.name}, for its own clients`, () => {
      const headers = family.name === 'anthropic' ? ANTHROPIC_HEADERS : NO_HEADERS;
      const first = API_FAMILIES.find((f) => f.match(e.method, path, headers) !== null);
      assert.equal(first?.name, family.name);
      const m = family.match(e.method, path, headers);
      assert.ok(m?.ok === true && m.endpoint.name === e.name);
    });
  }
}

test("GET /v1/models: Anthropic's shape only for a client that sends anthropic-version; OpenAI's otherwise", () => {
  const first = (headers: ReadonlyMap<string, string>): string | undefined => API_FAMILIES.find((f) => f.match('GET', '/v1/models', headers) !== null)?.name;
  assert.equal(first(ANTHROPIC_HEADERS), 'anthropic');
  assert.equal(first(NO_HEADERS), 'openai');
});

test("a path of one family is not claimed by another (POST /v1/messages is never OpenAI's, POST /v1/chat/completions never Anthropic's)", () => {
  const openai = API_FAMILIES.find((f) => f.name === 'openai');
  const anthropic = API_FAMILIES.find((f) => f.name === 'anthropic');
  assert.equal(openai?.match('POST', '/v1/messages', ANTHROPIC_HEADERS), null);
  assert.equal(anthropic?.match('POST', '/v1/chat/completions', ANTHROPIC_HEADERS), null);
  assert.deepEqual(anthropic?.match('GET', '/v1/messages', NO_HEADERS), { ok: false, reason: 'method_not_allowed' });
});
