/**
 * A slice of the evasion corpus (test/corpus) through real Envoy with the
 * official clients (issue #13): values in other fields, written in other
 * Unicode forms, split across messages, in both directions (the demo model
 * server answers with the exact text of x-demo-reply, buffered and streamed).
 * The model server must never receive a value the policy redacts, the client
 * never get one back, and secrets are refused. Through ext_authz a value the
 * policy would redact is refused (it cannot be redacted there).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { ENCODINGS, leaks, NEAR_MISSES, SECRETS, SENSITIVE, type Sample } from '../corpus/samples.ts';

const POLICY = {
  responses: true,
  rules: [
    { name: 'secrets', classes: ['SECRET'], action: 'deny' },
    { name: 'redact', classes: ['PCI', 'PII'], action: 'redact' },
  ],
};
let stack: TestStack;
let authz: TestStack;

before(async () => {
  stack = await startTestStack({
    config: { policy: POLICY },
    models: [
      { id: 'gpt-demo', endpoints: ['chat', 'completions', 'messages'], cluster: 'demo-upstream', model: 'demo-model' },
      { id: 'claude-demo', endpoints: ['messages', 'chat'], cluster: 'demo-upstream', model: 'demo-claude', provider: 'anthropic' },
    ],
  });
  authz = await startTestStack({ filter: 'ext_authz', config: { policy: POLICY } });
});

after(async () => {
  await stack?.stop();
  await authz?.stop();
});

const encodings = (s: Sample): Array<[string, string]> => [
  ['plain', s.value],
  ...ENCODINGS.map((e): [string, string | null] => [e.name, e.apply(s)]).filter((x): x is [string, string] => x[1] !== null),
];

function anthropic(t: TestStack): Anthropic {
  return new Anthropic({ baseURL: t.url, apiKey: t.files.keys['alice'] ?? '', maxRetries: 0, timeout: 20_000 });
}

/** What the model server received last, as text. */
function lastUpstream(): string {
  return JSON.stringify(stack.upstream.requests.at(-1)?.body ?? null);
}

test('requests: each sensitive value, in every encoding, in message text, a tool call and an unknown field, never reaches the model server', async () => {
  for (const sample of SENSITIVE) {
    for (const [enc, v] of encodings(sample)) {
      stack.upstream.clearRequests();
      await stack.client().chat.completions.create({
        model: 'gpt-demo',
        messages: [
          { role: 'user', content: `please use ${v} now` },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'pay', arguments: JSON.stringify({ v }) } }] },
          { role: 'tool', tool_call_id: 'c1', content: 'done' },
        ],
        // @ts-expect-error an unknown field: the gateway passes it on, so it must inspect it too
        x_extra: { note: v },
      });
      assert.equal(stack.upstream.requests.length, 1);
      assert.ok(!leaks(lastUpstream(), sample), `${sample.name} (${enc}) reached the model server: ${lastUpstream()}`);
    }
  }
});

test('requests: a value split across two messages, from the Anthropic SDK to a translated deployment, never reaches the model server', async () => {
  for (const sample of SENSITIVE) {
    const cut = Math.floor(sample.value.length / 2);
    stack.upstream.clearRequests();
    await anthropic(stack).messages.create({
      model: 'gpt-demo',
      max_tokens: 16,
      messages: [
        { role: 'user', content: [{ type: 'text', text: `value ${sample.value.slice(0, cut)}` }] },
        { role: 'user', content: [{ type: 'text', text: `${sample.value.slice(cut)} end` }] },
      ],
    });
    assert.ok(!leaks(lastUpstream(), sample), `${sample.name} split reached the model server: ${lastUpstream()}`);
  }
});

test('requests: each secret, in every encoding, is refused with 403 data_policy_denied and never reaches the model server', async () => {
  for (const sample of SECRETS) {
    for (const [enc, v] of encodings(sample)) {
      stack.upstream.clearRequests();
      await assert.rejects(
        stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: `key: ${v}` }] }),
        (err: unknown) => err instanceof OpenAI.PermissionDeniedError && err.code === 'data_policy_denied',
        `${sample.name} (${enc})`,
      );
      assert.equal(stack.upstream.requests.length, 0);
    }
  }
});

test('responses: what the model writes is redacted, buffered and streamed, for OpenAI and Anthropic clients', async () => {
  for (const sample of SENSITIVE) {
    for (const [enc, v] of encodings(sample).slice(0, 6)) {
      const reply = encodeURIComponent(`Sure, it is ${v} as asked.`);
      const openai = stack.client('alice', { 'x-demo-reply': reply });
      const buffered = await openai.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'tell me' }] });
      assert.ok(!leaks(JSON.stringify(buffered), sample), `${sample.name} (${enc}) buffered: ${JSON.stringify(buffered)}`);
      let streamed = '';
      for await (const c of await openai.chat.completions.create({ model: 'gpt-demo', stream: true, messages: [{ role: 'user', content: 'tell me' }] })) {
        streamed += c.choices[0]?.delta.content ?? '';
      }
      assert.ok(!leaks(streamed, sample), `${sample.name} (${enc}) streamed: ${streamed}`);
      const message = await new Anthropic({
        baseURL: stack.url,
        apiKey: stack.files.keys['alice'] ?? '',
        maxRetries: 0,
        defaultHeaders: { 'x-demo-reply': reply },
      }).messages
        .stream({ model: 'claude-demo', max_tokens: 64, messages: [{ role: 'user', content: 'tell me' }] })
        .finalMessage();
      assert.ok(!leaks(JSON.stringify(message.content), sample), `${sample.name} (${enc}) Anthropic stream: ${JSON.stringify(message.content)}`);
    }
  }
});

test('near misses pass untouched, both ways', async () => {
  for (const miss of NEAR_MISSES.filter((m) => !m.startsWith('call '))) {
    stack.upstream.clearRequests();
    const res = await stack
      .client('alice', { 'x-demo-reply': encodeURIComponent(miss) })
      .chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: miss }] });
    assert.ok(lastUpstream().includes(JSON.stringify(miss).slice(1, -1)), `${miss} was changed on the way up: ${lastUpstream()}`);
    assert.equal(res.choices[0]?.message.content?.trim(), miss);
  }
});

test('ext_authz: a value the policy would redact is refused (it cannot be redacted there), in every encoding', async () => {
  for (const sample of SENSITIVE.slice(0, 2)) {
    for (const [enc, v] of encodings(sample)) {
      authz.upstream.clearRequests();
      await assert.rejects(
        authz.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: `card ${v}` }] }),
        (err: unknown) => err instanceof OpenAI.PermissionDeniedError && err.code === 'data_policy_denied',
        `${sample.name} (${enc})`,
      );
      assert.equal(authz.upstream.requests.length, 0);
    }
  }
});
