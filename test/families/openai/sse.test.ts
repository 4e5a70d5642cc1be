import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseStreamMeter } from '../../../src/families/openai/sse.ts';

function chunk(obj: object): string {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

const content = (text: string) => chunk({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] });
const usageChunk = chunk({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
// Multi-byte characters so that byte splits land inside UTF-8 sequences.
const STREAM = content('Grüße') + content(' ☃ snow') + content('man') + usageChunk + 'data: [DONE]\n\n';
const WITHOUT_USAGE = content('Grüße') + content(' ☃ snow') + content('man') + 'data: [DONE]\n\n';

function run(meter: SseStreamMeter, bytes: Buffer, cuts: number[]): Buffer {
  const out: Buffer[] = [];
  let prev = 0;
  const points = [...cuts, bytes.length];
  points.forEach((cut, i) => {
    const piece = bytes.subarray(prev, cut);
    const replace = meter.push(piece, i === points.length - 1);
    out.push(replace ?? piece);
    prev = cut;
  });
  return Buffer.concat(out);
}

test('usage is read whatever the chunking, at every single split point', () => {
  const bytes = Buffer.from(STREAM);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const meter = new SseStreamMeter({ stripUsageChunk: false });
    const out = run(meter, bytes, [cut]);
    assert.deepEqual(meter.usage, { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0 }, `split at ${cut}`);
    assert.equal(meter.contentChars, 'Grüße ☃ snowman'.length);
    assert.equal(out.toString(), STREAM, 'pass-through mode leaves the bytes alone');
  }
});

test('the usage chunk the gateway asked for is stripped, framing intact, for every split point', () => {
  const bytes = Buffer.from(STREAM);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const meter = new SseStreamMeter({ stripUsageChunk: true });
    const out = run(meter, bytes, [cut]);
    assert.equal(out.toString(), WITHOUT_USAGE, `split at ${cut}`);
    assert.deepEqual(meter.usage, { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0 });
  }
});

test('one byte per chunk', () => {
  const bytes = Buffer.from(STREAM);
  const meter = new SseStreamMeter({ stripUsageChunk: true });
  const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
  assert.equal(run(meter, bytes, cuts).toString(), WITHOUT_USAGE);
  assert.deepEqual(meter.usage, { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0 });
});

test('CRLF line endings and comments pass; malformed data lines do not crash', () => {
  const text = ': keep-alive\r\n\r\ndata: {not json}\r\n\r\n' + content('hi').replace(/\n/g, '\r\n') + 'data: [DONE]\r\n\r\n';
  const meter = new SseStreamMeter({ stripUsageChunk: true });
  const out = run(meter, Buffer.from(text), [3, 17, 40]);
  assert.equal(out.toString(), text);
  assert.equal(meter.usage, null);
  assert.equal(meter.contentChars, 2);
  assert.equal(meter.sawContent, true);
});

test('a stream that ends without a newline is flushed', () => {
  const meter = new SseStreamMeter({ stripUsageChunk: true });
  const text = content('x') + 'data: [DONE]';
  assert.equal(run(meter, Buffer.from(text), [5]).toString(), text);
});
