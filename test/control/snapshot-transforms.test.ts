/** A model's request transforms in the routing snapshot: what is accepted, and what is refused naming the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { ConfigError } from '../../src/config/errors.ts';

const doc = (models: object[]): string => JSON.stringify({ version: 'v1', models });
const chat = (transforms: object, over: object = {}): object => ({
  id: 'm',
  endpoints: ['chat', 'completions'],
  target: { cluster: 'c', model: 'x' },
  transforms,
  ...over,
});

test('transforms are parsed onto the model and its tenant overrides; a model without them has none', () => {
  const s = parseSnapshot(
    `
version: v1
models:
  - id: gpt
    endpoints: [chat, completions]
    target: { cluster: c, model: x }
    overrides:
      - tenants: [team-a]
        target: { cluster: d, model: y }
    transforms:
      defaults: { temperature: 0.2, max_tokens: 512 }
      forced: { top_p: 0.9, reasoning_effort: low }
      systemPrefix: "Be brief."
  - id: plain
    endpoints: [chat]
    target: { cluster: c, model: x }
  - id: empty
    endpoints: [chat]
    target: { cluster: c, model: x }
    transforms: {}
`,
    'test',
  );
  const gpt = s.models.get('gpt');
  assert.deepEqual(gpt?.transforms, {
    defaults: { temperature: 0.2, max_tokens: 512 },
    forced: { top_p: 0.9, reasoning_effort: 'low' },
    systemPrefix: 'Be brief.',
  });
  assert.equal(gpt?.overrides.get('team-a')?.transforms, gpt?.transforms, "an override has its model's transforms");
  assert.equal(s.models.get('plain')?.transforms, null);
  assert.equal(s.models.get('empty')?.transforms, null, 'nothing to apply: none');
});

test('Anthropic models take top_k and temperature up to 1; a model translated to Anthropic takes what translation carries', () => {
  const s = parseSnapshot(
    doc([
      {
        id: 'claude',
        endpoints: ['messages', 'count_tokens'],
        target: { cluster: 'a', model: 'claude-x', provider: 'anthropic' },
        transforms: { forced: { top_k: 40, temperature: 1, max_tokens: 100 }, systemPrefix: 'p' },
      },
      {
        id: 'claude-for-openai',
        endpoints: ['chat'],
        target: { cluster: 'a', model: 'claude-x', provider: 'anthropic' },
        transforms: { defaults: { seed: 1, presence_penalty: 0, temperature: 0.7 } },
      },
    ]),
    'test',
  );
  assert.equal(s.models.get('claude')?.transforms?.forced['top_k'], 40);
});

const refused: Array<[string, object, RegExp]> = [
  ['an unknown parameter', chat({ forced: { logit_bias: {} } }), /models\[0\]\.transforms\.forced\.logit_bias: is not a known setting/],
  ['an unknown transform', chat({ suffix: 'x' }), /models\[0\]\.transforms\.suffix: is not a known setting/],
  ['a temperature out of range', chat({ defaults: { temperature: 3 } }), /models\[0\]\.transforms\.defaults\.temperature: /],
  ['a max_tokens that is not a positive integer', chat({ forced: { max_tokens: 0 } }), /models\[0\]\.transforms\.forced\.max_tokens: /],
  ['a fractional max_tokens', chat({ defaults: { max_tokens: 1.5 } }), /models\[0\]\.transforms\.defaults\.max_tokens: /],
  ['a top_p above 1', chat({ forced: { top_p: 1.1 } }), /models\[0\]\.transforms\.forced\.top_p: /],
  ['a penalty out of range', chat({ forced: { presence_penalty: -3 } }), /models\[0\]\.transforms\.forced\.presence_penalty: /],
  ['an unknown reasoning effort', chat({ forced: { reasoning_effort: 'max' } }), /models\[0\]\.transforms\.forced\.reasoning_effort: /],
  ['a value of the wrong type', chat({ forced: { temperature: '0.5' } }), /models\[0\]\.transforms\.forced\.temperature: /],
  ['an empty system prefix', chat({ systemPrefix: '' }), /models\[0\]\.transforms\.systemPrefix: /],
  [
    'a parameter none of the endpoints takes',
    chat({ forced: { top_k: 5 } }),
    /models\[0\]\.transforms\.forced\.top_k: applies to none of the model's endpoints \(only to messages\)/,
  ],
  [
    'a system prefix for a model that only completes or embeds',
    chat({ systemPrefix: 'p' }, { endpoints: ['completions'] }),
    /models\[0\]\.transforms\.systemPrefix: applies to none of the model's endpoints/,
  ],
  [
    'a default that is also forced',
    chat({ defaults: { temperature: 0.1 }, forced: { temperature: 0.2 } }),
    /models\[0\]\.transforms\.defaults\.temperature: is also forced/,
  ],
  [
    'a temperature above 1 for a model that serves messages',
    { id: 'm', endpoints: ['messages'], target: { cluster: 'a', model: 'x', provider: 'anthropic' }, transforms: { defaults: { temperature: 1.5 } } },
    /models\[0\]\.transforms\.defaults\.temperature: 1\.5 is not accepted by the Anthropic Messages API/,
  ],
  [
    'reasoning_effort for chat translated to an Anthropic fallback',
    chat(
      { forced: { reasoning_effort: 'high' } },
      {
        endpoints: ['chat'],
        target: { cluster: 'o', model: 'x', fallback: { cluster: 'agg', to: [{ cluster: 'a', model: 'y', provider: 'anthropic' }] } },
      },
    ),
    /models\[0\]\.transforms\.forced\.reasoning_effort: "high" cannot be sent to this model's Anthropic deployment/,
  ],
  [
    'a non-zero penalty for chat with an Anthropic tenant override',
    chat(
      { defaults: { frequency_penalty: 0.5 } },
      { endpoints: ['chat'], overrides: [{ tenants: ['t'], target: { cluster: 'a', model: 'y', provider: 'anthropic' } }] },
    ),
    /models\[0\]\.transforms\.defaults\.frequency_penalty: 0\.5 cannot be sent to this model's Anthropic deployment/,
  ],
];
for (const [name, model, message] of refused) {
  test(`refused, naming the field: ${name}`, () => {
    assert.throws(
      () => parseSnapshot(doc([model]), 'test'),
      (err: unknown) => err instanceof ConfigError && message.test(err.message),
    );
  });
}
