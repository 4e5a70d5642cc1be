/**
 * The evasion corpus (issue #13 item 7): generated cases across where a value
 * sits (every field kind of both API families), how it is written (Unicode
 * digits, full-width letters, invisible characters, odd separators), how it
 * is split (across messages, across content parts) and which way it goes
 * (request, buffered response, streamed response at many chunk splits). Each
 * must come out redacted (cards, emails) or refused (secrets); the near
 * misses must pass untouched. Over the real families, classifier and policy;
 * test/e2e/evasion.test.ts runs a slice of it through real Envoy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../../src/config/schema.ts';
import { anthropicFamily } from '../../src/families/anthropic/family.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { EndpointSpec } from '../../src/pipeline/endpoint.ts';
import type { ApiFamily } from '../../src/pipeline/ports.ts';
import { Classifier } from '../../src/stages/classify/classifier.ts';
import { ContentGuard } from '../../src/stages/policy/content.ts';
import { Policy, type PolicySubject } from '../../src/stages/policy/policy.ts';
import { ENCODINGS, leaks, NEAR_MISSES, SECRETS, SENSITIVE, type Sample } from './samples.ts';

const classifier = new Classifier();
const guard = new ContentGuard(
  classifier,
  new Policy(
    ConfigSchema.parse({
      policy: {
        version: 'corpus-1',
        rules: [
          { name: 'secrets', classes: ['SECRET'], action: 'deny' },
          { name: 'redact', classes: ['PCI', 'PII'], action: 'redact' },
        ],
      },
    }).policy,
  ),
  { responses: true },
);
/** Near misses must not trip the card and secret detectors (they may well be PII: a phone number is one). */
const strictGuard = new ContentGuard(
  classifier,
  new Policy(
    ConfigSchema.parse({
      policy: {
        version: 'corpus-near',
        rules: [
          { name: 'secrets', classes: ['SECRET'], action: 'deny' },
          { name: 'cards', classes: ['PCI'], action: 'redact' },
        ],
      },
    }).policy,
  ),
  { responses: true },
);
const who: PolicySubject = { endpoint: 'chat', model: 'm', tenant: 't', org: 'o', roles: [] };
const LIMITS = { maxJsonDepth: 32 };

type Outcome = { kind: 'refused'; message: string } | { kind: 'passed'; body: string };

async function request(family: ApiFamily, endpoint: string, body: object, g = guard): Promise<Outcome> {
  const spec = family.endpoints.find((e) => e.name === endpoint);
  assert.ok(spec !== undefined);
  const req = family.parseRequest(spec, Buffer.from(JSON.stringify(body)), LIMITS);
  try {
    await g.inspectRequest(req.texts(), { ...who, endpoint });
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'data_policy_denied') return { kind: 'refused', message: err.message };
    throw err;
  }
  return { kind: 'passed', body: JSON.stringify(req.rewrite('up', null)) };
}

function expectHandled(sample: Sample, outcome: Outcome, what: string): void {
  if (sample.expect === 'refused') {
    assert.equal(outcome.kind, 'refused', `${what}: expected a refusal, the request passed: ${outcome.kind === 'passed' ? outcome.body : ''}`);
    return;
  }
  if (outcome.kind === 'refused') {
    // A value the policy redacts may also be refused, where it cannot be redacted in place.
    assert.match(outcome.message, /cannot be redacted/, `${what}: refused for another reason: ${outcome.message}`);
    return;
  }
  assert.ok(!leaks(outcome.body, sample), `${what}: the value reached the model:\n${outcome.body}`);
}

// ── Where: every field kind, both families ──────────────────────────────────

type Place = readonly [name: string, family: ApiFamily, endpoint: string, build: (v: string) => object];
const user = (content: unknown) => ({ role: 'user', content });
const PLACES: readonly Place[] = [
  ['openai message content', openAIFamily, 'chat', (v) => ({ messages: [user(`here: ${v} ok`)] })],
  ['openai text part', openAIFamily, 'chat', (v) => ({ messages: [user([{ type: 'text', text: `here: ${v} ok` }])] })],
  ['openai message name', openAIFamily, 'chat', (v) => ({ messages: [{ role: 'user', name: v, content: 'hi' }] })],
  [
    'openai assistant tool call arguments',
    openAIFamily,
    'chat',
    (v) => ({
      messages: [
        user('hi'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: JSON.stringify({ x: v }) } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      ],
    }),
  ],
  ['openai tool result', openAIFamily, 'chat', (v) => ({ messages: [user('hi'), { role: 'tool', tool_call_id: 'c1', content: `result ${v}` }] })],
  ['openai refusal', openAIFamily, 'chat', (v) => ({ messages: [user('hi'), { role: 'assistant', content: null, refusal: v }, user('ok')] })],
  [
    'openai tool description',
    openAIFamily,
    'chat',
    (v) => ({ messages: [user('hi')], tools: [{ type: 'function', function: { name: 'f', description: v } }] }),
  ],
  [
    'openai tool parameter schema',
    openAIFamily,
    'chat',
    (v) => ({ messages: [user('hi')], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', description: v } } }] }),
  ],
  ['openai stop', openAIFamily, 'chat', (v) => ({ messages: [user('hi')], stop: [v] })],
  ['openai user', openAIFamily, 'chat', (v) => ({ messages: [user('hi')], user: v })],
  ['openai metadata', openAIFamily, 'chat', (v) => ({ messages: [user('hi')], store: true, metadata: { note: v } })],
  ['openai unknown field', openAIFamily, 'chat', (v) => ({ messages: [user('hi')], x_extra: { deep: [v] } })],
  [
    'openai text data URL',
    openAIFamily,
    'chat',
    (v) => ({ messages: [user([{ type: 'image_url', image_url: { url: `data:text/plain;base64,${Buffer.from(v).toString('base64')}` } }])] }),
  ],
  ['openai completions prompt', openAIFamily, 'completions', (v) => ({ prompt: `p ${v}` })],
  ['openai completions suffix', openAIFamily, 'completions', (v) => ({ prompt: 'p', suffix: v })],
  ['openai embeddings input', openAIFamily, 'embeddings', (v) => ({ input: [`e ${v}`] })],
  ['anthropic system', anthropicFamily, 'messages', (v) => ({ max_tokens: 5, system: `s ${v}`, messages: [user('hi')] })],
  ['anthropic text block', anthropicFamily, 'messages', (v) => ({ max_tokens: 5, messages: [user([{ type: 'text', text: v }])] })],
  [
    'anthropic tool use input',
    anthropicFamily,
    'messages',
    (v) => ({
      max_tokens: 5,
      messages: [
        user('hi'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: { x: v } }] },
        user([{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }]),
      ],
    }),
  ],
  [
    'anthropic tool result',
    anthropicFamily,
    'messages',
    (v) => ({
      max_tokens: 5,
      messages: [
        user('hi'),
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input: {} }] },
        user([{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: v }] }]),
      ],
    }),
  ],
  ['anthropic metadata', anthropicFamily, 'messages', (v) => ({ max_tokens: 5, metadata: { user_id: v }, messages: [user('hi')] })],
  ['anthropic stop sequence', anthropicFamily, 'messages', (v) => ({ max_tokens: 5, stop_sequences: [v], messages: [user('hi')] })],
];

const withModel = (body: object): object => ({ model: 'm', ...body });

// Every value × every place (plain), and every value × every encoding in the most common places.
for (const sample of [...SENSITIVE, ...SECRETS]) {
  test(`every place: ${sample.name}`, async () => {
    for (const [place, family, endpoint, build] of PLACES) {
      expectHandled(sample, await request(family, endpoint, withModel(build(sample.value))), `${sample.name} in ${place}`);
    }
  });
  test(`every encoding: ${sample.name}`, async () => {
    for (const enc of ENCODINGS) {
      const encoded = enc.apply(sample);
      if (encoded === null) continue;
      for (const [place, family, endpoint, build] of PLACES.slice(0, 4)) {
        expectHandled(sample, await request(family, endpoint, withModel(build(encoded))), `${sample.name} ${enc.name} in ${place}`);
      }
    }
  });
  test(`every split: ${sample.name}`, async () => {
    const cuts = [...Array(sample.value.length - 1).keys()].map((i) => i + 1);
    for (const cut of cuts) {
      const [a, b] = [sample.value.slice(0, cut), sample.value.slice(cut)];
      const across = withModel({ messages: [user(`value ${a}`), user(`${b} end`)] });
      expectHandled(sample, await request(openAIFamily, 'chat', across), `${sample.name} split at ${cut} across messages`);
      const parts = withModel({
        messages: [
          user([
            { type: 'text', text: `value ${a}` },
            { type: 'text', text: `${b} end` },
          ]),
        ],
      });
      expectHandled(sample, await request(openAIFamily, 'chat', parts), `${sample.name} split at ${cut} across parts`);
      const blocks = withModel({
        max_tokens: 5,
        messages: [
          user([
            { type: 'text', text: a },
            { type: 'text', text: b },
          ]),
        ],
      });
      expectHandled(sample, await request(anthropicFamily, 'messages', blocks), `${sample.name} split at ${cut} across Anthropic blocks`);
    }
  });
}

test('near misses pass untouched, wherever they are', async () => {
  for (const miss of NEAR_MISSES) {
    for (const [place, family, endpoint, build] of PLACES) {
      const body = withModel(build(miss));
      const out = await request(family, endpoint, body, strictGuard);
      assert.equal(out.kind, 'passed', `${miss} in ${place}: ${out.kind === 'refused' ? out.message : ''}`);
      if (out.kind === 'passed') assert.ok(!out.body.includes('[REDACTED'), `${miss} in ${place} was redacted: ${out.body}`);
    }
  }
});

// ── Responses: buffered, and streamed at many chunk splits ──────────────────

test('buffered responses: every value, plain and encoded, in content, tool call arguments and unknown fields', async () => {
  const chat = openAIFamily.endpoints.find((e) => e.name === 'chat');
  const messages = anthropicFamily.endpoints.find((e) => e.name === 'messages');
  assert.ok(chat !== undefined && messages !== undefined);
  for (const sample of [...SENSITIVE, ...SECRETS]) {
    for (const enc of [{ name: 'plain', apply: (s: Sample) => s.value }, ...ENCODINGS]) {
      const v = enc.apply(sample);
      if (v === null) continue;
      const bodies: Array<[ApiFamily, EndpointSpec, object]> = [
        [
          openAIFamily,
          chat,
          {
            id: 'x',
            object: 'chat.completion',
            model: 'm',
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: `a ${v}`,
                  tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: JSON.stringify({ v }) } }],
                },
                finish_reason: 'stop',
              },
            ],
            x_vendor: v,
          },
        ],
        [
          anthropicFamily,
          messages,
          {
            id: 'm',
            type: 'message',
            role: 'assistant',
            model: 'm',
            content: [
              { type: 'text', text: v },
              { type: 'tool_use', id: 't', name: 'f', input: { v } },
            ],
            stop_reason: 'end_turn',
            usage: { input_tokens: 1, output_tokens: 1 },
          },
        ],
      ];
      for (const [family, spec, body] of bodies) {
        const parsed = family.parseResponse(spec, Buffer.from(JSON.stringify(body)));
        assert.ok(parsed !== null);
        let outcome: Outcome;
        try {
          await guard.inspectResponse(parsed.texts(), who);
          outcome = { kind: 'passed', body: parsed.serialize().toString() };
        } catch (err) {
          assert.ok(err instanceof GatewayError);
          outcome = { kind: 'refused', message: err.message };
        }
        expectHandled(sample, outcome, `${sample.name} ${enc.name} in a ${family.name} response`);
      }
    }
  }
});

test('streamed responses: every value, plain and encoded, split over token events and cut at many byte offsets', () => {
  for (const sample of SENSITIVE) {
    for (const enc of [{ name: 'plain', apply: (s: Sample) => s.value }, ...ENCODINGS]) {
      const v = enc.apply(sample);
      if (v === null) continue;
      for (const family of [openAIFamily, anthropicFamily]) {
        const events = tokens(`The value is ${v} and that is all.`).map((t) => streamEvent(family.name, t));
        const stream = events.join('') + (family.name === 'openai' ? 'data: [DONE]\n\n' : 'event: message_stop\ndata: {"type":"message_stop"}\n\n');
        const bytes = Buffer.from(stream);
        const step = Math.max(1, Math.floor(bytes.length / 24));
        for (let cut = 0; cut <= bytes.length; cut += step) {
          const redactor = family.streamRedactor(streamRedact, 128);
          const out = redactor.push(bytes.subarray(0, cut), false).toString() + redactor.push(bytes.subarray(cut), true).toString();
          assert.ok(!leaks(textOfStream(out), sample), `${sample.name} ${enc.name} streamed (${family.name}), cut at ${cut}:\n${out}`);
        }
      }
    }
  }
});

const streamRedact = (text: string, _released: boolean) => {
  const found = classifier.scan(text);
  return { text: classifier.redact(text, found).text, spans: found.map((f) => ({ start: f.start, end: f.end })) };
};

/** Token-sized pieces, as models stream them (2-4 characters). */
function tokens(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length;) {
    const n = 2 + (i % 3);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

function streamEvent(family: string, t: string): string {
  return family === 'openai'
    ? `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: t }, finish_reason: null }] })}\n\n`
    : `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } })}\n\n`;
}

function textOfStream(sse: string): string {
  let text = '';
  for (const block of sse.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6))
      .join('\n');
    if (data === '' || data === '[DONE]') continue;
    const e = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }>; delta?: { text?: string } };
    text += e.choices?.[0]?.delta?.content ?? e.delta?.text ?? '';
  }
  return text;
}
