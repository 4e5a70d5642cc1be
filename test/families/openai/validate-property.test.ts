/**
 * Property: for any input bytes, validateRequest either returns an object or
 * throws GatewayError('invalid_request_body') — never another exception,
 * never slowly, and never touching Object.prototype.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GatewayError } from '../../../src/pipeline/errors.ts';
import { parseStrictJson } from '../../../src/pipeline/json.ts';
import { validateRequest } from '../../../src/families/openai/validate.ts';
import type { ValidatedEndpoint } from '../../../src/families/openai/validate.ts';

const ENDPOINTS: readonly ValidatedEndpoint[] = ['chat', 'completions', 'embeddings'];
/** Per-run time box: a single body must never take longer than this. */
const RUN_BUDGET_MS = 250;
const NUM_RUNS = 400;

function check(endpoint: ValidatedEndpoint, body: Buffer): void {
  const t0 = performance.now();
  try {
    const v = validateRequest(endpoint, body, { maxDepth: 32 });
    assert.equal(typeof v, 'object');
    assert.notEqual(v, null);
    assert.equal(Object.getPrototypeOf(v), null);
  } catch (err) {
    if (!(err instanceof GatewayError) || err.code !== 'invalid_request_body' || err.status !== 400) {
      throw new Error(`unexpected exception for ${endpoint} ${JSON.stringify(body.toString('latin1').slice(0, 200))}: ${String(err)}`, { cause: err });
    }
    assert.ok(err.param === null || (typeof err.param === 'string' && err.param.length > 0));
  }
  const ms = performance.now() - t0;
  assert.ok(ms < RUN_BUDGET_MS, `${ms.toFixed(1)} ms for a ${body.length}-byte body`);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).includes('polluted'), false);
}

const endpoint = fc.constantFrom(...ENDPOINTS);

const VALID: Record<ValidatedEndpoint, readonly unknown[]> = {
  chat: [
    {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello!' },
      ],
      temperature: 0.7,
      stop: ['\n'],
      stream: true,
      stream_options: { include_usage: true },
    },
    {
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hi' },
            { type: 'image_url', image_url: { url: 'https://x/y.png' } },
          ],
        },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      max_tokens: 10,
    },
  ],
  completions: [
    { model: 'm', prompt: ['a', 'b'], max_tokens: 5, logit_bias: { '1': 2 } },
    { model: 'm', prompt: [[1, 2], [3]], echo: true },
  ],
  embeddings: [
    { model: 'm', input: ['x', 'y'], encoding_format: 'float', dimensions: 8 },
    { model: 'm', input: [1, 2, 3] },
  ],
};

/** Structured mutations of a valid body: byte flips, truncation, splices of hostile snippets. */
const SNIPPETS = [
  '"__proto__":{"polluted":1},',
  '"constructor":{"prototype":{"polluted":1}},',
  '"model":"dup",',
  '1e999',
  '9007199254740993',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
  '"\\ud800"',
  '\\u0000',
  '\u0001\u0085',
  'null',
  '-',
  '{',
  '}',
  ']',
  ',',
  '"',
  '\\',
];
const mutatedBody = fc
  .tuple(endpoint, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom(...SNIPPETS), fc.nat(3)), { maxLength: 4 }))
  .map(([ep, pick, edits]) => {
    const bodies = VALID[ep];
    let bytes = Buffer.from(JSON.stringify(bodies[pick % bodies.length]));
    for (const [pos, byte, snippet, kind] of edits) {
      const at = pos % (bytes.length + 1);
      if (kind === 0) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at + 1)]);
      else if (kind === 1) bytes = bytes.subarray(0, at);
      else if (kind === 2) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(snippet), bytes.subarray(at)]);
      else bytes = Buffer.concat([bytes.subarray(0, 1), Buffer.from(snippet), bytes.subarray(1)]);
    }
    return [ep, bytes] as const;
  });

test('valid bodies pass, and mutations of them never escape as other exceptions', () => {
  for (const ep of ENDPOINTS) for (const b of VALID[ep]) assert.ok(validateRequest(ep, Buffer.from(JSON.stringify(b)), { maxDepth: 32 }));
  fc.assert(
    fc.property(mutatedBody, ([ep, body]) => check(ep, body)),
    { numRuns: NUM_RUNS * 3 },
  );
});

test('arbitrary JSON values (fc.json) are accepted or refused cleanly', () => {
  fc.assert(
    fc.property(endpoint, fc.json({ depthSize: 'medium' }), (ep, text) => check(ep, Buffer.from(text))),
    { numRuns: NUM_RUNS },
  );
});

test('arbitrary objects in request position, with request keys mixed in', () => {
  const key = fc.oneof(
    fc.constantFrom(
      'model',
      'messages',
      'prompt',
      'input',
      'role',
      'content',
      'type',
      'text',
      'stop',
      'n',
      'temperature',
      '__proto__',
      'constructor',
      'prototype',
    ),
    fc.string(),
  );
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 2 }), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 5 })),
  })).v;
  const body = fc.dictionary(key, value, { maxKeys: 6 }).map((o) => JSON.stringify(o));
  fc.assert(
    fc.property(endpoint, body, (ep, text) => check(ep, Buffer.from(text))),
    { numRuns: NUM_RUNS },
  );
});

test('arbitrary byte arrays and unicode strings never escape as other exceptions', () => {
  fc.assert(
    fc.property(endpoint, fc.uint8Array({ maxLength: 512 }), (ep, bytes) => check(ep, Buffer.from(bytes))),
    { numRuns: NUM_RUNS },
  );
  fc.assert(
    fc.property(endpoint, fc.string({ unit: 'binary', maxLength: 256 }), (ep, s) => check(ep, Buffer.from(s))),
    { numRuns: NUM_RUNS },
  );
});

test('strict parser agrees with JSON.parse on everything JSON.parse accepts, unless it names a reason', () => {
  fc.assert(
    fc.property(fc.json({ depthSize: 'medium' }), (text) => {
      let ours: unknown;
      try {
        ours = parseStrictJson(Buffer.from(text), { maxDepth: 1000 });
      } catch (err) {
        // Allowed refusals of JSON that JSON.parse accepts.
        assert.ok(err instanceof Error && 'reason' in err);
        assert.ok(
          ['duplicate_key', 'forbidden_key', 'unsafe_integer', 'number_out_of_range', 'invalid_unicode_escape'].includes(String(err.reason)),
          String(err.reason),
        );
        return;
      }
      assert.equal(JSON.stringify(ours), JSON.stringify(JSON.parse(text)));
    }),
    { numRuns: NUM_RUNS },
  );
});
