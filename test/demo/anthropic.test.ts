import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startDemoUpstream } from '../../src/demo/upstream.ts';
import type { DemoUpstream } from '../../src/demo/upstream.ts';
import { countTokens } from '../../src/demo/tokens.ts';

const PROMPT = 'Hello, world! How are you today?';
const SYSTEM = 'You are terse.';
// system: You are terse . = 4; user: Hello , world ! How are you today ? = 9
const INPUT_TOKENS = 13;
const REPLY = 'Demo reply to: Hello, world! How are you today';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a place',
  input_schema: {
    type: 'object' as const,
    properties: {
      location: { type: 'string' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer', minimum: 3 },
      details: { type: 'object', properties: { hourly: { type: 'boolean' } } },
    },
    required: ['location'],
  },
};
const TIME_TOOL = { name: 'get_time', description: 'Current time', input_schema: { type: 'object' as const, properties: { zone: { type: 'string' } } } };
const WEATHER_ASK = "What's the weather in Paris?";

let up: DemoUpstream;
let client: Anthropic;

function anthropic(baseURL = up.url, apiKey = 'test-key'): Anthropic {
  return new Anthropic({ baseURL, apiKey, maxRetries: 0 });
}

function base(extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}): Anthropic.MessageCreateParamsNonStreaming {
  return { model: 'claude-demo', max_tokens: 100, system: SYSTEM, messages: [{ role: 'user', content: PROMPT }], ...extra };
}

function textOf(message: Anthropic.Message): string {
  assert.equal(message.content.length, 1);
  const block = message.content[0];
  assert.ok(block?.type === 'text', `expected a text block, got ${block?.type}`);
  return block.text;
}

function toolUseOf(message: Anthropic.Message): Anthropic.ToolUseBlock {
  assert.equal(message.content.length, 1);
  const block = message.content[0];
  assert.ok(block?.type === 'tool_use', `expected a tool_use block, got ${block?.type}`);
  return block;
}

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** POST and split an SSE body strictly into `event: X\ndata: JSON` pairs (fails on anything else). */
async function rawEvents(body: unknown, headers: Record<string, string> = {}): Promise<{ res: Response; text: string; events: SseEvent[] }> {
  const res = await fetch(`${up.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'k', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(text.endsWith('\n\n'), 'the stream ends with a blank line');
  const events = text
    .slice(0, -2)
    .split('\n\n')
    .map((frame) => {
      const m = /^event: ([a-z_]+)\ndata: (\{.*\})$/.exec(frame);
      assert.ok(m, `frame is not an event/data pair: ${JSON.stringify(frame)}`);
      const data = JSON.parse(m[2] ?? '') as Record<string, unknown>;
      assert.equal(data['type'], m[1], 'data.type names the event');
      return { event: m[1] ?? '', data };
    });
  return { res, text, events };
}

async function errorJson(res: Response): Promise<{ type: string; message: string }> {
  const body = (await res.json()) as { type: string; error: { type: string; message: string } };
  assert.deepEqual(Object.keys(body), ['type', 'error']);
  assert.equal(body.type, 'error');
  assert.deepEqual(Object.keys(body.error), ['type', 'message']);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  return body.error;
}

before(async () => {
  up = await startDemoUpstream({ modelIds: ['demo-model', 'demo-model-large', 'claude-demo-3'] });
  client = anthropic();
});

after(async () => {
  await up.close();
});

beforeEach(() => {
  up.clearRequests();
});

void describe('messages', () => {
  void test('non-streaming reply: the documented shape, model echo, usage', async () => {
    const raw = await client.messages.create(base()).asResponse();
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('request-id') ?? '', /^req_/);
    const body = (await raw.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage']);
    assert.match(String(body['id']), /^msg_/);
    assert.deepEqual(
      { ...body, id: 'x' },
      {
        id: 'x',
        type: 'message',
        role: 'assistant',
        model: 'claude-demo',
        content: [{ type: 'text', text: REPLY }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: INPUT_TOKENS, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    );
    const again = await client.messages.create(base());
    assert.notEqual(again.id, body['id']);
    assert.equal(textOf(again), REPLY);
  });

  void test('same reply and token counts as the OpenAI chat endpoint for the same prompt', async () => {
    const openai = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const chat = await openai.chat.completions.create({
      model: 'm',
      max_tokens: 7,
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: PROMPT },
      ],
    });
    const message = await client.messages.create(base({ max_tokens: 7 }));
    assert.equal(textOf(message), chat.choices[0]?.message.content);
    assert.equal(message.usage.input_tokens, chat.usage?.prompt_tokens);
    assert.equal(message.usage.output_tokens, chat.usage?.completion_tokens);
    assert.equal(countTokens(textOf(message)), message.usage.output_tokens);
  });

  void test('max_tokens cuts the reply with stop_reason "max_tokens"', async () => {
    const res = await client.messages.create(base({ max_tokens: 5 }));
    assert.equal(res.stop_reason, 'max_tokens');
    assert.equal(textOf(res), 'Demo reply to: Hello');
    assert.equal(res.usage.output_tokens, 5);
  });

  void test('content blocks: system blocks, images passed through, tool results counted; reply from the last user turn', async () => {
    const res = await client.messages.create({
      model: 'm',
      max_tokens: 100,
      system: [
        { type: 'text', text: 'Be nice.' },
        { type: 'text', text: 'Really.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        { role: 'user', content: 'Look up the forecast' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'rain' } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'Sunny, 21C.' }] },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'text', text: 'Describe this' },
          ],
        },
      ],
      metadata: { user_id: 'u-1' },
      stop_sequences: ['NEVER'],
    });
    // Be nice . Really . (5) + Look up the forecast (4) + {"q":"rain"} (9) + Sunny , 21C . (4) + Describe this (2)
    assert.equal(res.usage.input_tokens, 24);
    assert.equal(countTokens('{"q":"rain"}'), 9);
    assert.equal(textOf(res), 'Demo reply to: Sunny, 21C. Describe this lorem ipsum');
    assert.equal(res.stop_reason, 'end_turn');
  });

  void test('sampling parameters, thinking and unknown fields are accepted and do not change the reply', async () => {
    const res = await fetch(`${up.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({
        ...base(),
        temperature: 0.5,
        top_p: 0.9,
        top_k: 5,
        thinking: { type: 'enabled', budget_tokens: 1024 },
        service_tier: 'auto',
        some_future_field: { x: 1 },
        messages: [
          {
            role: 'user',
            content: [
              { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'ignored' } },
              { type: 'text', text: PROMPT },
            ],
          },
        ],
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Anthropic.Message;
    assert.equal(textOf(body), REPLY);
    assert.equal(body.usage.input_tokens, INPUT_TOKENS);
  });

  void test('a final assistant turn (prefill) is accepted; the reply still answers the last user turn', async () => {
    const res = await client.messages.create({
      model: 'm',
      max_tokens: 6,
      messages: [
        { role: 'user', content: 'Pick one' },
        { role: 'assistant', content: 'The answer is (' },
      ],
    });
    assert.equal(textOf(res), 'Demo reply to: Pick one');
    assert.equal(res.usage.input_tokens, 2 + 4);
  });

  void test('stop_sequences cut the reply before the earliest match', async () => {
    const res = await client.messages.create(base({ stop_sequences: ['you', 'world'] }));
    assert.equal(res.stop_reason, 'stop_sequence');
    assert.equal(res.stop_sequence, 'world');
    assert.equal(textOf(res), 'Demo reply to: Hello, ');
    // The piece the match starts in (" world", cut to " ") was still generated and sent.
    assert.equal(res.usage.output_tokens, 7);

    const inside = await client.messages.create(base({ stop_sequences: ['orl'] }));
    assert.equal(textOf(inside), 'Demo reply to: Hello, w');
    assert.equal(inside.stop_sequence, 'orl');

    const absent = await client.messages.create(base({ stop_sequences: ['zebra'] }));
    assert.equal(absent.stop_reason, 'end_turn');
    assert.equal(absent.stop_sequence, null);
  });

  void test('scripted cache tokens are reported next to the counted input', async () => {
    const res = await client.messages.create(base(), { headers: { 'x-demo-cache-read-tokens': '1200', 'x-demo-cache-creation-tokens': '34' } });
    assert.deepEqual(res.usage, { input_tokens: INPUT_TOKENS, output_tokens: 12, cache_creation_input_tokens: 34, cache_read_input_tokens: 1200 });
  });
});

void describe('streaming', () => {
  void test('messages.stream: text deltas add up to the non-streaming reply; final usage equals it', async () => {
    for (const extra of [{}, { max_tokens: 4 }, { stop_sequences: ['you'] }]) {
      const expected = await client.messages.create(base(extra));
      const stream = client.messages.stream(base(extra), { headers: { 'x-demo-cache-read-tokens': '5' } });
      const deltas: string[] = [];
      stream.on('text', (t) => deltas.push(t));
      const final = await stream.finalMessage();
      assert.equal(deltas.length, expected.usage.output_tokens);
      assert.equal(deltas.join(''), textOf(expected));
      assert.equal(textOf(final), textOf(expected));
      assert.equal(final.stop_reason, expected.stop_reason);
      assert.equal(final.stop_sequence, expected.stop_sequence);
      assert.equal(final.model, 'claude-demo');
      assert.deepEqual(final.usage, { ...expected.usage, cache_read_input_tokens: 5 });
    }
  });

  void test('create({stream: true}): the documented event order', async () => {
    const stream = await client.messages.create({ ...base(), stream: true }, { headers: { 'x-demo-words': '3' } });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'message_start',
        'content_block_start',
        'content_block_delta',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    );
    const [start, blockStart] = events;
    assert.ok(start?.type === 'message_start' && blockStart?.type === 'content_block_start');
    assert.deepEqual(start.message.content, []);
    assert.equal(start.message.stop_reason, null);
    assert.deepEqual(start.message.usage, { input_tokens: INPUT_TOKENS, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    assert.deepEqual(blockStart, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    const delta = events.at(-2);
    assert.deepEqual(delta, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } });
  });

  void test('SSE framing: event/data pairs in the documented order, ping after the block start', async () => {
    const { res, text, events } = await rawEvents({ ...base(), stream: true }, { 'x-demo-words': '2' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.match(res.headers.get('request-id') ?? '', /^req_/);
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(events[2]?.data, { type: 'ping' });
    assert.deepEqual(events[3]?.data, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Demo' } });
    assert.deepEqual(events[5]?.data, { type: 'content_block_stop', index: 0 });
    assert.deepEqual(events[7]?.data, { type: 'message_stop' });
    const message = events[0]?.data['message'] as Record<string, unknown>;
    assert.deepEqual(Object.keys(message), ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage']);
    // No stray lines (comments, ids, retry) anywhere.
    for (const line of text.split('\n')) assert.match(line, /^(event: |data: |$)/);
  });

  void test('an empty reply still opens and closes its text block, with output_tokens 0', async () => {
    const { events } = await rawEvents({ ...base(), stream: true }, { 'x-demo-words': '0' });
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.equal(((events[0]?.data['message'] as Record<string, unknown>)['usage'] as Record<string, unknown>)['output_tokens'], 0);
    const nonStream = await client.messages.create(base(), { headers: { 'x-demo-words': '0' } });
    assert.deepEqual(nonStream.content, [{ type: 'text', text: '' }]);
    assert.equal(nonStream.usage.output_tokens, 0);
  });

  void test('message_start carries the cache counts; x-demo-delta-usage: cumulative repeats them in message_delta', async () => {
    const headers = { 'x-demo-words': '1', 'x-demo-cache-read-tokens': '40', 'x-demo-cache-creation-tokens': '2' };
    const plain = await rawEvents({ ...base(), stream: true }, headers);
    const startUsage = (plain.events[0]?.data['message'] as Record<string, unknown>)['usage'];
    assert.deepEqual(startUsage, { input_tokens: INPUT_TOKENS, output_tokens: 1, cache_creation_input_tokens: 2, cache_read_input_tokens: 40 });
    assert.deepEqual(plain.events.at(-2)?.data['usage'], { output_tokens: 1 });

    const cumulative = await rawEvents({ ...base(), stream: true }, { ...headers, 'x-demo-delta-usage': 'cumulative' });
    assert.deepEqual(cumulative.events.at(-2)?.data['usage'], {
      input_tokens: INPUT_TOKENS,
      cache_creation_input_tokens: 2,
      cache_read_input_tokens: 40,
      output_tokens: 1,
    });
    // The SDK overwrites (never adds) the cumulative counts: the totals are unchanged.
    const final = await client.messages.stream(base(), { headers: { ...headers, 'x-demo-delta-usage': 'cumulative' } }).finalMessage();
    assert.deepEqual(final.usage, { input_tokens: INPUT_TOKENS, output_tokens: 1, cache_creation_input_tokens: 2, cache_read_input_tokens: 40 });
  });
});

void describe('tool use', () => {
  void test('the word "weather" calls the first tool with a schema-derived input', async () => {
    const res = await client.messages.create({
      model: 'm',
      max_tokens: 100,
      tools: [WEATHER_TOOL, TIME_TOOL],
      messages: [{ role: 'user', content: WEATHER_ASK }],
    });
    assert.equal(res.stop_reason, 'tool_use');
    assert.equal(res.stop_sequence, null);
    const call = toolUseOf(res);
    assert.match(call.id, /^toolu_/);
    assert.equal(call.name, 'get_weather');
    const input = { location: WEATHER_ASK, unit: 'celsius', days: 3, details: { hourly: true } };
    assert.deepEqual(call.input, input);
    assert.equal(res.usage.output_tokens, countTokens(JSON.stringify(input)));

    const again = await client.messages.create({
      model: 'm',
      max_tokens: 100,
      tools: [WEATHER_TOOL, TIME_TOOL],
      messages: [{ role: 'user', content: WEATHER_ASK }],
    });
    assert.deepEqual(toolUseOf(again).input, input);
    assert.notEqual(toolUseOf(again).id, call.id);
  });

  void test('no trigger, or no tools: a text reply', async () => {
    const plain = await client.messages.create({ model: 'm', max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'Tell me a joke' }] });
    assert.equal(plain.stop_reason, 'end_turn');
    textOf(plain);
    const noTools = await client.messages.create({ model: 'm', max_tokens: 100, messages: [{ role: 'user', content: WEATHER_ASK }] });
    assert.equal(noTools.stop_reason, 'end_turn');
    textOf(noTools);
    const headerNoTools = await client.messages.create(base(), { headers: { 'x-demo-tool': 'get_time' } });
    assert.equal(headerNoTools.stop_reason, 'end_turn');
  });

  void test('x-demo-tool names the tool to call', async () => {
    const res = await client.messages.create(
      { model: 'm', max_tokens: 100, tools: [WEATHER_TOOL, TIME_TOOL], messages: [{ role: 'user', content: 'What time is it in Tokyo?' }] },
      { headers: { 'x-demo-tool': 'get_time' } },
    );
    assert.equal(res.stop_reason, 'tool_use');
    assert.deepEqual(toolUseOf(res).name, 'get_time');
    assert.deepEqual(toolUseOf(res).input, { zone: 'What time is it in Tokyo?' });
  });

  void test('tool_choice: "tool" and "any" force a call, "none" forbids one', async () => {
    const ask = { model: 'm', max_tokens: 100, tools: [WEATHER_TOOL, TIME_TOOL], messages: [{ role: 'user' as const, content: 'Hi' }] };
    const forced = await client.messages.create({ ...ask, tool_choice: { type: 'tool', name: 'get_time' } });
    assert.equal(toolUseOf(forced).name, 'get_time');
    const any = await client.messages.create({ ...ask, tool_choice: { type: 'any' } });
    assert.equal(toolUseOf(any).name, 'get_weather');
    const none = await client.messages.create({ ...ask, messages: [{ role: 'user', content: WEATHER_ASK }], tool_choice: { type: 'none' } });
    assert.equal(none.stop_reason, 'end_turn');
  });

  void test('answering with a tool_result gets a text reply, not another call', async () => {
    const first = await client.messages.create({ model: 'm', max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: WEATHER_ASK }] });
    const call = toolUseOf(first);
    const second = await client.messages.create(
      {
        model: 'm',
        max_tokens: 100,
        tools: [WEATHER_TOOL],
        messages: [
          { role: 'user', content: WEATHER_ASK },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Sunny and 21 degrees, weather is fine' }] },
        ],
      },
      { headers: { 'x-demo-tool': 'get_weather' } },
    );
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(textOf(second), 'Demo reply to: Sunny and 21 degrees, weather is fine');
  });

  void test('streaming: a tool_use block filled by input_json_delta fragments', async () => {
    const body = { model: 'm', max_tokens: 100, tools: [WEATHER_TOOL], messages: [{ role: 'user' as const, content: WEATHER_ASK }] };
    const expected = await client.messages.create(body);
    const { events } = await rawEvents({ ...body, stream: true });
    assert.deepEqual(
      events.map((e) => e.event).filter((e) => e !== 'content_block_delta'),
      ['message_start', 'content_block_start', 'ping', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    const block = events[1]?.data['content_block'] as Record<string, unknown>;
    assert.deepEqual({ ...block, id: 'x' }, { type: 'tool_use', id: 'x', name: 'get_weather', input: {} });
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data['delta'] as { type: string; partial_json: string });
    assert.ok(deltas.length > 2);
    assert.ok(deltas.every((d) => d.type === 'input_json_delta'));
    assert.equal(deltas[0]?.partial_json, '');
    assert.deepEqual(JSON.parse(deltas.map((d) => d.partial_json).join('')), toolUseOf(expected).input);
    assert.deepEqual(events.at(-2)?.data['delta'], { stop_reason: 'tool_use', stop_sequence: null });

    const stream = client.messages.stream(body);
    const partials: string[] = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const final = await stream.finalMessage();
    assert.deepEqual(toolUseOf(final).input, toolUseOf(expected).input);
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.usage, expected.usage);
    assert.equal(partials.join(''), JSON.stringify(toolUseOf(expected).input));
  });
});

void describe('count_tokens', () => {
  void test('counts system + messages text with the same rule as usage.input_tokens', async () => {
    const { max_tokens: _unused, ...body } = base();
    assert.deepEqual(await client.messages.countTokens(body), { input_tokens: INPUT_TOKENS });
    const withTools = await client.messages.countTokens({
      model: 'm',
      tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'One two' }] },
        { role: 'assistant', content: 'three' },
      ],
    });
    assert.deepEqual(withTools, { input_tokens: 3 });
    const created = await client.messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'a, b; c!' }] });
    assert.equal(
      (await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'a, b; c!' }] })).input_tokens,
      created.usage.input_tokens,
    );
    assert.equal(up.requests.at(-1)?.path, '/v1/messages/count_tokens');
  });

  void test('validates like /v1/messages (but needs no max_tokens)', async () => {
    await assert.rejects(
      client.messages.countTokens({ model: 'm', messages: [] }),
      (err: unknown) => err instanceof Anthropic.BadRequestError && err.type === 'invalid_request_error',
    );
  });
});

void describe('models', () => {
  void test('with anthropic-version: the Anthropic list and retrieve shapes', async () => {
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => ({ ...m })),
      [
        { type: 'model', id: 'demo-model', display_name: 'Demo Model', created_at: '2023-11-14T22:13:20Z' },
        { type: 'model', id: 'demo-model-large', display_name: 'Demo Model Large', created_at: '2023-11-14T22:13:20Z' },
        { type: 'model', id: 'claude-demo-3', display_name: 'Claude Demo 3', created_at: '2023-11-14T22:13:20Z' },
      ],
    );
    for (const m of page.data) assert.equal(new Date(m.created_at).toISOString().replace('.000Z', 'Z'), m.created_at);
    assert.equal(up.requests.at(-1)?.headers['anthropic-version'] !== undefined, true);
    const raw = (await (await fetch(`${up.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw), ['data', 'has_more', 'first_id', 'last_id']);
    assert.deepEqual([raw['has_more'], raw['first_id'], raw['last_id']], [false, 'demo-model', 'claude-demo-3']);

    const one = await client.models.retrieve('demo-model-large');
    assert.deepEqual({ ...one }, { type: 'model', id: 'demo-model-large', display_name: 'Demo Model Large', created_at: '2023-11-14T22:13:20Z' });
    await assert.rejects(client.models.retrieve('nope'), (err: unknown) => err instanceof Anthropic.NotFoundError && err.type === 'not_found_error');
  });

  void test('pagination: limit, after_id, before_id; the SDK follows has_more', async () => {
    const first = await client.models.list({ limit: 2 });
    assert.deepEqual(
      first.data.map((m) => m.id),
      ['demo-model', 'demo-model-large'],
    );
    assert.equal(first.has_more, true);
    assert.equal(first.last_id, 'demo-model-large');
    const rest = await client.models.list({ limit: 2, after_id: 'demo-model-large' });
    assert.deepEqual(
      rest.data.map((m) => m.id),
      ['claude-demo-3'],
    );
    assert.equal(rest.has_more, false);
    const back = await client.models.list({ limit: 1, before_id: 'claude-demo-3' });
    assert.deepEqual(
      back.data.map((m) => m.id),
      ['demo-model-large'],
    );
    assert.equal(back.has_more, true);
    const all: string[] = [];
    for await (const m of client.models.list({ limit: 1 })) all.push(m.id);
    assert.deepEqual(all, ['demo-model', 'demo-model-large', 'claude-demo-3']);
    await assert.rejects(client.models.list({ limit: 0 }), (err: unknown) => err instanceof Anthropic.BadRequestError);
  });

  void test('without anthropic-version: the OpenAI list shape is unchanged', async () => {
    const res = await fetch(`${up.url}/v1/models`);
    const body = (await res.json()) as { object: string; data: Array<Record<string, unknown>> };
    assert.equal(body.object, 'list');
    assert.deepEqual(body.data[0], { id: 'demo-model', object: 'model', created: 1_700_000_000, owned_by: 'demo' });
  });
});

void describe('errors', () => {
  void test('x-demo-status answers in the Anthropic envelope; the SDK raises the matching class', async (t) => {
    for (const [status, cls, type] of [
      [400, Anthropic.BadRequestError, 'invalid_request_error'],
      [401, Anthropic.AuthenticationError, 'authentication_error'],
      [403, Anthropic.PermissionDeniedError, 'permission_error'],
      [404, Anthropic.NotFoundError, 'not_found_error'],
      [429, Anthropic.RateLimitError, 'rate_limit_error'],
      [500, Anthropic.InternalServerError, 'api_error'],
      [503, Anthropic.InternalServerError, 'api_error'],
      [529, Anthropic.OverloadedError, 'overloaded_error'],
    ] as const) {
      await t.test(String(status), async () => {
        await assert.rejects(client.messages.create(base(), { headers: { 'x-demo-status': String(status) } }), (err: unknown) => {
          assert.ok(err instanceof cls, `status ${status}: ${String(err)}`);
          assert.equal(err.status, status);
          assert.equal(err.type, type);
          assert.match(err.requestID ?? '', /^req_/);
          return true;
        });
        const res = await fetch(`${up.url}/v1/messages`, { method: 'POST', headers: { 'x-demo-status': String(status) }, body: '{}' });
        assert.equal(res.status, status);
        assert.equal(res.headers.get('content-type'), 'application/json');
        assert.equal((await errorJson(res)).type, type);
      });
    }
  });

  void test('x-demo-status applies to streams, count_tokens and the Anthropic models list', async () => {
    await assert.rejects(
      client.messages.stream(base(), { headers: { 'x-demo-status': '529' } }).finalMessage(),
      (err: unknown) => err instanceof Anthropic.OverloadedError,
    );
    await assert.rejects(
      client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-demo-status': '429' } }),
      (err: unknown) => err instanceof Anthropic.RateLimitError,
    );
    await assert.rejects(client.models.list({}, { headers: { 'x-demo-status': '503' } }), (err: unknown) => err instanceof Anthropic.InternalServerError);
  });

  void test('invalid requests are 400 invalid_request_error naming the field', async (t) => {
    const user = { role: 'user', content: 'hi' };
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing max_tokens', { model: 'm', messages: [user] }, /^max_tokens: Field required/],
      ['zero max_tokens', { model: 'm', max_tokens: 0, messages: [user] }, /^max_tokens: /],
      ['missing model', { max_tokens: 5, messages: [user] }, /^model: Field required/],
      ['no messages', { model: 'm', max_tokens: 5, messages: [] }, /^messages: /],
      ['bad role', { model: 'm', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] }, /^messages\.0\.role: /],
      ['missing content', { model: 'm', max_tokens: 5, messages: [{ role: 'user' }] }, /^messages\.0\.content: Field required/],
      ['empty user content', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [] }] }, /^messages\.0\.content: /],
      ['content not string or list', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 7 }] }, /^messages\.0\.content: /],
      ['text block without text', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'text' }] }] }, /^messages\.0\.content\.0\.text: /],
      ['image without source', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image' }] }] }, /^messages\.0\.content\.0\.source: /],
      [
        'tool_use in a user turn',
        { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 't', name: 'n', input: {} }] }] },
        /^messages\.0\.content\.0: tool_use/,
      ],
      [
        'tool_result in an assistant turn',
        { model: 'm', max_tokens: 5, messages: [user, { role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 't' }] }] },
        /^messages\.1\.content\.0: tool_result/,
      ],
      ['system not text', { model: 'm', max_tokens: 5, system: [{ type: 'image' }], messages: [user] }, /^system\.0: /],
      ['stop_sequences not strings', { model: 'm', max_tokens: 5, stop_sequences: [1], messages: [user] }, /^stop_sequences: /],
      ['temperature out of range', { model: 'm', max_tokens: 5, temperature: 1.5, messages: [user] }, /^temperature: /],
      ['metadata not an object', { model: 'm', max_tokens: 5, metadata: 'x', messages: [user] }, /^metadata: /],
      ['tool without input_schema', { model: 'm', max_tokens: 5, tools: [{ name: 'x' }], messages: [user] }, /^tools\.0\.input_schema: /],
      ['duplicate tool names', { model: 'm', max_tokens: 5, tools: [TIME_TOOL, TIME_TOOL], messages: [user] }, /^tools: /],
      [
        'tool_choice names no tool',
        { model: 'm', max_tokens: 5, tools: [TIME_TOOL], tool_choice: { type: 'tool', name: 'x' }, messages: [user] },
        /^tool_choice\.name: /,
      ],
      ['tool_choice any without tools', { model: 'm', max_tokens: 5, tool_choice: { type: 'any' }, messages: [user] }, /^tool_choice: /],
      ['stream not boolean', { model: 'm', max_tokens: 5, stream: 'yes', messages: [user] }, /^stream: /],
    ];
    for (const [name, body, message] of cases) {
      await t.test(name, async () => {
        const res = await fetch(`${up.url}/v1/messages`, { method: 'POST', body: JSON.stringify(body) });
        assert.equal(res.status, 400, name);
        const error = await errorJson(res);
        assert.equal(error.type, 'invalid_request_error');
        assert.match(error.message, message);
      });
    }
  });

  void test('bad JSON and non-object bodies are 400 in the Anthropic envelope', async () => {
    for (const body of ['{"model":', '', '[1,2]']) {
      const res = await fetch(`${up.url}/v1/messages`, { method: 'POST', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await errorJson(res)).type, 'invalid_request_error');
    }
  });

  void test('the SDK surfaces validation failures as BadRequestError', async () => {
    await assert.rejects(
      client.messages.create({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'any' } }),
      (err: unknown) => err instanceof Anthropic.BadRequestError && err.type === 'invalid_request_error' && /tool_choice/.test(err.message),
    );
  });

  void test('unknown Anthropic paths are 404 not_found_error; OpenAI paths keep their own errors', async () => {
    for (const [method, path, headers] of [
      ['POST', '/v1/messages/batches', {}],
      ['GET', '/v1/messages', {}],
      ['GET', '/v1/nothing', { 'anthropic-version': '2023-06-01' }],
    ] as const) {
      const res = await fetch(`${up.url}${path}`, { method, headers });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal((await errorJson(res)).type, 'not_found_error');
    }
    const openai = await fetch(`${up.url}/v1/chat/completions`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body: '{"model":' });
    assert.equal(openai.status, 400);
    const body = (await openai.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'invalid_json');
  });
});

void describe('credentials', () => {
  void test('records the credential headers as received: the SDK sends Authorization: Bearer, the gateway x-api-key', async () => {
    await anthropic(up.url, 'sk-ant-recorded').messages.create(base());
    const sdk = up.requests.at(-1);
    assert.equal(sdk?.path, '/v1/messages');
    assert.equal(sdk?.headers['authorization'], 'Bearer sk-ant-recorded');
    assert.equal(sdk?.headers['x-api-key'], undefined);
    assert.equal(typeof sdk?.headers['anthropic-version'], 'string');

    const injected = await fetch(`${up.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-injected', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(base()),
    });
    assert.equal(injected.status, 200);
    await injected.arrayBuffer();
    assert.equal(up.requests.at(-1)?.headers['x-api-key'], 'sk-ant-injected');
    assert.equal(up.requests.at(-1)?.headers['anthropic-version'], '2023-06-01');
  });

  void test('requireAnthropicKey: a wrong or missing key is a 401 authentication_error', async () => {
    const locked = await startDemoUpstream({ requireAnthropicKey: 'sk-ant-right' });
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${locked.url}/v1/messages`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01', ...headers }, body: JSON.stringify(base()) });
    try {
      await assert.rejects(
        anthropic(locked.url, 'sk-ant-wrong').messages.create(base()),
        (err: unknown) => err instanceof Anthropic.AuthenticationError && err.type === 'authentication_error',
      );
      // Before any scripting: the 401 wins over x-demo-status.
      await assert.rejects(
        anthropic(locked.url, 'sk-ant-wrong').messages.create(base(), { headers: { 'x-demo-status': '429' } }),
        (err: unknown) => err instanceof Anthropic.AuthenticationError,
      );
      await assert.rejects(anthropic(locked.url, 'sk-ant-wrong').models.list(), (err: unknown) => err instanceof Anthropic.AuthenticationError);

      const missing = await post({});
      assert.equal(missing.status, 401);
      assert.match((await errorJson(missing)).message, /x-api-key/);
      const wrongKey = await post({ 'x-api-key': 'sk-ant-wrong' });
      assert.equal(wrongKey.status, 401);
      assert.equal((await errorJson(wrongKey)).type, 'authentication_error');
      // x-api-key, when present, decides: a right Bearer does not rescue a wrong x-api-key.
      const mixed = await post({ 'x-api-key': 'sk-ant-wrong', authorization: 'Bearer sk-ant-right' });
      assert.equal(mixed.status, 401);
      await mixed.arrayBuffer();

      const viaHeader = await post({ 'x-api-key': 'sk-ant-right' });
      assert.equal(viaHeader.status, 200);
      await viaHeader.arrayBuffer();
      const viaSdk = await anthropic(locked.url, 'sk-ant-right').messages.create(base());
      assert.equal(textOf(viaSdk), REPLY);

      // The OpenAI side does not check credentials.
      const chat = await fetch(`${locked.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(chat.status, 200);
      await chat.arrayBuffer();
    } finally {
      await locked.close();
    }
  });
});

void describe('scripted headers on /v1/messages', () => {
  void test('x-demo-words sets the reply length (max_tokens still caps it)', async () => {
    const long = await client.messages.create(base(), { headers: { 'x-demo-words': '30' } });
    assert.equal(long.usage.output_tokens, 30);
    assert.equal(countTokens(textOf(long)), 30);
    assert.equal(long.stop_reason, 'end_turn');
    const capped = await client.messages.create(base({ max_tokens: 10 }), { headers: { 'x-demo-words': '30' } });
    assert.equal(capped.usage.output_tokens, 10);
    assert.equal(capped.stop_reason, 'max_tokens');
  });

  void test('x-demo-reply answers exactly that text, one word per delta', async () => {
    const reply = 'Call 555-0100, ok?';
    const headers = { 'x-demo-reply': encodeURIComponent(reply) };
    const res = await client.messages.create(base(), { headers });
    assert.equal(textOf(res), reply);
    assert.equal(res.usage.output_tokens, 3);
    const deltas: string[] = [];
    const stream = client.messages.stream(base(), { headers });
    stream.on('text', (t) => deltas.push(t));
    await stream.finalMessage();
    assert.deepEqual(deltas, ['Call', ' 555-0100,', ' ok?']);
  });

  void test('x-demo-delay-ms delays the response headers', async () => {
    const t0 = performance.now();
    await client.messages.create(base(), { headers: { 'x-demo-delay-ms': '150' } });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 140, `elapsed ${elapsed}`);
  });

  void test('x-demo-chunk-delay-ms spaces out the SSE events', async () => {
    // 3 deltas: 9 events, so 8 pauses; client-side lag can only add to the total.
    const t0 = performance.now();
    const { events } = await rawEvents({ ...base(), stream: true }, { 'x-demo-chunk-delay-ms': '30', 'x-demo-words': '3' });
    const elapsed = performance.now() - t0;
    assert.equal(events.length, 9);
    assert.ok(elapsed >= 8 * 30 - 10, `elapsed ${elapsed}`);
  });

  void test('x-demo-drop-after kills the connection after that many events', async () => {
    const stream = client.messages.stream(base(), { headers: { 'x-demo-drop-after': '5' } });
    const deltas: string[] = [];
    stream.on('text', (t) => deltas.push(t));
    await assert.rejects(stream.finalMessage());
    // message_start, content_block_start, ping, then two deltas.
    assert.deepEqual(deltas, ['Demo', ' reply']);

    const res = await fetch(`${up.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-demo-drop-after': '2' },
      body: JSON.stringify({ ...base(), stream: true }),
    });
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });
});
