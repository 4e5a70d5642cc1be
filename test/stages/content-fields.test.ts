/**
 * Issue #13 items 1 and 3 over the real families, classifier and policy:
 * every string of a body is inspected (not only message text), a value split
 * across two texts is found as one, and where a finding cannot be redacted in
 * place the request is refused naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../../src/config/schema.ts';
import { anthropicFamily } from '../../src/families/anthropic/family.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { ApiFamily } from '../../src/pipeline/ports.ts';
import { Classifier } from '../../src/stages/classify/classifier.ts';
import { ContentGuard } from '../../src/stages/policy/content.ts';
import { Policy, type PolicySubject } from '../../src/stages/policy/policy.ts';

const guard = new ContentGuard(
  new Classifier(),
  new Policy(
    ConfigSchema.parse({
      policy: {
        version: 'fields-1',
        rules: [
          { name: 'secrets', classes: ['SECRET'], action: 'deny' },
          { name: 'cards', classes: ['PCI', 'PII'], action: 'redact' },
        ],
      },
    }).policy,
  ),
  { responses: true },
);
const who: PolicySubject = { endpoint: 'chat', model: 'm', tenant: 't', org: 'o', roles: [] };
const CARD = '4111 1111 1111 1111';
const LIMITS = { maxJsonDepth: 32 };

function parse(family: ApiFamily, endpoint: string, body: object) {
  const spec = family.endpoints.find((e) => e.name === endpoint);
  assert.ok(spec !== undefined);
  return family.parseRequest(spec, Buffer.from(JSON.stringify(body)), LIMITS);
}

/** The body as it would go upstream after inspection. */
async function inspected(family: ApiFamily, endpoint: string, body: object): Promise<string> {
  const req = parse(family, endpoint, body);
  await guard.inspectRequest(req.texts(), { ...who, endpoint });
  return JSON.stringify(req.rewrite('up', null));
}

async function refusal(family: ApiFamily, endpoint: string, body: object): Promise<string> {
  const req = parse(family, endpoint, body);
  try {
    await guard.inspectRequest(req.texts(), { ...who, endpoint });
  } catch (err) {
    assert.ok(err instanceof GatewayError && err.code === 'data_policy_denied', String(err));
    return err.message;
  }
  assert.fail('expected a data_policy_denied refusal');
}

const user = (content: unknown) => ({ role: 'user', content });

// Where a card hides in an OpenAI chat body, beyond message text: each is redacted in place.
const OPENAI_FIELDS: Array<[string, object]> = [
  ['a message name', { messages: [{ role: 'user', name: `n ${CARD}`, content: 'hi' }] }],
  [
    'assistant tool call arguments',
    {
      messages: [
        user('hi'),
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'pay', arguments: JSON.stringify({ card: CARD }) } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      ],
    },
  ],
  ['an assistant refusal', { messages: [user('hi'), { role: 'assistant', content: null, refusal: `no ${CARD}` }, user('again')] }],
  ['a tool description', { messages: [user('hi')], tools: [{ type: 'function', function: { name: 'f', description: `card ${CARD}` } }] }],
  ['the user field', { messages: [user('hi')], user: CARD }],
  ['a stop sequence', { messages: [user('hi')], stop: [CARD] }],
  ['metadata values', { messages: [user('hi')], metadata: { note: CARD }, store: true }],
  ['an unknown top-level field', { messages: [user('hi')], x_unknown: { deeper: [CARD] } }],
  ['an image URL', { messages: [user([{ type: 'image_url', image_url: { url: `https://example.com/img?c=${CARD.replaceAll(' ', '')}` } }])] }],
];

for (const [where, body] of OPENAI_FIELDS) {
  test(`OpenAI chat: a card in ${where} is redacted in place`, async () => {
    const out = await inspected(openAIFamily, 'chat', { model: 'm', ...body });
    assert.ok(!out.includes('4111'), out);
    assert.match(out, /\[REDACTED:CREDIT_CARD\]/);
  });
}

test('OpenAI completions: the suffix is inspected like the prompt', async () => {
  const out = await inspected(openAIFamily, 'completions', { model: 'm', prompt: 'p', suffix: `s ${CARD}` });
  assert.ok(!out.includes('4111'), out);
});

// Where a finding cannot be redacted without changing meaning: refused, naming the field, never the value.
const NOT_IN_PLACE: Array<[string, object, RegExp]> = [
  [
    'a tool parameter schema',
    {
      messages: [user('hi')],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', description: CARD } } } } }],
    },
    /tools\[0\]\.function\.parameters\.properties\.a\.description/,
  ],
  [
    'a schema property name',
    {
      messages: [user('hi')],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { [CARD]: { type: 'string' } } } } }],
    },
    /tools\[0\]\.function\.parameters\.properties \(the name of key 1\)/,
  ],
  [
    'a response_format JSON schema',
    { messages: [user('hi')], response_format: { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'object', description: CARD } } } },
    /response_format\.json_schema\.schema\.description/,
  ],
  [
    'the text of a data URL',
    { messages: [user([{ type: 'image_url', image_url: { url: `data:text/plain;base64,${Buffer.from(`card ${CARD}`).toString('base64')}` } }])] },
    /messages\[0\]\.content\[0\]\.image_url\.url \(data URL text\)/,
  ],
  ['a metadata key', { messages: [user('hi')], metadata: { [CARD]: 'x' }, store: true }, /metadata \(the name of key 1\)/],
];

for (const [where, body, names] of NOT_IN_PLACE) {
  test(`OpenAI chat: a card in ${where} cannot be redacted in place, so the request is refused naming the field`, async () => {
    const message = await refusal(openAIFamily, 'chat', { model: 'm', ...body });
    assert.match(message, names);
    assert.ok(!message.includes('4111'), 'the refusal never quotes the value');
  });
}

test('a binary data URL (an image) is not text: it is neither scanned nor refused', async () => {
  const png = `data:image/png;base64,${Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x34, 0x31, 0x31, 0x31]).toString('base64')}`;
  const out = await inspected(openAIFamily, 'chat', { model: 'm', messages: [user([{ type: 'image_url', image_url: { url: png } }])] });
  assert.ok(out.includes(png));
});

test('a card split across two messages reaches the model as one value: both halves are redacted', async () => {
  const out = await inspected(openAIFamily, 'chat', {
    model: 'm',
    messages: [user('my card is 4111 1111'), { role: 'assistant', content: 'go on' }, user('1111 1111')],
  });
  // The assistant turn between them is not adjacent text; two user turns back to back are.
  assert.ok(out.includes('4111'), 'not joined across an intervening turn');
  const joined = await inspected(openAIFamily, 'chat', { model: 'm', messages: [user('my card is 4111 1111 '), user('1111 1111 thanks')] });
  assert.ok(!joined.includes('4111') && !joined.includes('1111'), joined);
  assert.match(joined, /thanks/);
});

test('a card split across two content parts of one message: both parts are redacted, the text around them stays', async () => {
  const out = await inspected(openAIFamily, 'chat', {
    model: 'm',
    messages: [
      user([
        { type: 'text', text: 'pay with 4111 1111' },
        { type: 'text', text: ' 1111 1111 please' },
      ]),
    ],
  });
  assert.ok(!out.includes('1111'), out);
  assert.match(out, /pay with .*please/);
});

test('a secret split across two content parts is refused (the policy denies secrets)', async () => {
  const message = await refusal(openAIFamily, 'chat', {
    model: 'm',
    messages: [
      user([
        { type: 'text', text: 'key AKIAIOSF' },
        { type: 'text', text: 'ODNN7EXAMPLE' },
      ]),
    ],
  });
  assert.match(message, /SECRET/);
});

test('Anthropic messages: tool use input, tool definitions and unknown fields are inspected; an input schema cannot be redacted', async () => {
  const out = await inspected(anthropicFamily, 'messages', {
    model: 'm',
    max_tokens: 10,
    system: 'sys',
    messages: [
      user('hi'),
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'pay', input: { card: CARD } }] },
      user([{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }]),
    ],
    tools: [{ name: 'pay', description: `pays ${CARD}`, input_schema: { type: 'object' } }],
  });
  assert.ok(!out.includes('4111'), out);
  const message = await refusal(anthropicFamily, 'messages', {
    model: 'm',
    max_tokens: 10,
    messages: [user('hi')],
    tools: [{ name: 'pay', input_schema: { type: 'object', properties: { c: { type: 'string', enum: [CARD] } } } }],
  });
  assert.match(message, /tools\[0\]\.input_schema/);
});

test('Anthropic: a base64 text document is inspected as text and cannot be redacted in place', async () => {
  const message = await refusal(anthropicFamily, 'messages', {
    model: 'm',
    max_tokens: 10,
    messages: [user([{ type: 'document', source: { type: 'base64', media_type: 'text/plain', data: Buffer.from(`card ${CARD}`).toString('base64') } }])],
  });
  assert.match(message, /source\.data \(base64 text\)/);
});

test('responses: tool call arguments, refusals, reasoning and unknown fields of a buffered answer are redacted', async () => {
  const spec = openAIFamily.endpoints.find((e) => e.name === 'chat');
  assert.ok(spec !== undefined);
  const answer = {
    id: 'c',
    object: 'chat.completion',
    model: 'm',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: `r ${CARD}`,
          reasoning_content: `thinking about ${CARD}`,
          tool_calls: [{ id: 'x', type: 'function', function: { name: 'f', arguments: JSON.stringify({ c: CARD }) } }],
        },
        finish_reason: 'tool_calls',
      },
    ],
    x_vendor: { note: CARD },
  };
  const parsed = openAIFamily.parseResponse(spec, Buffer.from(JSON.stringify(answer)));
  assert.ok(parsed !== null);
  const inspection = await guard.inspectResponse(parsed.texts(), who);
  assert.equal(inspection.redacted, true);
  const out = parsed.serialize().toString();
  assert.ok(!out.includes('4111'), out);
  assert.equal(inspection.counts['credit_card'], 4);
});

test('a key is never read together with the value next to it: an email under an unknown field is redacted, not refused', async () => {
  const out = await inspected(openAIFamily, 'chat', {
    model: 'm',
    messages: [user('done')],
    x_extra: { note: 'jane.doe@example.com' },
    x_other: 'jane.doe@example.com',
  });
  assert.ok(!out.includes('jane.doe'), out);
  assert.match(out, /"x_extra":\{"note":"\[REDACTED:EMAIL\]"\}/);
  assert.match(out, /"x_other":"\[REDACTED:EMAIL\]"/);
});
