/** The local stack's routing snapshot (`npm start`) is valid and shows both client APIs on both kinds of deployment. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_SNAPSHOT, demoClusters } from '../../src/cli/stack.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';

test('the demo snapshot parses, and each chat model is served to OpenAI and Anthropic clients alike', () => {
  const s = parseSnapshot(JSON.stringify(DEMO_SNAPSHOT), 'DEMO_SNAPSHOT');
  const providers = new Set<string>();
  for (const id of ['gpt-demo', 'claude-demo']) {
    const route = s.models.get(id);
    assert.ok(route !== undefined, id);
    assert.ok(route.endpoints.has('chat') && route.endpoints.has('messages'), `${id} serves both client APIs`);
    providers.add(route.targets[0]?.provider ?? '');
  }
  assert.deepEqual([...providers].sort(), ['anthropic', 'openai'], 'one deployment of each kind');
});

test('ha-demo falls back across providers: an always-overloaded Anthropic deployment, then the OpenAI-compatible one, over an aggregate of those clusters', () => {
  const s = parseSnapshot(JSON.stringify(DEMO_SNAPSHOT), 'DEMO_SNAPSHOT');
  const target = s.models.get('ha-demo')?.targets[0];
  const chain = target?.fallback?.chain ?? [];
  assert.deepEqual(
    chain.map((d) => [d.cluster, d.provider, d.upstreamModel]),
    [
      ['demo-overloaded', 'anthropic', 'demo-fail-529'],
      ['demo-upstream', 'openai', 'demo-model'],
    ],
  );
  const aggregate = demoClusters(8000).find((c) => c.name === target?.fallback?.cluster);
  assert.ok(aggregate !== undefined && 'aggregate' in aggregate, 'the stack defines the aggregate cluster');
  assert.deepEqual(
    aggregate.aggregate,
    chain.map((d) => d.cluster),
    'its members are the chain, in order',
  );
});
