/**
 * A model's request transforms (defaults, forced parameters, a system prompt
 * prefix) through the processor over fake ports: the body sent upstream, the
 * quota reservation, the data policy's input, translation both ways and the
 * audit record. The same through real Envoy: test/e2e/transforms.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicFamily } from '../../src/families/anthropic/family.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { TRANSLATORS } from '../../src/families/translate/port.ts';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import type { RequestTransforms } from '../../src/pipeline/snapshot.ts';
import { deployment, drive, rig, route, snapshot, USER_KEY, type Rig, type Step } from './fakes.ts';

type Json = Record<string, unknown>;

const AUTH = { authorization: `Bearer ${USER_KEY}` };
const head = (path: string, extra: Record<string, string> = {}): Step => ({
  phase: 'request_headers',
  headers: { ':method': 'POST', ':path': path, 'content-type': 'application/json', ...AUTH, ...extra },
});
const CHAT = head('/v1/chat/completions');
const COMPLETIONS = head('/v1/completions');
const MESSAGES = head('/v1/messages', { 'anthropic-version': '2023-06-01' });
const COUNT_TOKENS = head('/v1/messages/count_tokens', { 'anthropic-version': '2023-06-01' });
const body = (json: Json): Step => ({ phase: 'request_body', body: JSON.stringify(json) });

const transforms = (t: Partial<RequestTransforms>): RequestTransforms => ({ defaults: {}, forced: {}, systemPrefix: null, ...t });

/** `gpt` (chat, completions, embeddings) on an OpenAI deployment, `claude` (messages, count_tokens) on an Anthropic one, both with `t`. */
function transformRig(t: RequestTransforms, over: { maxBodyBytes?: number } = {}): Rig {
  return rig({
    families: [anthropicFamily, openAIFamily],
    translators: TRANSLATORS,
    ...over,
    snapshot: snapshot([
      route('gpt', ['chat', 'completions', 'embeddings'], [deployment('c1', 'up-gpt')], new Map(), t),
      route('claude', ['messages', 'count_tokens'], [deployment('c-anth', 'up-claude', { provider: 'anthropic' })], new Map(), t),
    ]),
  });
}

/** OpenAI chat clients on an Anthropic deployment and Anthropic clients on an OpenAI one, with `t`. */
function translatingRig(t: RequestTransforms): Rig {
  return rig({
    families: [anthropicFamily, openAIFamily],
    translators: TRANSLATORS,
    snapshot: snapshot([
      route('claude', ['chat'], [deployment('c-anth', 'up-claude', { provider: 'anthropic' })], new Map(), t),
      route('gpt', ['messages'], [deployment('c-oai', 'up-gpt')], new Map(), t),
    ]),
  });
}

function sent(r: PhaseResult | undefined): { body: Json; headers: Map<string, string> } {
  assert.equal(r?.kind, 'continue', `expected continue, got ${r?.kind === 'respond' ? r.body.toString() : String(r?.kind)}`);
  if (r?.kind !== 'continue') throw new Error('unreachable');
  return { body: JSON.parse(r.body?.toString() ?? '{}') as Json, headers: new Map(r.headers?.set ?? []) };
}

/** Ends the request with an upstream 200 (in the deployment's API) so its record is written. */
async function complete(g: Rig, steps: readonly Step[], answer: Json): Promise<{ upstream: Json; headers: Map<string, string> }> {
  const { results } = await drive(g.processor, [
    ...steps,
    { phase: 'response_headers', headers: { ':status': '200', 'content-type': 'application/json' } },
    { phase: 'response_body', chunk: JSON.stringify(answer), endOfStream: true },
  ]);
  const s = sent(results[1]);
  return { upstream: s.body, headers: s.headers };
}

const OPENAI_ANSWER = {
  id: 'c1',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
};
const ANTHROPIC_ANSWER = {
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'up-claude',
  content: [{ type: 'text', text: 'ok' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 5, output_tokens: 1 },
};

function record(g: Rig): NonNullable<Rig['audit']['records'][number]> {
  assert.equal(g.audit.records.length, 1, 'one audit record');
  return g.audit.records[0] as NonNullable<Rig['audit']['records'][number]>;
}

// ── OpenAI chat ─────────────────────────────────────────────────────────────

test('chat: defaults fill what the client left out (absent or null) and keep what it sent; forced values replace the client’s', async () => {
  const g = transformRig(transforms({ defaults: { temperature: 0.2, top_p: 0.5, seed: 7 }, forced: { presence_penalty: 0.5, reasoning_effort: 'low' } }));
  const { upstream } = await complete(
    g,
    [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], temperature: 1.3, top_p: null, presence_penalty: -1, reasoning_effort: 'high' })],
    OPENAI_ANSWER,
  );
  assert.equal(upstream['model'], 'up-gpt');
  assert.equal(upstream['temperature'], 1.3, "the client's own value is kept over a default");
  assert.equal(upstream['top_p'], 0.5, 'null counts as not sent: the default applies');
  assert.equal(upstream['seed'], 7);
  assert.equal(upstream['presence_penalty'], 0.5, 'forced wins over the client');
  assert.equal(upstream['reasoning_effort'], 'low');
  assert.deepEqual(upstream['messages'], [{ role: 'user', content: 'hi' }], 'no system prefix configured: messages untouched');
  assert.deepEqual(record(g).transforms, { defaults: ['seed', 'top_p'], forced: ['presence_penalty', 'reasoning_effort'], systemPrefix: false });
});

test('chat: the system prefix becomes a first system message, or is put before an existing first system (or developer) message', async () => {
  const t = transforms({ systemPrefix: 'Be brief.' });
  const cases: Array<{ messages: unknown[]; expect: unknown[] }> = [
    {
      messages: [{ role: 'user', content: 'hi' }],
      expect: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
    },
    {
      messages: [
        { role: 'system', content: 'You help with maths.' },
        { role: 'user', content: 'hi' },
      ],
      expect: [
        { role: 'system', content: 'Be brief.\n\nYou help with maths.' },
        { role: 'user', content: 'hi' },
      ],
    },
    {
      messages: [
        { role: 'developer', content: [{ type: 'text', text: 'Use SI units.' }] },
        { role: 'user', content: 'hi' },
      ],
      expect: [
        {
          role: 'developer',
          content: [
            { type: 'text', text: 'Be brief.' },
            { type: 'text', text: 'Use SI units.' },
          ],
        },
        { role: 'user', content: 'hi' },
      ],
    },
    {
      // A system message that is not the first one is left where it is: the prefix comes first.
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'system', content: 'late' },
      ],
      expect: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
        { role: 'system', content: 'late' },
      ],
    },
  ];
  for (const c of cases) {
    const g = transformRig(t);
    const { upstream } = await complete(g, [CHAT, body({ model: 'gpt', messages: c.messages })], OPENAI_ANSWER);
    assert.deepEqual(upstream['messages'], c.expect);
    assert.deepEqual(record(g).transforms, { defaults: [], forced: [], systemPrefix: true });
  }
});

test('chat: a forced max_tokens replaces every allowance field the client sent, and is what the quota reserves', async () => {
  const t = transforms({ forced: { max_tokens: 50 } });
  const both = transformRig(t);
  const { upstream } = await complete(
    both,
    [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 4000, max_tokens: 3000 })],
    OPENAI_ANSWER,
  );
  assert.equal(upstream['max_completion_tokens'], 50, 'no allowance of the client survives');
  assert.equal(upstream['max_tokens'], 50);
  assert.equal(both.quota.admitted[0]?.maxTokens, 50, 'the quota is asked for the forced allowance, not the client’s 4000');

  const only = transformRig(t);
  const r = await complete(only, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 4000 })], OPENAI_ANSWER);
  assert.equal(r.upstream['max_completion_tokens'], 50);
  assert.equal('max_tokens' in r.upstream, false, 'the field the client did not use is not added');

  const none = transformRig(t);
  const n = await complete(none, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })], OPENAI_ANSWER);
  assert.equal(n.upstream['max_tokens'], 50);
  assert.equal(none.quota.admitted[0]?.maxTokens, 50);
  assert.deepEqual(record(none).transforms, { defaults: [], forced: ['max_tokens'], systemPrefix: false });
});

test('chat: a default max_tokens applies only when the client sent neither field; the quota reserves it', async () => {
  const t = transforms({ defaults: { max_tokens: 64 } });
  const g = transformRig(t);
  const { upstream } = await complete(g, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })], OPENAI_ANSWER);
  assert.equal(upstream['max_tokens'], 64);
  assert.equal(g.quota.admitted[0]?.maxTokens, 64);
  assert.equal(record(g).quota?.reservedTokens, (g.quota.admitted[0]?.promptTokens ?? 0) + 64);

  const client = transformRig(t);
  const c = await complete(client, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 9 })], OPENAI_ANSWER);
  assert.equal(c.upstream['max_completion_tokens'], 9);
  assert.equal('max_tokens' in c.upstream, false);
  assert.equal(client.quota.admitted[0]?.maxTokens, 9);
  assert.equal(record(client).transforms, null, 'nothing changed the body: no transforms recorded');
});

test('a plan cap below a forced max_tokens still lowers it: the quota comes after the transforms', async () => {
  const g = transformRig(transforms({ forced: { max_tokens: 500 } }));
  g.quota.ticket = { soft: { fallbackModel: null, maxTokens: 20 } };
  const { upstream } = await complete(g, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })], OPENAI_ANSWER);
  assert.equal(upstream['max_tokens'], 20);
  assert.equal(g.quota.admitted[0]?.maxTokens, 500);
});

test('the system prefix is read by the data policy: its tokens are estimated, and data in it is redacted or refused like the client’s', async () => {
  const g = transformRig(transforms({ systemPrefix: 'Card on file: CARD-4242.' }));
  const plain = transformRig(transforms({}));
  const msg = { model: 'gpt', messages: [{ role: 'user', content: 'hi' }] };
  const { upstream } = await complete(g, [CHAT, body(msg)], OPENAI_ANSWER);
  assert.deepEqual((upstream['messages'] as Json[])[0], { role: 'system', content: 'Card on file: [REDACTED:CARD].' });
  assert.deepEqual(record(g).classification.request, { card: 1 });
  assert.equal(record(g).decision.action, 'redact');
  await complete(plain, [CHAT, body(msg)], OPENAI_ANSWER);
  assert.ok((g.quota.admitted[0]?.promptTokens ?? 0) > (plain.quota.admitted[0]?.promptTokens ?? 0), 'the prefix counts in the prompt estimate');

  const refused = transformRig(transforms({ systemPrefix: 'SECRET-launchcodes' }));
  const { results } = await drive(refused.processor, [CHAT, body(msg)]);
  assert.equal(results[1]?.kind, 'respond');
  assert.equal(results[1]?.kind === 'respond' ? results[1].status : 0, 403);
  assert.equal(record(refused).decision.code, 'data_policy_denied');
});

test('the body limit holds for the transformed body (413), naming the transforms', async () => {
  const g = transformRig(transforms({ systemPrefix: 'x'.repeat(400) }), { maxBodyBytes: 400 });
  const { results } = await drive(g.processor, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })]);
  const r = results[1];
  assert.equal(r?.kind, 'respond');
  if (r?.kind !== 'respond') return;
  assert.equal(r.status, 413);
  assert.match(r.body.toString(), /With the model's request transforms the request body is \d+ bytes; the limit is 400/);
  assert.equal(g.quota.admitted.length, 0, 'refused before the quota');
});

// ── OpenAI completions and embeddings ───────────────────────────────────────

test('completions: parameters apply, the prompt is never prefixed; embeddings: nothing applies', async () => {
  const t = transforms({ defaults: { temperature: 0 }, forced: { max_tokens: 16, frequency_penalty: 1 }, systemPrefix: 'Be brief.' });
  const g = transformRig(t);
  const { upstream } = await complete(g, [COMPLETIONS, body({ model: 'gpt', prompt: 'Once upon', max_tokens: 900 })], {
    id: 'c',
    object: 'text_completion',
    choices: [{ index: 0, text: ' a time', finish_reason: 'stop' }],
  });
  assert.equal(upstream['prompt'], 'Once upon');
  assert.equal(upstream['max_tokens'], 16);
  assert.equal(upstream['temperature'], 0);
  assert.equal(upstream['frequency_penalty'], 1);
  assert.equal('reasoning_effort' in upstream, false);
  assert.deepEqual(record(g).transforms, { defaults: ['temperature'], forced: ['frequency_penalty', 'max_tokens'], systemPrefix: false });

  const e = transformRig(t);
  const emb = await complete(e, [head('/v1/embeddings'), body({ model: 'gpt', input: 'hello' })], {
    object: 'list',
    data: [{ object: 'embedding', index: 0, embedding: [0.1] }],
    usage: { prompt_tokens: 1, total_tokens: 1 },
  });
  assert.deepEqual(emb.upstream, { model: 'up-gpt', input: 'hello' });
  assert.equal(record(e).transforms, null);
});

// ── Anthropic messages ──────────────────────────────────────────────────────

test('messages: forced max_tokens and top_k, default temperature, the prefix in a string or block system, or as the system', async () => {
  const t = transforms({ defaults: { temperature: 0.3, max_tokens: 10 }, forced: { max_tokens: 40, top_k: 5 }, systemPrefix: 'Be brief.' });
  const cases: Array<{ system?: unknown; expect: unknown }> = [
    { expect: 'Be brief.' },
    { system: 'You help with maths.', expect: 'Be brief.\n\nYou help with maths.' },
    {
      system: [{ type: 'text', text: 'You help with maths.', cache_control: { type: 'ephemeral' } }],
      expect: [
        { type: 'text', text: 'Be brief.' },
        { type: 'text', text: 'You help with maths.', cache_control: { type: 'ephemeral' } },
      ],
    },
  ];
  for (const c of cases) {
    const g = transformRig(t);
    const msg = { model: 'claude', max_tokens: 4096, messages: [{ role: 'user', content: 'hi' }], ...(c.system === undefined ? {} : { system: c.system }) };
    const { upstream } = await complete(g, [MESSAGES, body(msg)], ANTHROPIC_ANSWER);
    assert.deepEqual(upstream['system'], c.expect);
    assert.equal(upstream['max_tokens'], 40, 'forced over the client’s 4096');
    assert.equal(upstream['top_k'], 5);
    assert.equal(upstream['temperature'], 0.3);
    assert.equal(g.quota.admitted[0]?.maxTokens, 40);
    assert.deepEqual(record(g).transforms, { defaults: ['temperature'], forced: ['max_tokens', 'top_k'], systemPrefix: true });
  }
});

test('count_tokens: only the system prefix applies, so the count includes it', async () => {
  const g = transformRig(transforms({ forced: { max_tokens: 40 }, systemPrefix: 'Be brief.' }));
  const { upstream } = await complete(g, [COUNT_TOKENS, body({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] })], { input_tokens: 9 });
  assert.equal(upstream['system'], 'Be brief.');
  assert.equal('max_tokens' in upstream, false);
  assert.deepEqual(record(g).transforms, { defaults: [], forced: [], systemPrefix: true });
});

// ── Translation: applied in the client's API, then translated ───────────────

test('translated OpenAI chat → Anthropic: the prefix lands in `system`, forced values in the Anthropic body', async () => {
  const g = translatingRig(transforms({ defaults: { temperature: 0.5 }, forced: { max_tokens: 33, top_p: 0.9 }, systemPrefix: 'Be brief.' }));
  const { upstream, headers } = await complete(
    g,
    [
      CHAT,
      body({
        model: 'claude',
        messages: [
          { role: 'system', content: 'Maths only.' },
          { role: 'user', content: 'hi' },
        ],
        max_tokens: 999,
      }),
    ],
    ANTHROPIC_ANSWER,
  );
  assert.equal(headers.get(':path'), '/v1/messages');
  assert.equal(upstream['system'], 'Be brief.\n\nMaths only.');
  assert.equal(upstream['max_tokens'], 33);
  assert.equal(upstream['top_p'], 0.9);
  assert.equal(upstream['temperature'], 0.5);
  assert.equal(g.quota.admitted[0]?.maxTokens, 33);
  assert.deepEqual(record(g).transforms, { defaults: ['temperature'], forced: ['max_tokens', 'top_p'], systemPrefix: true });
});

test('translated Anthropic messages → OpenAI: the prefix becomes the first system message, forced values the OpenAI body’s', async () => {
  const g = translatingRig(transforms({ forced: { max_tokens: 21, temperature: 0 }, systemPrefix: 'Be brief.' }));
  const { upstream, headers } = await complete(
    g,
    [MESSAGES, body({ model: 'gpt', max_tokens: 800, system: [{ type: 'text', text: 'Maths only.' }], messages: [{ role: 'user', content: 'hi' }] })],
    OPENAI_ANSWER,
  );
  assert.equal(headers.get(':path'), '/v1/chat/completions');
  assert.deepEqual((upstream['messages'] as Json[])[0], {
    role: 'system',
    content: [
      { type: 'text', text: 'Be brief.' },
      { type: 'text', text: 'Maths only.' },
    ],
  });
  assert.equal(upstream['max_tokens'], 21);
  assert.equal(upstream['temperature'], 0);
  assert.deepEqual(record(g).transforms, { defaults: [], forced: ['max_tokens', 'temperature'], systemPrefix: true });
});

// ── Records, tenants, ext_authz ─────────────────────────────────────────────

test('the record names what applied and never a value or the prefix; its keys stay in canonical order', async () => {
  const g = transformRig(transforms({ defaults: { temperature: 0.123456 }, systemPrefix: 'PREFIX-TEXT-never-recorded' }));
  await complete(g, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })], OPENAI_ANSWER);
  const rec = record(g);
  const text = JSON.stringify(rec);
  assert.ok(!text.includes('PREFIX-TEXT'), 'the prefix is never in the record');
  assert.ok(!text.includes('0.123456'), 'a value is never in the record');
  const keys = Object.keys(rec);
  assert.deepEqual(keys, [...keys].sort(), 'top-level keys in canonical order');
  assert.deepEqual(Object.keys(rec.transforms ?? {}), ['defaults', 'forced', 'systemPrefix']);
});

test("a tenant's override has its model's transforms; a model without transforms is untouched and recorded null", async () => {
  const t = transforms({ forced: { temperature: 0.1 } });
  const override = route('gpt', ['chat'], [deployment('c-team', 'up-team')], new Map(), t);
  const g = rig({
    snapshot: snapshot([
      route('gpt', ['chat'], [deployment('c1', 'up-gpt')], new Map([['research', override]]), t),
      route('plain', ['chat'], [deployment('c2', 'up-plain')]),
    ]),
  });
  const { upstream, headers } = await complete(g, [CHAT, body({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], temperature: 2 })], OPENAI_ANSWER);
  assert.equal(headers.get('x-gateway-target-cluster'), 'c-team');
  assert.equal(upstream['temperature'], 0.1);

  const p = rig({ snapshot: snapshot([route('plain', ['chat'], [deployment('c2', 'up-plain')])]) });
  const plain = await complete(p, [CHAT, body({ model: 'plain', messages: [{ role: 'user', content: 'hi' }], temperature: 2 })], OPENAI_ANSWER);
  assert.equal(plain.upstream['temperature'], 2);
  assert.equal(record(p).transforms, null);
});

test('ext_authz cannot rewrite a body: a request a transform would change is refused (403 transforms_unsupported), one it would not passes', async () => {
  const g = transformRig(transforms({ defaults: { temperature: 0.2 } }));
  const headers = new Map(
    Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }),
  );
  const { state } = await g.processor.requestHeaders(headers, false, NO_CONNECTION_INFO, 'ext_authz');
  const r = await g.processor.requestBody(state, Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })));
  assert.equal(r.kind, 'respond');
  if (r.kind !== 'respond') return;
  assert.equal(r.status, 403);
  assert.match(r.body.toString(), /transforms_unsupported/);
  assert.equal(record(g).decision.code, 'transforms_unsupported');

  const ok = transformRig(transforms({ defaults: { temperature: 0.2 } }));
  const s2 = await ok.processor.requestHeaders(headers, false, NO_CONNECTION_INFO, 'ext_authz');
  const r2 = await ok.processor.requestBody(
    s2.state,
    Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], temperature: 1 })),
  );
  assert.equal(r2.kind, 'continue', 'the client set the parameter itself: nothing to change');
});
