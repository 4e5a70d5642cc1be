/**
 * The chat fast path (src/families/openai/chat-fast-path.ts) accepts nothing the schema refuses, over generated
 * bodies mixing valid and invalid values for every field it checks, fields it leaves to the schema and unknown ones;
 * and it does accept the common requests (else it would be dead weight).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { plainChatRequest } from '../../../src/families/openai/chat-fast-path.ts';
import { chatCompletionRequest } from '../../../src/families/openai/schemas.ts';
import { validateRequest } from '../../../src/families/openai/validate.ts';

/** Objects as the strict parser builds them: null prototype, own keys only. */
const bare = (entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> => {
  const o = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of entries) o[k] = v;
  return o;
};

const edgeNumber = fc.constantFrom(
  0,
  1,
  2,
  -1,
  -2,
  2.0001,
  -2.0001,
  1.5,
  0.5,
  20,
  21,
  128,
  129,
  5,
  -0,
  1e300,
  Number.MAX_SAFE_INTEGER,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
);
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  { arbitrary: edgeNumber, weight: 4 },
  fc.integer({ min: -3, max: 200 }),
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 3 }),
);
const value = fc.oneof(scalar, fc.constant([]), fc.constant(['x']), fc.constant(bare([])), fc.constant(bare([['include_usage', true]])));

/** Mostly plain messages; now and then a field the schema refuses or one the fast path leaves to it. */
const rarely = <T, U>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
  fc.oneof({ arbitrary: usual, weight: 8 }, { arbitrary: odd, weight: 1 });
const message = fc
  .record(
    {
      role: rarely(fc.constantFrom('system', 'developer', 'user', 'assistant', 'tool'), fc.constantFrom('function', 'User', '')),
      content: rarely(fc.string({ maxLength: 4 }), fc.constantFrom(null, 3, [{ type: 'text', text: 'a' }], [])),
      name: rarely(fc.constant(undefined), fc.constantFrom('ann', '', null, 1)),
      tool_call_id: rarely(fc.constant('call_1'), fc.constantFrom('', null, undefined)),
      refusal: rarely(fc.constant(undefined), fc.constantFrom(null, 'no', 1)),
      tool_calls: rarely(fc.constant(undefined), fc.constant([])),
      extra: rarely(fc.constant(undefined), value),
    },
    { requiredKeys: ['role', 'content', 'name', 'tool_call_id', 'refusal', 'tool_calls', 'extra'] },
  )
  .map((m) => bare(Object.entries(m).filter(([, v]) => v !== undefined)));

const streamOptions = fc.oneof(
  fc.constant(null),
  fc.record({ include_usage: scalar, include_obfuscation: scalar, other: scalar }, { requiredKeys: [] }).map((o) => bare(Object.entries(o))),
  scalar,
);

const FIELDS = [
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'presence_penalty',
  'frequency_penalty',
  'seed',
  'user',
  'logprobs',
  'top_logprobs',
  // Fields only the schema checks, and fields it does not know.
  'stop',
  'tools',
  'logit_bias',
  'vendor_option',
  '__proto__',
] as const;

/** Near-valid bodies: a plain request, then up to four fields set to anything (valid, invalid, a message list) or removed. */
const body = fc
  .tuple(
    fc.array(message, { minLength: 1, maxLength: 3 }),
    fc.array(
      fc.tuple(
        fc.constantFrom(...FIELDS),
        fc.oneof({ arbitrary: edgeNumber, weight: 4 }, value, streamOptions, fc.array(message, { maxLength: 2 }), fc.constant(undefined)),
      ),
      { maxLength: 4 },
    ),
  )
  .map(([messages, edits]) => {
    const entries = new Map<string, unknown>([
      ['model', 'gpt-4o'],
      ['messages', messages],
      ['max_tokens', 64],
    ]);
    for (const [k, v] of edits) {
      if (v === undefined) entries.delete(k);
      else entries.set(k, v);
    }
    return bare([...entries]);
  });

test('the fast path accepts nothing the schema refuses (generated bodies)', () => {
  let accepted = 0;
  let refusedBySchema = 0;
  fc.assert(
    fc.property(body, (obj) => {
      const fast = plainChatRequest(obj);
      const schema = chatCompletionRequest.safeParse(obj).success;
      if (fast) accepted++;
      if (!schema) refusedBySchema++;
      return !fast || schema;
    }),
    { numRuns: 40_000, seed: 15 },
  );
  // Both sides were exercised: bodies the fast path took, bodies the schema refused.
  assert.ok(accepted > 200, `the fast path accepted ${accepted} bodies`);
  assert.ok(refusedBySchema > 5000, `the schema refused ${refusedBySchema} bodies`);
});

test('the common requests take the fast path; anything richer goes to the schema', () => {
  const plain = [
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    {
      model: 'm',
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: 'u', name: 'ann' },
      ],
      max_tokens: 64,
      temperature: 0.2,
    },
    { model: 'm', messages: [{ role: 'user', content: 'u' }], stream: true, stream_options: { include_usage: true }, seed: 1, n: 1, top_p: null },
    {
      model: 'm',
      messages: [
        { role: 'assistant', content: null },
        { role: 'tool', content: 'r', tool_call_id: 'c1' },
      ],
      top_k: 5,
    },
  ];
  for (const b of plain) {
    const obj = validateRequest('chat', Buffer.from(JSON.stringify(b)), { maxDepth: 32 });
    assert.equal(plainChatRequest(obj), true, JSON.stringify(b));
  }
  const rich = [
    { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
    { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: ['\n'] },
    { model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [] },
    { model: 'm', messages: [{ role: 'assistant', content: 'x', tool_calls: [] }] },
  ];
  for (const b of rich) {
    const obj = validateRequest('chat', Buffer.from(JSON.stringify(b)), { maxDepth: 32 });
    assert.equal(plainChatRequest(obj), false, JSON.stringify(b));
  }
});
