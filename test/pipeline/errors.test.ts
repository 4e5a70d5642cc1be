import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, GatewayError } from '../../src/pipeline/errors.ts';
import { openAIErrorBody } from '../../src/families/openai/family.ts';

const DOC = new URL('../../docs/errors.md', import.meta.url);

test('docs/errors.md lists exactly the registry, row for row', () => {
  const rows = readFileSync(DOC, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  const documented = rows.map(([code, status, type, origin, meaning]) => ({
    code: (code ?? '').replaceAll('`', ''),
    status: Number(status),
    type,
    origin,
    meaning,
  }));
  const registry = Object.entries(ERROR_CODES).map(([code, s]) => ({ code, status: s.status, type: s.type, origin: s.origin, meaning: s.description }));
  assert.deepEqual(documented, registry);
});

test('GatewayError renders the OpenAI error shape', () => {
  const e = new GatewayError('model_not_found', 'nope', { param: 'model' });
  assert.equal(e.status, 404);
  assert.deepEqual(openAIErrorBody(e), { error: { message: 'nope', type: 'invalid_request_error', code: 'model_not_found', param: 'model' } });
});
