/**
 * What the translators produce for an OpenAI client is what the official
 * `openai` client accepts: an Anthropic upstream's stream, translated in
 * arbitrary chunks and served by a local HTTP server, is read by the
 * client's stream parser and ChatCompletionStream into the completion the
 * script describes; buffered responses and error bodies parse the same way.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import OpenAI from 'openai';
import { anthropicErrorToOpenAI } from '../../../src/families/translate/error-bodies.ts';
import { finishReasonFromAnthropic } from '../../../src/families/translate/reasons.ts';
import { anthropicResponseToOpenAIChat } from '../../../src/families/translate/response-anthropic-to-openai.ts';
import { AnthropicToOpenAISse } from '../../../src/families/translate/stream-anthropic-to-openai.ts';
import { eventStream, json, startSdkServer, type SdkServer } from './sdk-server.ts';
import { allText, anthropicStream, cutsArb, runChunked, scriptArb, sse, tools, type Script } from './stream-fixtures.ts';

let server: SdkServer;
let client: OpenAI;

before(async () => {
  server = await startSdkServer();
  client = new OpenAI({ apiKey: 'test-key', baseURL: `${server.url}/v1`, maxRetries: 0 });
});
after(() => server.close());

const PARAMS = { model: 'gpt-alias', messages: [{ role: 'user' as const, content: 'hi' }] };

function serveTranslated(script: Script, cuts: readonly number[], includeUsage: boolean): void {
  const bytes = Buffer.from(anthropicStream(script));
  server.reply(eventStream(runChunked(new AnthropicToOpenAISse({ clientModel: 'gpt-alias', includeUsage }), bytes, cuts)));
}

const scriptAndCuts = scriptArb.chain((s) => fc.tuple(fc.constant(s), cutsArb(Buffer.byteLength(anthropicStream(s)))));

test('ChatCompletionStream reads translated Anthropic streams, whatever their chunking, into the scripted completion (property)', async () => {
  await fc.assert(
    fc.asyncProperty(scriptAndCuts, async ([script, cuts]) => {
      serveTranslated(script, cuts, true);
      const stream = client.chat.completions.stream({ ...PARAMS, stream_options: { include_usage: true } });
      let streamedText = '';
      stream.on('content', (delta) => {
        streamedText += delta;
      });
      const completion = await stream.finalChatCompletion();
      assert.equal(server.last?.path, '/v1/chat/completions');
      assert.equal(completion.id, script.id);
      assert.equal(completion.model, 'gpt-alias');
      const choice = completion.choices[0];
      assert.ok(choice !== undefined && completion.choices.length === 1);
      const text = allText(script);
      // The role chunk carries content "" (as OpenAI's does), so a message without text has "" rather than null.
      assert.equal(choice.message.content ?? '', text);
      assert.equal(streamedText, text);
      const calls = tools(script).map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.input) } }));
      assert.deepEqual(
        (choice.message.tool_calls ?? []).map((c) =>
          c.type === 'function' ? { id: c.id, type: c.type, function: { name: c.function.name, arguments: c.function.arguments } } : c,
        ),
        calls,
      );
      assert.equal(choice.finish_reason, finishReasonFromAnthropic(script.stop));
      const prompt = script.usage.input + script.usage.cacheRead + script.usage.cacheCreation;
      assert.deepEqual(completion.usage, {
        prompt_tokens: prompt,
        completion_tokens: script.usage.output,
        total_tokens: prompt + script.usage.output,
        prompt_tokens_details: { cached_tokens: script.usage.cacheRead },
      });
    }),
    { numRuns: 60 },
  );
});

test('the stream parser of create({ stream: true }) reads every translated chunk, ending at [DONE] (property)', async () => {
  await fc.assert(
    fc.asyncProperty(scriptAndCuts, fc.boolean(), async ([script, cuts], includeUsage) => {
      serveTranslated(script, cuts, includeUsage);
      const stream = await client.chat.completions.create({ ...PARAMS, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) });
      let text = '';
      let finish: string | null = null;
      let usageChunks = 0;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        assert.equal(chunk.model, 'gpt-alias');
        if (chunk.usage != null) usageChunks++;
        for (const c of chunk.choices) {
          text += c.delta.content ?? '';
          finish = c.finish_reason ?? finish;
        }
      }
      assert.equal(text, allText(script));
      assert.equal(finish, finishReasonFromAnthropic(script.stop));
      assert.equal(usageChunks, includeUsage ? 1 : 0);
    }),
    { numRuns: 30 },
  );
});

test('the client raises the translated error event of a stream as an APIError', async () => {
  const upstream = Buffer.from(
    sse('message_start', { message: { id: 'msg_1', usage: { input_tokens: 1, output_tokens: 1 } } }) +
      sse('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }),
  );
  server.reply(eventStream([new AnthropicToOpenAISse({ clientModel: 'gpt-alias', includeUsage: false }).push(upstream, true)]));
  await assert.rejects(client.chat.completions.stream(PARAMS).finalChatCompletion(), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.type, 'server_error');
    assert.equal(err.code, 'overloaded');
    assert.match(err.message, /Overloaded/);
    return true;
  });
});

test('the client reads a translated buffered response as its ChatCompletion', async () => {
  const upstream = {
    id: 'msg_9',
    type: 'message',
    role: 'assistant',
    model: 'claude-upstream',
    content: [
      { type: 'text', text: 'Sure.' },
      { type: 'tool_use', id: 'toolu_1', name: 'f', input: { x: [1, 2] } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 40, cache_creation_input_tokens: 0 },
  };
  server.reply(json(200, anthropicResponseToOpenAIChat(upstream, 'gpt-alias')));
  const completion = await client.chat.completions.create(PARAMS);
  const message = completion.choices[0]?.message;
  assert.equal(message?.content, 'Sure.');
  assert.deepEqual(message?.tool_calls, [{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{"x":[1,2]}' } }]);
  assert.equal(completion.choices[0]?.finish_reason, 'tool_calls');
  assert.equal(completion.model, 'gpt-alias');
  assert.deepEqual(completion.usage, { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57, prompt_tokens_details: { cached_tokens: 40 } });
});

for (const [status, type, want, code, cls] of [
  [400, 'invalid_request_error', 'invalid_request_error', null, OpenAI.BadRequestError],
  [401, 'authentication_error', 'authentication_error', 'invalid_api_key', OpenAI.AuthenticationError],
  [403, 'permission_error', 'permission_error', null, OpenAI.PermissionDeniedError],
  [404, 'not_found_error', 'not_found_error', null, OpenAI.NotFoundError],
  [429, 'rate_limit_error', 'rate_limit_error', 'rate_limit_exceeded', OpenAI.RateLimitError],
  [529, 'overloaded_error', 'server_error', 'overloaded', OpenAI.InternalServerError],
] as const) {
  test(`the client reads a translated Anthropic ${status} ${type} error as ${cls.name} (type ${want}, code ${String(code)})`, async () => {
    server.reply(json(status, anthropicErrorToOpenAI(status, { type: 'error', error: { type, message: 'upstream says no' } })));
    await assert.rejects(client.chat.completions.create(PARAMS), (err: unknown) => {
      assert.ok(err instanceof cls, String(err));
      assert.equal(err.type, want);
      assert.equal(err.code, code);
      assert.match(err.message, /upstream says no/);
      return true;
    });
  });
}
