import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { ConfigError } from '../../src/config/errors.ts';

const doc = (models: object[]): string => JSON.stringify({ version: 'v1', models });

test('chat on an Anthropic deployment and messages on an OpenAI one are served through translation', () => {
  const s = parseSnapshot(
    doc([
      { id: 'claude-for-openai-clients', endpoints: ['chat', 'messages'], target: { cluster: 'a', model: 'claude-x', provider: 'anthropic' } },
      { id: 'gpt-for-anthropic-clients', endpoints: ['chat', 'messages'], target: { cluster: 'o', model: 'gpt-x' } },
    ]),
    'test',
  );
  assert.equal(s.models.size, 2);
});

test('a deployment names its provider (openai by default); the parsed snapshot carries it', () => {
  const s = parseSnapshot(
    doc([
      { id: 'gpt', endpoints: ['chat'], target: { cluster: 'vllm', model: 'llama' } },
      {
        id: 'claude',
        endpoints: ['messages', 'count_tokens'],
        target: { cluster: 'anthropic-api', model: 'claude-x', provider: 'anthropic', credential: 'anthropic-key' },
      },
    ]),
    'test',
  );
  assert.equal(s.models.get('gpt')?.targets[0]?.provider, 'openai');
  assert.equal(s.models.get('claude')?.targets[0]?.provider, 'anthropic');
});

const refused: Array<[string, object, RegExp]> = [
  [
    'token counting on an OpenAI deployment (no counterpart in its API)',
    { id: 'm', endpoints: ['count_tokens'], target: { cluster: 'c', model: 'x' } },
    /models\[0\]\.target\.provider: a "openai" deployment does not serve count_tokens/,
  ],
  [
    'embeddings on an Anthropic deployment (no counterpart in its API)',
    { id: 'm', endpoints: ['embeddings'], target: { cluster: 'c', model: 'x', provider: 'anthropic' } },
    /models\[0\]\.target\.provider: a "anthropic" deployment does not serve embeddings/,
  ],
  [
    'one target of a split that cannot serve the endpoints',
    {
      id: 'm',
      endpoints: ['messages', 'count_tokens'],
      targets: [
        { cluster: 'a', model: 'x', provider: 'anthropic' },
        { cluster: 'b', model: 'y' },
      ],
    },
    /models\[0\]\.targets\[1\]\.provider/,
  ],
  [
    "a tenant override that cannot serve the model's endpoints",
    {
      id: 'm',
      endpoints: ['completions'],
      target: { cluster: 'a', model: 'x' },
      overrides: [{ tenants: ['t'], target: { cluster: 'b', model: 'y', provider: 'anthropic' } }],
    },
    /models\[0\]\.overrides\[0\]\.target\.provider/,
  ],
  ['an unknown provider', { id: 'm', endpoints: ['chat'], target: { cluster: 'c', model: 'x', provider: 'gemini' } }, /models\[0\]\.target\.provider/],
];
for (const [name, model, message] of refused) {
  test(`refused, naming the path: ${name}`, () => {
    assert.throws(
      () => parseSnapshot(doc([model]), 'test'),
      (err: unknown) => err instanceof ConfigError && message.test(err.message),
    );
  });
}
