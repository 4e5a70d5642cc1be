/**
 * What the translators produce for an Anthropic client is what the official
 * @anthropic-ai/sdk accepts: an OpenAI upstream's stream, translated in
 * arbitrary chunks and served by a local HTTP server, is read by the SDK's
 * MessageStream into the message the script describes; buffered responses
 * and error bodies parse the same way.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { openAIErrorToAnthropic } from '../../../src/families/translate/error-bodies.ts';
import { finishReasonFromAnthropic, stopReasonFromOpenAI } from '../../../src/families/translate/reasons.ts';
import { openAIChatResponseToAnthropic } from '../../../src/families/translate/response-openai-to-anthropic.ts';
import { OpenAIToAnthropicSse } from '../../../src/families/translate/stream-openai-to-anthropic.ts';
import { eventStream, json, startSdkServer, type SdkServer } from './sdk-server.ts';
import { allText, cutsArb, data, openAIStream, runChunked, scriptArb, tools } from './stream-fixtures.ts';

let server: SdkServer;
let client: Anthropic;

before(async () => {
  server = await startSdkServer();
  client = new Anthropic({ apiKey: 'test-key', baseURL: server.url, maxRetries: 0 });
});
after(() => server.close());

const PARAMS = { model: 'claude-alias', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };

test("the SDK's MessageStream reads translated OpenAI streams, whatever their chunking, into the scripted message (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      scriptArb.chain((s) => {
        const bytes = Buffer.from(openAIStream(s));
        return fc.tuple(fc.constant(s), fc.constant(bytes), cutsArb(bytes.length));
      }),
      async ([script, bytes, cuts]) => {
        server.reply(eventStream(runChunked(new OpenAIToAnthropicSse({ clientModel: 'claude-alias' }), bytes, cuts)));
        const stream = client.messages.stream(PARAMS);
        let streamedText = '';
        stream.on('text', (delta) => {
          streamedText += delta;
        });
        const message = await stream.finalMessage();
        assert.equal(server.last?.path, '/v1/messages');
        assert.equal(message.id, script.id);
        assert.equal(message.model, 'claude-alias');
        assert.equal(message.role, 'assistant');
        const text = allText(script);
        const want = [
          ...(text === '' ? [] : [{ type: 'text', text }]),
          ...tools(script).map((t) => ({ type: 'tool_use', id: t.id, name: t.name, input: t.input })),
        ];
        assert.deepEqual(
          message.content.map((b) =>
            b.type === 'text' ? { type: b.type, text: b.text } : b.type === 'tool_use' ? { type: b.type, id: b.id, name: b.name, input: b.input } : b,
          ),
          want,
        );
        assert.equal(streamedText, text);
        assert.equal(message.stop_reason, stopReasonFromOpenAI(finishReasonFromAnthropic(script.stop)));
        assert.equal(message.usage.input_tokens, script.usage.input + script.usage.cacheCreation);
        assert.equal(message.usage.cache_read_input_tokens, script.usage.cacheRead);
        assert.equal(message.usage.output_tokens, script.usage.output);
      },
    ),
    { numRuns: 60 },
  );
});

test('the SDK raises the translated error event of a stream as an APIError of the mapped type', async () => {
  const upstream = Buffer.from(
    data({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'a' }, finish_reason: null }] }) +
      data({ error: { message: 'Rate limited upstream', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }),
  );
  server.reply(eventStream([new OpenAIToAnthropicSse({ clientModel: 'claude-alias' }).push(upstream, true)]));
  await assert.rejects(client.messages.stream(PARAMS).finalMessage(), (err: unknown) => {
    assert.ok(err instanceof Anthropic.APIError);
    assert.equal(err.type, 'rate_limit_error');
    assert.match(err.message, /Rate limited upstream/);
    return true;
  });
});

test('the SDK reads a translated buffered response as its Message', async () => {
  const upstream = {
    id: 'chatcmpl-9',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-upstream',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Sure.',
          refusal: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"x":[1,2]}' } }],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57, prompt_tokens_details: { cached_tokens: 40 } },
  };
  server.reply(json(200, openAIChatResponseToAnthropic(upstream, 'claude-alias')));
  const message = await client.messages.create(PARAMS);
  assert.deepEqual(message.content, [
    { type: 'text', text: 'Sure.' },
    { type: 'tool_use', id: 'call_1', name: 'f', input: { x: [1, 2] } },
  ]);
  assert.equal(message.stop_reason, 'tool_use');
  assert.equal(message.model, 'claude-alias');
  assert.deepEqual(message.usage, { input_tokens: 10, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 40 });
});

for (const [status, type, code, want, cls] of [
  [400, 'invalid_request_error', null, 'invalid_request_error', Anthropic.BadRequestError],
  [401, 'invalid_request_error', 'invalid_api_key', 'authentication_error', Anthropic.AuthenticationError],
  [404, 'invalid_request_error', 'model_not_found', 'not_found_error', Anthropic.NotFoundError],
  [429, 'rate_limit_error', 'rate_limit_exceeded', 'rate_limit_error', Anthropic.RateLimitError],
  [500, 'server_error', null, 'api_error', Anthropic.InternalServerError],
] as const) {
  test(`the SDK reads a translated OpenAI ${status} ${type} error as ${cls.name} with type ${want}`, async () => {
    server.reply(json(status, openAIErrorToAnthropic(status, { error: { message: 'upstream says no', type, param: null, code } })));
    await assert.rejects(client.messages.create(PARAMS), (err: unknown) => {
      assert.ok(err instanceof cls, String(err));
      assert.equal(err.type, want);
      assert.match(err.message, /upstream says no/);
      return true;
    });
  });
}
