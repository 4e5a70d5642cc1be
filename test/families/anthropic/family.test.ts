import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { anthropicFamily, anthropicErrorType } from '../../../src/families/anthropic/family.ts';
import { ANTHROPIC_ENDPOINTS } from '../../../src/families/anthropic/endpoints.ts';
import { AnthropicStreamMeter } from '../../../src/families/anthropic/sse.ts';
import { AnthropicSseRedactor } from '../../../src/families/anthropic/sse-redact.ts';
import { GatewayError } from '../../../src/pipeline/errors.ts';
import type { RedactFn } from '../../../src/pipeline/ports.ts';

const [MESSAGES, COUNT_TOKENS] = ANTHROPIC_ENDPOINTS;
const LIMITS = { maxJsonDepth: 32 };
const body = (o: object): Buffer => Buffer.from(JSON.stringify(o));
/** The rewritten body as the upstream receives it (the strict parser's objects have no prototype). */
const plain = (o: object): unknown => JSON.parse(JSON.stringify(o));
const request = (over: object = {}): object => ({ model: 'claude-alias', max_tokens: 100, messages: [{ role: 'user', content: 'Hello' }], ...over });

function refused(fn: () => unknown, param: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof GatewayError && err.code === 'invalid_request_body' && param.test(err.message));
}

test('a Messages request: model, stream, max_tokens and the prompt length are read', () => {
  const r = anthropicFamily.parseRequest(MESSAGES, body(request({ stream: true, system: 'Be brief.' })), LIMITS);
  assert.equal(r.model, 'claude-alias');
  assert.equal(r.stream, true);
  assert.equal(r.maxTokens, 100);
  assert.equal(r.promptChars, 'Be brief.'.length + 'Hello'.length);
  assert.equal(r.clientWantsStreamUsage, true, 'Anthropic streams always carry usage: nothing is added or stripped');
});

const invalid: Array<[string, object, RegExp]> = [
  ['no max_tokens', request({ max_tokens: undefined }), /max_tokens/],
  ['max_tokens 0', request({ max_tokens: 0 }), /max_tokens/],
  ['no messages', request({ messages: [] }), /messages/],
  ['a system role inside messages', request({ messages: [{ role: 'system', content: 'x' }] }), /messages\[0\]\.role/],
  ['content neither a string nor blocks', request({ messages: [{ role: 'user', content: 42 }] }), /messages\[0\]\.content/],
  ['a block without a type', request({ messages: [{ role: 'user', content: [{ text: 'x' }] }] }), /messages\[0\]\.content\[0\]\.type/],
  ['temperature above 1', request({ temperature: 1.5 }), /temperature/],
  ['an unknown tool_choice', request({ tool_choice: { type: 'sometimes' } }), /tool_choice\.type/],
];
for (const [name, b, param] of invalid) {
  test(`refused with 400 naming the field: ${name}`, () => refused(() => anthropicFamily.parseRequest(MESSAGES, body(b), LIMITS), param));
}

test('hostile JSON is refused by the strict parser, as for OpenAI', () => {
  refused(() => anthropicFamily.parseRequest(MESSAGES, Buffer.from('{"model":"a","model":"b"}'), LIMITS), /duplicate/i);
  refused(() => anthropicFamily.parseRequest(MESSAGES, Buffer.from('{"__proto__":{}}'), LIMITS), /__proto__/);
});

test('count_tokens needs no max_tokens', () => {
  const r = anthropicFamily.parseRequest(COUNT_TOKENS, body({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), LIMITS);
  assert.equal(r.maxTokens, null);
});

test('every string the model reads is inspected, in reading order: system, string content, text blocks, tool use, tool results (not base64 image bytes)', () => {
  const r = anthropicFamily.parseRequest(
    MESSAGES,
    body(
      request({
        system: [{ type: 'text', text: 'sys' }],
        messages: [
          { role: 'user', content: 'one' },
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'two' },
              { type: 'tool_use', id: 't1', name: 'f', input: {} },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 't1', content: 'three' },
              { type: 'tool_result', tool_use_id: 't2', content: [{ type: 'text', text: 'four' }] },
            ],
          },
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
        ],
      }),
    ),
    LIMITS,
  );
  const texts = r.texts();
  // Every string, in reading order: ids and names too (the model may read them); the image's base64 bytes are not text.
  assert.deepEqual(
    texts.map((t) => [t.text, t.where]),
    [
      ['sys', 'system[0].text'],
      ['one', 'messages[0].content'],
      ['two', 'messages[1].content[0].text'],
      ['t1', 'messages[1].content[1].id'],
      ['f', 'messages[1].content[1].name'],
      ['t1', 'messages[2].content[0].tool_use_id'],
      ['three', 'messages[2].content[0].content'],
      ['t2', 'messages[2].content[1].tool_use_id'],
      ['four', 'messages[2].content[1].content[0].text'],
      ['image/png', 'messages[3].content[0].source.media_type'],
    ],
  );
  for (const t of texts) if (['sys', 'one', 'two', 'three', 'four'].includes(t.text)) t.set(`[${t.text}]`);
  const sent = plain(r.rewrite('claude-3-5-deploy', null)) as { system: Array<{ text: string }>; messages: Array<{ content: unknown }> };
  assert.equal(sent.system[0]?.text, '[sys]');
  assert.equal(sent.messages[0]?.content, '[one]');
  assert.deepEqual(sent.messages[2]?.content, [
    { type: 'tool_result', tool_use_id: 't1', content: '[three]' },
    { type: 'tool_result', tool_use_id: 't2', content: [{ type: 'text', text: '[four]' }] },
  ]);
});

test("rewrite: the deployment's model name, max_tokens no higher than the cap, everything else as sent", () => {
  const r = anthropicFamily.parseRequest(MESSAGES, body(request({ metadata: { user_id: 'u1' }, stop_sequences: ['END'] })), LIMITS);
  assert.deepEqual(plain(r.rewrite('claude-deploy', 16)), {
    ...request({ metadata: { user_id: 'u1' }, stop_sequences: ['END'] }),
    model: 'claude-deploy',
    max_tokens: 16,
  });
  assert.equal((r.rewrite('claude-deploy', 500) as { max_tokens: number }).max_tokens, 100);
});

test('a buffered message: usage counts cache reads and writes as prompt tokens; text blocks are the generated texts', () => {
  const msg = {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    content: [{ type: 'text', text: 'answer' }],
    usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 100, cache_creation_input_tokens: 7 },
  };
  const parsed = anthropicFamily.parseResponse(MESSAGES, body(msg));
  assert.deepEqual(parsed?.usage, { promptTokens: 117, completionTokens: 5, cachedPromptTokens: 100 });
  assert.deepEqual(
    parsed?.texts().map((t) => t.text),
    ['answer'],
  );
  assert.deepEqual(anthropicFamily.parseResponse(COUNT_TOKENS, body({ input_tokens: 12 }))?.usage, {
    promptTokens: 0,
    completionTokens: 0,
    cachedPromptTokens: 0,
  });
  assert.equal(anthropicFamily.parseResponse(MESSAGES, Buffer.from('<html>')), null);
});

const ev = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const textDelta = (text: string, index = 0): string => ev('content_block_delta', { index, delta: { type: 'text_delta', text } });
function stream(...texts: string[]): string {
  return (
    ev('message_start', {
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        content: [],
        model: 'm',
        usage: { input_tokens: 9, output_tokens: 1, cache_read_input_tokens: 3 },
      },
    }) +
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    ev('ping', {}) +
    texts.map((t) => textDelta(t)).join('') +
    ev('content_block_stop', { index: 0 }) +
    ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } }) +
    ev('message_stop', {})
  );
}

function cutAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

test('property: the stream meter reads the same usage and text length however the stream is cut', () => {
  const bytes = Buffer.from(stream('Hel', 'lo ', 'wörld'));
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
      const m = new AnthropicStreamMeter();
      const pieces = cutAt(bytes, cuts);
      pieces.forEach((p, i) => assert.equal(m.push(p, i === pieces.length - 1), null, 'the stream passes unchanged'));
      assert.deepEqual(m.usage, { promptTokens: 12, completionTokens: 4, cachedPromptTokens: 3 });
      assert.equal(m.contentChars, 'Hello wörld'.length);
      assert.equal(m.sawContent, true);
    }),
  );
});

test('the meter reports no usage for a stream cut before message_delta (the processor then estimates)', () => {
  const m = new AnthropicStreamMeter();
  m.push(Buffer.from(stream('abc').split('event: message_delta')[0] ?? ''), false);
  assert.equal(m.usage, null);
  assert.equal(m.contentChars, 3);
});

const redactCards: RedactFn = (text) => {
  const spans = [...text.matchAll(/\d{16}/g)].map((m) => ({ start: m.index, end: m.index + 16 }));
  return { text: text.replace(/\d{16}/g, '[REDACTED:CARD]'), spans };
};

test('property: a card split over text deltas and chunks never reaches the client; framing and the other events stay', () => {
  const bytes = Buffer.from(stream('card ', '4111', '1111', '1111', '1111', ' ok'));
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
      const r = new AnthropicSseRedactor(redactCards, 32);
      const pieces = cutAt(bytes, cuts);
      const out = pieces.map((p, i) => r.push(p, i === pieces.length - 1).toString()).join('');
      assert.ok(!out.includes('4111'));
      const events = out.split('\n\n').filter((e) => e !== '');
      for (const e of events) assert.match(e, /^event: [a-z_]+\ndata: \{.*\}$/s);
      const types = events.map((e) => /^event: ([a-z_]+)/.exec(e)?.[1]);
      assert.deepEqual(
        [types[0], types[1], types[2], ...types.slice(-3)],
        ['message_start', 'content_block_start', 'ping', 'content_block_stop', 'message_delta', 'message_stop'],
      );
      const text = events
        .filter((e) => e.startsWith('event: content_block_delta'))
        .map((e) => (JSON.parse(e.split('data: ')[1] ?? '{}') as { delta: { text: string } }).delta.text)
        .join('');
      assert.equal(text, 'card [REDACTED:CARD] ok');
    }),
  );
});

test("errors use Anthropic's envelope, with the type the status means", () => {
  assert.deepEqual(anthropicFamily.errorBody(new GatewayError('rate_limit_exceeded', 'slow down')), {
    type: 'error',
    error: { type: 'rate_limit_error', message: 'slow down' },
  });
  const cases: Array<[number, string]> = [
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [405, 'invalid_request_error'],
    [413, 'request_too_large'],
    [415, 'invalid_request_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
    [503, 'api_error'],
    [529, 'overloaded_error'],
  ];
  for (const [status, type] of cases) assert.equal(anthropicErrorType(status), type, String(status));
});

test("the model catalogue in Anthropic's shape", () => {
  const route = {
    id: 'claude-alias',
    endpoints: new Set(['messages']),
    ownedBy: 'x',
    responseModel: 'alias' as const,
    targets: [],
    cumulativeWeights: [],
    prices: [],
    overrides: new Map(),
    transforms: null,
  };
  const snap = { version: 'v', loadedAt: Date.UTC(2026, 0, 2), issuedAt: null, signedBy: null, models: new Map([['claude-alias', route]]) };
  assert.deepEqual(anthropicFamily.modelList([route], snap), {
    data: [{ type: 'model', id: 'claude-alias', display_name: 'claude-alias', created_at: '2026-01-02T00:00:00.000Z' }],
    has_more: false,
    first_id: 'claude-alias',
    last_id: 'claude-alias',
  });
});
