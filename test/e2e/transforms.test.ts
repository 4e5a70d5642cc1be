/**
 * A model's request transforms through real Envoy, the sidecar as its own
 * process and the official openai client: the demo model server receives
 * the transformed body (defaults where the client sent nothing, forced values
 * over the client's, the system prompt prefixed), in its own API when the
 * request is translated; the quota reserves the forced max_tokens; the audit
 * record names what applied. Over fakes, case by case:
 * test/pipeline/transforms.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readAudit } from '../helpers/fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import type { RecordedRequest } from '../../src/demo/upstream.ts';

let stack: TestStack;
const PREFIX = 'You are the Acme assistant.';

before(async () => {
  stack = await startTestStack({
    keys: [{ principal: 'alice' }],
    models: [
      {
        id: 'tx-gpt',
        endpoints: ['chat', 'completions'],
        cluster: 'demo-upstream',
        model: 'demo-model',
        transforms: { defaults: { temperature: 0.2, seed: 11 }, forced: { max_tokens: 24, top_p: 0.5 }, systemPrefix: PREFIX },
      },
      {
        id: 'tx-claude',
        endpoints: ['chat'],
        cluster: 'demo-upstream',
        model: 'demo-claude',
        provider: 'anthropic',
        transforms: { forced: { max_tokens: 32 }, systemPrefix: PREFIX },
      },
    ],
    config: { quotas: { plans: [{ name: 'standard', limits: [{ scope: 'key', tpm: 1_000_000 }] }] } },
  });
});

after(async () => {
  await stack?.stop();
});

function onlyUpstream(): RecordedRequest {
  assert.equal(stack.upstream.requests.length, 1, 'the model server saw one request');
  return stack.upstream.requests[0] as RecordedRequest;
}

function lastRecord(): Record<string, unknown> & {
  transforms: { defaults: string[]; forced: string[]; systemPrefix: boolean } | null;
  quota: { reservedTokens: number } | null;
} {
  const r = readAudit(stack.files.auditFile).at(-1);
  assert.ok(r !== undefined, 'an audit record');
  return r as unknown as ReturnType<typeof lastRecord>;
}

test('OpenAI chat: the model server receives the defaults, the forced values over the client’s and the prefixed system prompt', async () => {
  stack.upstream.clearRequests();
  const res = await stack.client().chat.completions.create({
    model: 'tx-gpt',
    messages: [
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'Hello there' },
    ],
    max_tokens: 4000,
    top_p: 1,
    seed: 3,
  });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'tx-gpt');
  const body = onlyUpstream().body as Record<string, unknown>;
  assert.equal(body['model'], 'demo-model');
  assert.deepEqual(body['messages'], [
    { role: 'system', content: `${PREFIX}\n\nAnswer in French.` },
    { role: 'user', content: 'Hello there' },
  ]);
  assert.equal(body['max_tokens'], 24, "forced over the client's 4000");
  assert.equal(body['top_p'], 0.5, "forced over the client's 1");
  assert.equal(body['temperature'], 0.2, 'a default where the client sent none');
  assert.equal(body['seed'], 3, "the client's own seed is kept over the default");
  const rec = lastRecord();
  assert.deepEqual(rec.transforms, { defaults: ['temperature'], forced: ['max_tokens', 'top_p'], systemPrefix: true });
  const reserved = rec.quota?.reservedTokens ?? 0;
  assert.ok(reserved >= 24 && reserved < 4000, `the quota reserved the forced max_tokens, not the client's (reserved ${reserved})`);
  assert.ok(!JSON.stringify(rec).includes(PREFIX), 'the prefix text is never in the record');
});

test('OpenAI completions: parameters apply, the prompt is not prefixed', async () => {
  stack.upstream.clearRequests();
  await stack.client().completions.create({ model: 'tx-gpt', prompt: 'Once upon a time', temperature: 1 });
  const body = onlyUpstream().body as Record<string, unknown>;
  assert.equal(body['prompt'], 'Once upon a time');
  assert.equal(body['max_tokens'], 24);
  assert.equal(body['temperature'], 1);
  assert.equal(body['seed'], 11);
  assert.deepEqual(lastRecord().transforms, { defaults: ['seed'], forced: ['max_tokens', 'top_p'], systemPrefix: false });
});

test('OpenAI client → Anthropic deployment: applied in the client’s API, then translated (the prefix in `system`, the forced max_tokens)', async () => {
  stack.upstream.clearRequests();
  const res = await stack.client().chat.completions.create({ model: 'tx-claude', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 900 });
  assert.equal(res.object, 'chat.completion');
  const up = onlyUpstream();
  assert.equal(up.path, '/v1/messages');
  const body = up.body as Record<string, unknown>;
  assert.equal(body['system'], PREFIX);
  assert.equal(body['max_tokens'], 32);
  assert.deepEqual(lastRecord().transforms, { defaults: [], forced: ['max_tokens'], systemPrefix: true });
});
