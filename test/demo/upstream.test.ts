import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { clearRecordedRequests, fetchRecordedRequests, startDemoUpstream } from '../../src/demo/upstream.ts';
import type { DemoUpstream } from '../../src/demo/upstream.ts';
import { countTokens } from '../../src/demo/tokens.ts';
import { waitFor } from '../helpers/wait.ts';

const PROMPT = 'Hello, world! How are you today?';
const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: PROMPT },
];
// system: You are terse . = 4; user: Hello , world ! How are you today ? = 9
const PROMPT_TOKENS = 13;

let up: DemoUpstream;
let client: OpenAI;

function openai(maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: `${up.url}/v1`, apiKey: 'test-key', maxRetries });
}

interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string | null };
}

function assertErrorShape(json: unknown, type = 'invalid_request_error'): ErrorJson {
  const body = json as ErrorJson;
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(body.error.type, type);
  return body;
}

/** Raw streaming read: resolves with the body pieces and whether the response completed. */
function rawStream(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; pieces: string[]; complete: boolean; error?: Error | undefined }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const pieces: string[] = [];
      let done = false;
      const finish = (complete: boolean, error?: Error): void => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, pieces, complete, error });
      };
      res.setEncoding('utf8');
      res.on('data', (c: string) => pieces.push(c));
      res.on('end', () => finish(true));
      res.on('error', (err) => finish(false, err));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', reject);
    req.end(data);
  });
}

before(async () => {
  up = await startDemoUpstream({ modelIds: ['demo-model', 'demo-model-large'] });
  client = openai();
});

after(async () => {
  await up.close();
});

beforeEach(() => {
  up.clearRequests();
});

void describe('models', () => {
  void test('GET /v1/models lists the configured models', async () => {
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => ({ id: m.id, object: m.object, owned_by: m.owned_by })),
      [
        { id: 'demo-model', object: 'model', owned_by: 'demo' },
        { id: 'demo-model-large', object: 'model', owned_by: 'demo' },
      ],
    );
    for (const m of page.data) assert.equal(typeof m.created, 'number');
  });

  void test('GET /v1/models/{id} retrieves a listed model; others are 404 model_not_found', async () => {
    const model = await client.models.retrieve('demo-model-large');
    assert.deepEqual({ id: model.id, object: model.object, owned_by: model.owned_by }, { id: 'demo-model-large', object: 'model', owned_by: 'demo' });
    assert.equal(typeof model.created, 'number');
    await assert.rejects(client.models.retrieve('no-such-model'), (err: unknown) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.param, 'model');
      return true;
    });
  });
});

void describe('chat completions', () => {
  void test('non-streaming reply, usage and model echo', async () => {
    const res = await client.chat.completions.create({ model: 'some-model', messages: MESSAGES });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'some-model');
    assert.match(res.id, /^chatcmpl-/);
    assert.equal(res.choices.length, 1);
    const choice = res.choices[0];
    assert.ok(choice);
    assert.equal(choice.index, 0);
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    // Demo reply to : (4) + 8 of the 9 prompt tokens = 12 (the default).
    assert.equal(choice.message.content, 'Demo reply to: Hello, world! How are you today');
    assert.deepEqual(res.usage, { prompt_tokens: PROMPT_TOKENS, completion_tokens: 12, total_tokens: PROMPT_TOKENS + 12 });
  });

  void test('is deterministic', async () => {
    const a = await client.chat.completions.create({ model: 'm', messages: MESSAGES });
    const b = await client.chat.completions.create({ model: 'm', messages: MESSAGES });
    assert.equal(a.choices[0]?.message.content, b.choices[0]?.message.content);
    assert.deepEqual(a.usage, b.usage);
  });

  void test('short prompts are padded to the word count', async () => {
    const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] });
    const content = res.choices[0]?.message.content ?? '';
    assert.equal(content, 'Demo reply to: Hi lorem ipsum dolor sit amet consectetur adipiscing');
    assert.equal(countTokens(content), 12);
    assert.equal(res.usage?.completion_tokens, 12);
  });

  void test('max_tokens cuts the reply with finish_reason "length"', async () => {
    const res = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 5 });
    assert.equal(res.choices[0]?.finish_reason, 'length');
    assert.equal(res.choices[0]?.message.content, 'Demo reply to: Hello');
    assert.equal(res.usage?.completion_tokens, 5);

    const res2 = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_completion_tokens: 3 });
    assert.equal(res2.choices[0]?.finish_reason, 'length');
    assert.equal(res2.usage?.completion_tokens, 3);

    const roomy = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 100 });
    assert.equal(roomy.choices[0]?.finish_reason, 'stop');
    assert.equal(roomy.usage?.completion_tokens, 12);
  });

  void test('content-part arrays: prompt tokens over all text parts, reply from the last user message', async () => {
    const res = await client.chat.completions.create({
      model: 'm',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be nice.' }] },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe this' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            { type: 'text', text: 'picture, please.' },
          ],
        },
        { role: 'assistant', content: 'Sure.' },
      ],
    });
    // Be nice . (3) + Describe this picture , please . (6) + Sure . (2)
    assert.equal(res.usage?.prompt_tokens, 11);
    assert.equal(res.choices[0]?.message.content, 'Demo reply to: Describe this picture, please. lorem ipsum');
  });

  void test('streaming without include_usage: per-token chunks, role first, no usage', async () => {
    const expected = await client.chat.completions.create({ model: 'm', messages: MESSAGES });
    const stream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    // 12 content chunks + the finish chunk.
    assert.equal(chunks.length, 13);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'm');
      assert.equal(c.id, chunks[0]?.id);
      assert.ok(c.usage === undefined || c.usage === null);
    }
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    assert.equal(chunks[1]?.choices[0]?.delta.role, undefined);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, expected.choices[0]?.message.content);
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
    assert.ok(chunks.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null));
  });

  void test('streaming with include_usage: final usage chunk equals the non-streaming usage', async () => {
    for (const extra of [{}, { max_tokens: 4 }]) {
      const expected = await client.chat.completions.create({ model: 'm', messages: MESSAGES, ...extra });
      const stream = await client.chat.completions.create({
        model: 'm',
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
        ...extra,
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const last = chunks.at(-1);
      assert.ok(last);
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, expected.usage);
      const finish = chunks.at(-2)?.choices[0]?.finish_reason;
      assert.equal(finish, expected.choices[0]?.finish_reason);
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      assert.equal(text, expected.choices[0]?.message.content);
    }
  });

  void test('SSE framing: one event per write, [DONE] at the end', async () => {
    const { status, pieces, complete } = await rawStream(
      `${up.url}/v1/chat/completions`,
      {
        model: 'm',
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
      },
      { 'x-demo-words': '3' },
    );
    assert.equal(status, 200);
    assert.ok(complete);
    const events = pieces.join('').split('\n\n');
    assert.equal(events.pop(), '');
    assert.equal(events.length, 3 + 1 + 1 + 1);
    assert.equal(events.at(-1), 'data: [DONE]');
    for (const e of events) assert.match(e, /^data: /);
  });
});

void describe('completions', () => {
  void test('non-streaming text_completion', async () => {
    const res = await client.completions.create({ model: 'c-model', prompt: 'Once upon a time' });
    assert.equal(res.object, 'text_completion');
    assert.equal(res.model, 'c-model');
    assert.equal(res.choices.length, 1);
    assert.equal(res.choices[0]?.text, 'Demo reply to: Once upon a time lorem ipsum dolor sit');
    assert.equal(res.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(res.usage, { prompt_tokens: 4, completion_tokens: 12, total_tokens: 16 });
  });

  void test('prompt arrays give one choice each; token arrays count one token per entry', async () => {
    const res = await client.completions.create({ model: 'm', prompt: ['First one.', 'Second'], max_tokens: 6 });
    assert.deepEqual(
      res.choices.map((c) => [c.index, c.text, c.finish_reason]),
      [
        [0, 'Demo reply to: First one', 'length'],
        [1, 'Demo reply to: Second lorem', 'length'],
      ],
    );
    assert.deepEqual(res.usage, { prompt_tokens: 4, completion_tokens: 12, total_tokens: 16 });

    const tok = await client.completions.create({ model: 'm', prompt: [101, 202, 303] });
    assert.equal(tok.usage?.prompt_tokens, 3);
    assert.equal(tok.choices[0]?.text.startsWith('Demo reply to: 101 202 303'), true);
  });

  void test('streaming, with usage equal to the non-streaming call', async () => {
    const expected = await client.completions.create({ model: 'm', prompt: PROMPT, max_tokens: 7 });
    const stream = await client.completions.create({
      model: 'm',
      prompt: PROMPT,
      max_tokens: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.length, 7 + 1 + 1);
    const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
    assert.equal(text, expected.choices[0]?.text);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'length');
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(chunks.at(-1)?.usage, expected.usage);

    const plain = await client.completions.create({ model: 'm', prompt: PROMPT, stream: true });
    let n = 0;
    for await (const chunk of plain) {
      n++;
      assert.ok(chunk.usage === undefined || chunk.usage === null);
    }
    assert.equal(n, 13);
  });
});

void describe('embeddings', () => {
  function norm(v: number[]): number {
    return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  }

  void test('float vectors: deterministic, unit length, default 16 dims, usage', async () => {
    const res = await client.embeddings.create({
      model: 'e-model',
      input: ['Hello, world!', 'Another input'],
      encoding_format: 'float',
    });
    assert.equal(res.object, 'list');
    assert.equal(res.model, 'e-model');
    assert.equal(res.data.length, 2);
    for (const [i, d] of res.data.entries()) {
      assert.equal(d.object, 'embedding');
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 16);
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
    }
    assert.notDeepEqual(res.data[0]?.embedding, res.data[1]?.embedding);
    assert.deepEqual(res.usage, { prompt_tokens: 6, total_tokens: 6 });

    const again = await client.embeddings.create({ model: 'e', input: 'Hello, world!', encoding_format: 'float' });
    assert.deepEqual(again.data[0]?.embedding, res.data[0]?.embedding);
  });

  void test('base64 is little-endian float32 of the same vector; the client default decodes it', async () => {
    const float = await client.embeddings.create({ model: 'm', input: 'abc', dimensions: 8, encoding_format: 'float' });
    const b64 = await client.embeddings.create({ model: 'm', input: 'abc', dimensions: 8, encoding_format: 'base64' });
    const raw = b64.data[0]?.embedding as unknown;
    assert.equal(typeof raw, 'string');
    const buf = Buffer.from(raw as string, 'base64');
    assert.equal(buf.length, 8 * 4);
    const decoded = Array.from({ length: 8 }, (_, i) => buf.readFloatLE(i * 4));
    assert.deepEqual(decoded, float.data[0]?.embedding);

    // No encoding_format: the openai client asks for base64 and decodes it.
    const dflt = await client.embeddings.create({ model: 'm', input: 'abc', dimensions: 8 });
    assert.deepEqual(dflt.data[0]?.embedding, float.data[0]?.embedding);
    assert.equal((up.requests.at(-1)?.body as { encoding_format?: string }).encoding_format, 'base64');
  });

  void test('token-array inputs and the dimensions parameter', async () => {
    const res = await client.embeddings.create({
      model: 'm',
      input: [
        [1, 2, 3],
        [4, 5],
      ],
      dimensions: 32,
      encoding_format: 'float',
    });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]?.embedding.length, 32);
    assert.deepEqual(res.usage, { prompt_tokens: 5, total_tokens: 5 });
  });

  void test('bad parameters are 400s naming the param', async () => {
    await assert.rejects(
      client.embeddings.create({ model: 'm', input: 'x', dimensions: 0 }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'dimensions',
    );
    await assert.rejects(client.embeddings.create({ model: 'm', input: [] }), (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'input');
  });
});

void describe('scripted headers', () => {
  void test('x-demo-status answers that status with an OpenAI error body', async (t) => {
    for (const [status, cls, type] of [
      [400, OpenAI.BadRequestError, 'invalid_request_error'],
      [401, OpenAI.AuthenticationError, 'authentication_error'],
      [429, OpenAI.RateLimitError, 'rate_limit_error'],
      [503, OpenAI.InternalServerError, 'server_error'],
    ] as const) {
      await t.test(String(status), async () => {
        await assert.rejects(
          client.chat.completions.create({ model: 'm', messages: MESSAGES }, { headers: { 'x-demo-status': String(status) } }),
          (err: unknown) => {
            assert.ok(err instanceof cls, `status ${status}`);
            assert.equal(err.status, status);
            assert.equal(err.type, type);
            assert.equal(err.code, `demo_status_${status}`);
            return true;
          },
        );
      });
    }
    const res = await fetch(`${up.url}/v1/models`, { headers: { 'x-demo-status': '502' } });
    assert.equal(res.status, 502);
    assertErrorShape(await res.json(), 'server_error');
    // Values outside 400..599 are ignored.
    const ok = await fetch(`${up.url}/v1/models`, { headers: { 'x-demo-status': '200' } });
    assert.equal(ok.status, 200);
  });

  void test('x-demo-status applies to streaming requests too', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: MESSAGES, stream: true }, { headers: { 'x-demo-status': '500' } }),
      (err: unknown) => err instanceof OpenAI.InternalServerError,
    );
  });

  void test('x-demo-delay-ms delays the response headers', async () => {
    const t0 = performance.now();
    const res = await fetch(`${up.url}/v1/models`, { headers: { 'x-demo-delay-ms': '150' } });
    const elapsed = performance.now() - t0;
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.ok(elapsed >= 140, `elapsed ${elapsed}`);
  });

  void test('x-demo-chunk-delay-ms spaces out stream chunks', async () => {
    const stream = await client.chat.completions.create(
      { model: 'm', messages: MESSAGES, stream: true },
      { headers: { 'x-demo-chunk-delay-ms': '40', 'x-demo-words': '4' } },
    );
    const times: number[] = [];
    for await (const _chunk of stream) times.push(performance.now());
    assert.equal(times.length, 5);
    const first = times[0] ?? 0;
    const last = times.at(-1) ?? 0;
    assert.ok(last - first >= 4 * 40 - 15, `spread ${last - first}`);
  });

  void test('x-demo-words sets the reply length (max_tokens still caps it)', async () => {
    const res = await client.chat.completions.create({ model: 'm', messages: MESSAGES }, { headers: { 'x-demo-words': '30' } });
    assert.equal(res.usage?.completion_tokens, 30);
    assert.equal(countTokens(res.choices[0]?.message.content ?? ''), 30);
    assert.equal(res.choices[0]?.finish_reason, 'stop');

    const capped = await client.chat.completions.create({ model: 'm', messages: MESSAGES, max_tokens: 10 }, { headers: { 'x-demo-words': '30' } });
    assert.equal(capped.usage?.completion_tokens, 10);
    assert.equal(capped.choices[0]?.finish_reason, 'length');

    const empty = await client.chat.completions.create({ model: 'm', messages: MESSAGES }, { headers: { 'x-demo-words': '0' } });
    assert.equal(empty.choices[0]?.message.content, '');
    assert.equal(empty.usage?.completion_tokens, 0);

    const emptyStream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, stream: true }, { headers: { 'x-demo-words': '0' } });
    const deltas = [];
    for await (const c of emptyStream) deltas.push(c.choices[0]?.delta);
    assert.deepEqual(deltas, [{ role: 'assistant', content: '' }, {}]);
  });

  void test('scripted values are clamped to sane bounds', async () => {
    const res = await client.completions.create({ model: 'm', prompt: 'x' }, { headers: { 'x-demo-words': '999999999' } });
    assert.equal(res.usage?.completion_tokens, 8192);
    const neg = await client.completions.create({ model: 'm', prompt: 'x' }, { headers: { 'x-demo-words': '-5', 'x-demo-delay-ms': '-100' } });
    assert.equal(neg.usage?.completion_tokens, 0);
    const junk = await client.completions.create({ model: 'm', prompt: 'x' }, { headers: { 'x-demo-words': 'lots' } });
    assert.equal(junk.usage?.completion_tokens, 12);
  });

  void test('x-demo-drop-after kills the connection mid-stream', async () => {
    const stream = await client.chat.completions.create({ model: 'm', messages: MESSAGES, stream: true }, { headers: { 'x-demo-drop-after': '3' } });
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const c of stream) got.push(c.choices[0]?.delta.content ?? '');
    });
    assert.deepEqual(got, ['Demo', ' reply', ' to']);

    const raw = await rawStream(`${up.url}/v1/completions`, { model: 'm', prompt: 'abc', stream: true }, { 'x-demo-drop-after': '2' });
    assert.equal(raw.status, 200);
    assert.equal(raw.complete, false);
    assert.equal(
      raw.pieces
        .join('')
        .split('\n\n')
        .filter((e) => e.startsWith('data: ')).length,
      2,
    );

    const none = await rawStream(`${up.url}/v1/completions`, { model: 'm', prompt: 'abc', stream: true }, { 'x-demo-drop-after': '0' });
    assert.equal(none.status, 200);
    assert.equal(none.complete, false);
    assert.equal(none.pieces.join(''), '');

    // Larger than the stream: completes normally.
    const full = await rawStream(`${up.url}/v1/completions`, { model: 'm', prompt: 'abc', stream: true }, { 'x-demo-drop-after': '1000' });
    assert.equal(full.complete, true);
    assert.ok(full.pieces.join('').endsWith('data: [DONE]\n\n'));
  });

  void test('close() returns promptly even with delayed requests in flight', async () => {
    const other = await startDemoUpstream();
    const pending = fetch(`${other.url}/v1/models`, { headers: { 'x-demo-delay-ms': '60000' } }).then(
      () => 'answered',
      () => 'failed',
    );
    await waitFor(() => other.requests.length === 1, { what: 'the delayed request to arrive' });
    const t0 = performance.now();
    await other.close();
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(await pending, 'failed');
    assert.equal(other.requests.length, 1);
  });
});

void describe('recording', () => {
  void test('records method, path, lower-case headers, parsed and raw body', async () => {
    await client.chat.completions.create({ model: 'rec-model', messages: MESSAGES }, { headers: { 'X-Custom-Thing': 'Value-1' } });
    await fetch(`${up.url}/v1/models?verbose=1`);
    assert.equal(up.requests.length, 2);
    const [chat, models] = up.requests;
    assert.ok(chat && models);
    assert.equal(chat.method, 'POST');
    assert.equal(chat.path, '/v1/chat/completions');
    assert.equal(chat.headers['x-custom-thing'], 'Value-1');
    assert.equal(chat.headers['authorization'], 'Bearer test-key');
    assert.equal(chat.headers['content-type'], 'application/json');
    for (const name of Object.keys(chat.headers)) assert.equal(name, name.toLowerCase());
    assert.deepEqual(chat.body, { model: 'rec-model', messages: MESSAGES });
    assert.deepEqual(JSON.parse(chat.rawBody.toString('utf8')), chat.body);
    assert.equal(typeof chat.receivedAt, 'number');
    assert.ok(Math.abs(chat.receivedAt - Date.now()) < 10_000);
    assert.equal(models.method, 'GET');
    assert.equal(models.path, '/v1/models?verbose=1');
    assert.equal(models.body, undefined);
    assert.equal(models.rawBody.length, 0);

    up.clearRequests();
    assert.equal(up.requests.length, 0);
  });

  void test('unparseable bodies are recorded with body undefined', async () => {
    await fetch(`${up.url}/v1/chat/completions`, { method: 'POST', body: 'not json' });
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0]?.body, undefined);
    assert.equal(up.requests[0]?.rawBody.toString(), 'not json');
  });

  void test('GET/DELETE /__demo/requests (not themselves recorded)', async () => {
    await client.completions.create({ model: 'm', prompt: 'remote' });
    const list = await fetchRecordedRequests(up.url);
    assert.equal(list.length, 1);
    assert.equal(list[0]?.path, '/v1/completions');
    assert.deepEqual(list[0]?.body, { model: 'm', prompt: 'remote' });
    assert.ok(Buffer.isBuffer(list[0]?.rawBody));
    assert.deepEqual(list[0]?.rawBody, up.requests[0]?.rawBody);

    const raw = await fetch(`${up.url}/__demo/requests`);
    assert.equal(raw.headers.get('content-type'), 'application/json');
    await raw.arrayBuffer();

    await clearRecordedRequests(up.url);
    assert.equal(up.requests.length, 0);
    assert.deepEqual(await fetchRecordedRequests(up.url), []);
  });

  void test('record: false records nothing', async () => {
    const quiet = await startDemoUpstream({ record: false });
    try {
      const c = new OpenAI({ baseURL: `${quiet.url}/v1`, apiKey: 'k', maxRetries: 0 });
      await c.chat.completions.create({ model: 'm', messages: MESSAGES });
      assert.equal(quiet.requests.length, 0);
      assert.deepEqual(await fetchRecordedRequests(quiet.url), []);
    } finally {
      await quiet.close();
    }
  });
});

void describe('errors', () => {
  void test('unknown paths and methods are 404 in OpenAI error JSON', async (t) => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/v1/unknown'],
      ['GET', '/v1/chat/completions'],
      ['DELETE', '/v1/models'],
      ['GET', '/__demo/other'],
    ] as const) {
      await t.test(`${method} ${path}`, async () => {
        const res = await fetch(`${up.url}${path}`, { method });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.headers.get('content-type'), 'application/json');
        const body = assertErrorShape(await res.json());
        assert.equal(body.error.code, 'unknown_url');
        assert.equal(body.error.param, null);
      });
    }
    await assert.rejects(
      client.post('/does-not-exist', { body: {} }),
      (err: unknown) => err instanceof OpenAI.NotFoundError && err.type === 'invalid_request_error',
    );
  });

  void test('bad JSON is 400 in OpenAI error JSON', async (t) => {
    for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) {
      for (const body of ['{"model":', '', '[1,2]']) {
        await t.test(`${path} ${JSON.stringify(body)}`, async () => {
          const res = await fetch(`${up.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          assert.equal(res.status, 400, `${path} ${body}`);
          const json = assertErrorShape(await res.json());
          assert.equal(json.error.code, 'invalid_json');
        });
      }
    }
  });

  void test('invalid requests are 400 with the offending param', async (t) => {
    const cases: Array<[string, unknown, string]> = [
      ['/v1/chat/completions', { model: 'm', messages: [] }, 'messages'],
      ['/v1/chat/completions', { model: 'm' }, 'messages'],
      ['/v1/chat/completions', { model: 'm', messages: ['hi'] }, 'messages.0'],
      ['/v1/chat/completions', { model: 'm', messages: MESSAGES, max_tokens: 0 }, 'max_tokens'],
      ['/v1/chat/completions', { model: 7, messages: MESSAGES }, 'model'],
      ['/v1/completions', { model: 'm' }, 'prompt'],
      ['/v1/completions', { model: 'm', prompt: [{}] }, 'prompt'],
      ['/v1/completions', { model: 'm', prompt: 'x', max_tokens: 1.5 }, 'max_tokens'],
      ['/v1/embeddings', { model: 'm', input: 'x', encoding_format: 'hex' }, 'encoding_format'],
    ];
    for (const [path, body, param] of cases) {
      await t.test(`${path} ${JSON.stringify(body)}`, async () => {
        const res = await fetch(`${up.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
        assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
        const json = assertErrorShape(await res.json());
        assert.equal(json.error.param, param);
      });
    }
  });

  void test('the openai client surfaces them as BadRequestError', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: [] }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'messages',
    );
  });
});
