/**
 * The OpenAPI document: every route of the admin API is in it (method and
 * path), nothing else is, and the committed docs/control-plane-openapi.json
 * is the one the code serves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { openApiDocument } from '../../src/control-plane/openapi.ts';
import { matchRoute, ROUTES } from '../../src/control-plane/routes.ts';
import { mergePatch } from '../../src/control-plane/server.ts';

const committed = JSON.parse(readFileSync(join(PROJECT_ROOT, 'docs/control-plane-openapi.json'), 'utf8')) as { paths: Record<string, Record<string, unknown>> };

test('every route is in the committed OpenAPI document, and nothing else', () => {
  assert.ok(ROUTES.length >= 30);
  const documented = Object.entries(committed.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documented.sort(), ROUTES.map((r) => `${r.method} ${r.path}`).sort());
});

test('the committed document is the generated one (regenerate: node src/cli/main.ts control-plane --openapi)', () => {
  assert.deepEqual(committed, JSON.parse(JSON.stringify(openApiDocument())));
});

test('routes match paths, with an encoded id, and name the allowed methods otherwise', () => {
  const m = matchRoute('GET', '/v1/models/meta%2Fllama');
  assert.ok(m !== null && 'route' in m);
  assert.equal(m.id, 'meta/llama');
  assert.equal(m.route.verb, 'get');
  assert.deepEqual(matchRoute('PUT', '/v1/keys/abc'), { allowed: ['GET', 'PATCH'] });
  assert.equal(matchRoute('GET', '/v1/nothing'), null);
});

test('merge patch (RFC 7396): null removes, objects merge, arrays replace', () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { a: null, b: { c: 5 }, e: [2] }), { b: { c: 5, d: 3 }, e: [2] });
});
