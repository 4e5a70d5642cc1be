import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/pipeline/errors.ts';
import { stripControlChars, validateRequest } from '../../../src/families/openai/validate.ts';
import type { ValidatedEndpoint } from '../../../src/families/openai/validate.ts';

const OPTS = { maxDepth: 64 };

function ok(endpoint: ValidatedEndpoint, body: unknown): Record<string, unknown> {
  return validateRequest(endpoint, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), OPTS);
}

function bad(endpoint: ValidatedEndpoint, body: unknown, param: string | null, message?: RegExp): GatewayError {
  try {
    ok(endpoint, body);
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    assert.equal(err.code, 'invalid_request_body');
    assert.equal(err.status, 400);
    assert.equal(err.param, param, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`accepted: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
}

const user = (content: unknown) => ({ role: 'user', content });
const chat = (extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o', messages: [user('Hello!')], ...extra });

// --- valid requests in the shapes of OpenAI's API reference -------------------

test('chat: documented request shapes pass', async (t) => {
  const bodies: unknown[] = [
    {
      model: 'gpt-4o',
      messages: [
        { role: 'developer', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hello!' },
      ],
    },
    { model: 'gpt-4o', messages: [{ role: 'system', content: 'Be brief.' }, user('Hello!')], stream: true, stream_options: { include_usage: true } },
    {
      model: 'gpt-4o',
      messages: [
        user([
          { type: 'text', text: "What's in this image?" },
          { type: 'image_url', image_url: { url: 'https://upload.wikimedia.org/x.jpg', detail: 'high' } },
          { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
        ]),
      ],
      max_tokens: 300,
    },
    {
      model: 'gpt-4o',
      messages: [
        user('What is the weather like in Boston today?'),
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_current_weather', arguments: '{"location":"Boston, MA"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_abc', content: '{"temperature": 22}' },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_current_weather',
            description: 'Get the current weather in a given location',
            parameters: {
              type: 'object',
              properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
              required: ['location'],
            },
          },
        },
      ],
      tool_choice: 'auto',
    },
    chat({
      tool_choice: { type: 'function', function: { name: 'get_current_weather' } },
      tools: [{ type: 'function', function: { name: 'get_current_weather' } }],
    }),
    chat({ logprobs: true, top_logprobs: 2 }),
    chat({
      temperature: 0,
      top_p: 1,
      n: 2,
      stop: ['\n', 'END'],
      presence_penalty: -2,
      frequency_penalty: 2,
      seed: -5,
      user: 'user-1234',
      max_completion_tokens: 100,
      logit_bias: { '50256': -100, '1': 100 },
      parallel_tool_calls: false,
    }),
    chat({ response_format: { type: 'json_object' } }),
    chat({ response_format: { type: 'json_schema', json_schema: { name: 'math_response', strict: true, schema: { type: 'object' } } } }),
    chat({ temperature: null, stop: null, stream: null, max_tokens: null, stream_options: null }),
    // Unknown fields (newer OpenAI parameters, vLLM extras) pass through.
    chat({ top_k: 40, repetition_penalty: 1.1, reasoning_effort: 'low', metadata: { a: 'b' } }),
    {
      model: 'm',
      messages: [
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }] },
        { role: 'user', content: 'x', name: 'alice' },
      ],
    },
  ];
  for (const [i, b] of bodies.entries()) {
    await t.test(`#${i + 1} ${JSON.stringify(b).slice(0, 80)}`, () => {
      const v = ok('chat', b);
      assert.equal(JSON.stringify(v), JSON.stringify(b));
    });
  }
});

test('completions and embeddings: documented shapes pass', async (t) => {
  for (const prompt of ['Say this is a test', ['a', 'b'], [1, 2, 3], [[1, 2], [3]], '']) {
    await t.test(`completions prompt ${JSON.stringify(prompt)}`, () => {
      ok('completions', { model: 'gpt-3.5-turbo-instruct', prompt, max_tokens: 7, temperature: 0, echo: true, logprobs: 5, best_of: 2, suffix: null });
    });
  }
  for (const input of ['The food was delicious', ['a', 'b'], [1, 2], [[1], [2, 3]]]) {
    await t.test(`embeddings input ${JSON.stringify(input)}`, () => {
      ok('embeddings', { model: 'text-embedding-3-small', input, encoding_format: 'float', dimensions: 256, user: 'u' });
    });
  }
  await t.test('embeddings as base64', () => {
    ok('embeddings', { model: 'm', input: 'x', encoding_format: 'base64' });
  });
});

test('the result keeps null prototypes and unknown fields', () => {
  const v = ok('chat', chat({ extra: { nested: [1] } }));
  assert.equal(Object.getPrototypeOf(v), null);
  assert.equal(Object.getPrototypeOf((v['messages'] as object[])[0]), null);
  assert.deepEqual(JSON.parse(JSON.stringify(v['extra'])), { nested: [1] });
});

// --- JSON-level rejections ------------------------------------------------------

test('JSON-level rejections carry the param of the offending member', () => {
  bad('chat', '', null, /empty/);
  bad('chat', '{"model":', 'model', /not valid JSON/);
  bad('chat', '[1,2]', null, /JSON object/);
  bad('chat', '"x"', null, /JSON object/);
  bad('chat', '{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}', 'model', /Duplicate key "model"/);
  bad('chat', '{"model":"a","messages":[{"role":"user","content":"x","content":"y"}]}', 'messages[0].content', /Duplicate/);
  bad('chat', '{"model":"a","seed":18446744073709551616,"messages":[]}', 'seed', /2\^53/);
  bad('chat', '{"model":"a","temperature":1e999}', 'temperature', /too large/);
  bad('chat', '{"model":"a","messages":[{"role":"user","content":"\\udfff"}]}', 'messages[0].content', /surrogate/);
  bad('chat', '{"model":"a","messages":[{"__proto__":{"polluted":true}}]}', 'messages[0].__proto__', /not allowed/);
  bad('chat', '{"model":"a","tools":[{"constructor":{"prototype":{"polluted":true}}}]}', 'tools[0].constructor');
  bad('chat', `{"model":"a","x":${'['.repeat(100)}${']'.repeat(100)}}`, `x${'[0]'.repeat(63)}`, /deeper than 64/);
  const utf8 = Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]);
  assert.throws(
    () => validateRequest('chat', utf8, OPTS),
    (e) => e instanceof GatewayError && e.code === 'invalid_request_body' && /UTF-8/.test(e.message),
  );
});

test('hostile prototype payloads cannot pollute Object.prototype', async (t) => {
  const payloads = [
    '{"__proto__":{"polluted":"yes"}}',
    '{"model":"m","messages":[{"role":"user","content":"x"}],"a":{"__proto__":{"polluted":"yes"}}}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"model":"m","x":{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":"yes"}}}',
  ];
  for (const p of payloads) {
    await t.test(p, () => {
      assert.throws(() => ok('chat', p), GatewayError);
    });
  }
  // Accepted bodies are null-prototype trees; spreading or stringifying them is safe.
  const v = ok('chat', chat({ polluted_not: { toString: 'x', valueOf: 1 } }));
  const copy = { ...v };
  assert.equal(JSON.stringify(copy['polluted_not']), '{"toString":"x","valueOf":1}');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).includes('polluted'), false);
});

test('depth 10 000 is refused fast without a stack overflow', () => {
  const body = Buffer.from(`{"model":"m","messages":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
  const t0 = performance.now();
  assert.throws(
    () => validateRequest('chat', body, OPTS),
    (e) => e instanceof GatewayError && /deeper than 64/.test(e.message),
  );
  assert.ok(performance.now() - t0 < 50);
});

// --- schema rejections ------------------------------------------------------------

test('chat: schema rejections name the field', () => {
  bad('chat', { messages: [user('x')] }, 'model', /required/);
  bad('chat', { model: '', messages: [user('x')] }, 'model');
  bad('chat', { model: 5, messages: [user('x')] }, 'model', /expected string, received number/);
  bad('chat', { model: 'm' }, 'messages', /required/);
  bad('chat', { model: 'm', messages: [] }, 'messages', /at least one/);
  bad('chat', { model: 'm', messages: 'hi' }, 'messages');
  bad('chat', { model: 'm', messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role', /system, developer, user, assistant or tool/);
  bad('chat', { model: 'm', messages: [{ content: 'x' }] }, 'messages[0].role');
  bad('chat', { model: 'm', messages: [user(5)] }, 'messages[0].content', /string or an array/);
  bad('chat', { model: 'm', messages: [user('a'), user([{ type: 'text' }])] }, 'messages[1].content[0].text', /required/);
  bad('chat', { model: 'm', messages: [user([{ type: 'video', url: 'x' }])] }, 'messages[0].content[0].type', /content part/);
  bad('chat', { model: 'm', messages: [user([{ type: 'image_url', image_url: {} }])] }, 'messages[0].content[0].image_url.url');
  bad('chat', { model: 'm', messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].type');
  bad('chat', { model: 'm', messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id', /required/);
  bad(
    'chat',
    { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] }] },
    'messages[0].tool_calls[0].function.arguments',
  );
  bad('chat', chat({ temperature: 2.5 }), 'temperature', /<=2/);
  bad('chat', chat({ temperature: -0.1 }), 'temperature');
  bad('chat', chat({ temperature: '1' }), 'temperature');
  bad('chat', chat({ top_p: 1.5 }), 'top_p');
  bad('chat', chat({ n: 0 }), 'n');
  bad('chat', chat({ n: 129 }), 'n');
  bad('chat', chat({ n: 1.5 }), 'n');
  bad('chat', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', /At most 4/);
  bad('chat', chat({ stop: [1] }), 'stop[0]');
  bad('chat', chat({ presence_penalty: 3 }), 'presence_penalty');
  bad('chat', chat({ frequency_penalty: -2.01 }), 'frequency_penalty');
  bad('chat', chat({ seed: 1.5 }), 'seed');
  bad('chat', chat({ user: 1 }), 'user');
  bad('chat', chat({ stream: 'yes' }), 'stream');
  bad('chat', chat({ stream_options: { include_usage: 'yes' } }), 'stream_options.include_usage');
  bad('chat', chat({ max_tokens: 0 }), 'max_tokens');
  bad('chat', chat({ max_completion_tokens: -1 }), 'max_completion_tokens');
  bad('chat', chat({ top_logprobs: 21 }), 'top_logprobs');
  bad('chat', chat({ logprobs: 1 }), 'logprobs');
  bad('chat', chat({ logit_bias: { '50256': -101 } }), 'logit_bias.50256');
  bad('chat', chat({ logit_bias: { abc: 1 } }), 'logit_bias.abc');
  bad('chat', chat({ tools: [{ type: 'function', function: { name: 'has space' } }] }), 'tools[0].function.name');
  bad('chat', chat({ tools: [{ type: 'function' }] }), 'tools[0].function');
  bad('chat', chat({ tool_choice: 'sometimes' }), 'tool_choice');
  bad('chat', chat({ response_format: { type: 'yaml' } }), 'response_format.type');
  bad('chat', chat({ response_format: { type: 'json_schema' } }), 'response_format.json_schema');
});

test('completions and embeddings: schema rejections name the field', () => {
  bad('completions', { model: 'm' }, 'prompt', /required/);
  bad('completions', { model: 'm', prompt: 5 }, 'prompt', /token ids/);
  bad('completions', { model: 'm', prompt: [] }, 'prompt');
  bad('completions', { model: 'm', prompt: [[1], []] }, 'prompt[1]');
  bad('completions', { model: 'm', prompt: [1, -2] }, 'prompt[1]');
  bad('completions', { model: 'm', prompt: 'x', best_of: 21 }, 'best_of');
  bad('completions', { model: 'm', prompt: 'x', logprobs: 6 }, 'logprobs');
  bad('completions', { model: 'm', prompt: 'x', max_tokens: 1.5 }, 'max_tokens');
  bad('embeddings', { model: 'm' }, 'input', /required/);
  bad('embeddings', { model: 'm', input: '' }, 'input', /empty/);
  bad('embeddings', { model: 'm', input: [] }, 'input');
  bad('embeddings', { model: 'm', input: ['a', ''] }, 'input[1]');
  bad('embeddings', { model: 'm', input: [[1, 2], []] }, 'input[1]');
  bad('embeddings', { model: 'm', input: new Array<string>(2049).fill('a') }, 'input');
  bad('embeddings', { model: 'm', input: 'x', encoding_format: 'int8' }, 'encoding_format');
  bad('embeddings', { model: 'm', input: 'x', dimensions: 0 }, 'dimensions');
  bad('embeddings', { model: 'm', input: 'x', dimensions: 1.5 }, 'dimensions');
  bad('embeddings', { model: 'm', input: 'x', user: null }, 'user');
  // An input of only control characters is empty once stripped.
  bad('embeddings', { model: 'm', input: '\u0001\u0002' }, 'input', /empty/);
});

// --- control characters -------------------------------------------------------------

test('stripControlChars removes C0 (but tab, LF, CR), DEL and C1', () => {
  assert.equal(stripControlChars('a\u0000b\u0007c\u001bd\u007fe\u0080f\u009fg'), 'abcdefg');
  assert.equal(stripControlChars('keep\ttab\nlf\rcr é 😀 \u00a0'), 'keep\ttab\nlf\rcr é 😀 \u00a0');
  const s = 'unchanged';
  assert.equal(stripControlChars(s), s);
});

test('control characters are stripped from message text, prompts and embedding inputs only', () => {
  const v = ok('chat', {
    model: 'm',
    messages: [
      { role: 'system', content: 'sys\u0000tem\n' },
      user([
        { type: 'text', text: 'pa\u001brt' },
        { type: 'image_url', image_url: { url: 'https://x/\u0001' } },
      ]),
      { role: 'assistant', content: null, tool_calls: [{ id: 'i\u0001', type: 'function', function: { name: 'f', arguments: '{"a":"\u0002"}' } }] },
    ],
    user: 'u\u0001',
  });
  const msgs = v['messages'] as Record<string, unknown>[];
  assert.equal(msgs[0]?.['content'], 'system\n');
  const parts = msgs[1]?.['content'] as Record<string, Record<string, unknown>>[];
  assert.equal(parts[0]?.['text'], 'part');
  assert.equal(parts[1]?.['image_url']?.['url'], 'https://x/\u0001');
  assert.equal(
    JSON.stringify(msgs[2]),
    JSON.stringify({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'i\u0001', type: 'function', function: { name: 'f', arguments: '{"a":"\u0002"}' } }],
    }),
  );
  assert.equal(v['user'], 'u\u0001');
  assert.equal(ok('completions', { model: 'm', prompt: 'a\u0085b' })['prompt'], 'ab');
  assert.deepEqual(ok('completions', { model: 'm', prompt: ['a\u0000', 'b'] })['prompt'], ['a', 'b']);
  assert.deepEqual(ok('embeddings', { model: 'm', input: ['x\u0000y', 'z'] })['input'], ['xy', 'z']);
  assert.deepEqual(ok('embeddings', { model: 'm', input: [1, 2] })['input'], [1, 2]);
});
