import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSnapshot } from '../../src/control/snapshot.ts';

const doc = (models: object[]): string => JSON.stringify({ version: 'v1', models });
const chain = {
  cluster: 'claude-api',
  model: 'claude-x',
  provider: 'anthropic',
  credential: 'anthropic-key',
  fallback: { cluster: 'chat-failover', to: [{ cluster: 'vllm', model: 'llama', labels: { tier: 'backup' } }] },
};

test('a target with fallbacks: the chain is the primary, then each fallback, each with its own provider and credential', () => {
  const s = parseSnapshot(doc([{ id: 'ha', endpoints: ['chat', 'messages'], target: chain }]), 'test');
  const target = s.models.get('ha')?.targets[0];
  assert.equal(target?.cluster, 'claude-api');
  assert.equal(target?.fallback?.cluster, 'chat-failover');
  assert.deepEqual(
    target?.fallback?.chain.map((d) => [d.cluster, d.upstreamModel, d.provider, d.credential, d.fallback]),
    [
      ['claude-api', 'claude-x', 'anthropic', 'anthropic-key', null],
      ['vllm', 'llama', 'openai', null, null],
    ],
  );
  assert.deepEqual(target?.fallback?.chain[1]?.labels, { tier: 'backup' });
  const plain = parseSnapshot(doc([{ id: 'm', endpoints: ['chat'], target: { cluster: 'c', model: 'x' } }]), 'test');
  assert.equal(plain.models.get('m')?.targets[0]?.fallback, null);
});

const refused: Array<[string, object, RegExp]> = [
  [
    'a fallback whose provider cannot serve an endpoint of the model',
    { ...chain, fallback: { cluster: 'agg', to: [{ cluster: 'vllm', model: 'llama' }] } },
    /models\[0\]\.target\.fallback\.to\[0\]\.provider: a "openai" deployment does not serve count_tokens/,
  ],
  [
    'a member cluster twice (attempts are told apart by their cluster)',
    { ...chain, fallback: { cluster: 'agg', to: [{ cluster: 'claude-api', model: 'other', provider: 'anthropic' }] } },
    /fallback\.to\[0\]\.cluster: cluster "claude-api" is already in this fallback chain/,
  ],
  [
    'the aggregate named as one of its own members',
    { ...chain, fallback: { cluster: 'claude-api', to: [{ cluster: 'b', model: 'y', provider: 'anthropic' }] } },
    /fallback\.cluster: must be the aggregate cluster/,
  ],
  ['an empty fallback list', { ...chain, fallback: { cluster: 'agg', to: [] } }, /fallback\.to: must list at least one fallback/],
  ['a fallback with its own fallback', { ...chain, fallback: { cluster: 'agg', to: [{ cluster: 'b', model: 'y', fallback: {} }] } }, /fallback/],
  ['a fallback with a weight', { ...chain, fallback: { cluster: 'agg', to: [{ cluster: 'b', model: 'y', weight: 2 }] } }, /weight/],
];

for (const [name, target, message] of refused) {
  test(`refused: ${name}`, () => {
    assert.throws(() => parseSnapshot(doc([{ id: 'ha', endpoints: ['messages', 'count_tokens'], target }]), 'test'), message);
  });
}
