import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SseRedactor, type RedactFn } from '../../../src/families/openai/sse-redact.ts';

/** Redacts 16-digit runs (a stand-in for the real classifier). */
const redact: RedactFn = (text) => {
  const spans: Array<{ start: number; end: number }> = [];
  for (const m of text.matchAll(/\d{16}/g)) spans.push({ start: m.index, end: m.index + 16 });
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += `${text.slice(at, s.start)}[REDACTED:CARD]`;
    at = s.end;
  }
  return { text: out + text.slice(at), spans };
};

const ev = (content: string, extra: object = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }], ...extra })}\n\n`;
const finish = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;
const tokens = ['My card is ', '4111', '1111', '11', '111111', ' thanks', '!'];
const STREAM = tokens.map((t) => ev(t)).join('') + finish + 'data: [DONE]\n\n';

function run(bytes: Buffer, cuts: number[], redactFn: RedactFn = redact): string {
  const r = new SseRedactor(redactFn, 32);
  let prev = 0;
  let out = '';
  const points = [...cuts, bytes.length];
  points.forEach((cut, i) => {
    out += r.push(bytes.subarray(prev, cut), i === points.length - 1).toString();
    prev = cut;
  });
  return out;
}

function textOf(sse: string): string {
  let text = '';
  for (const block of sse.split('\n\n')) {
    if (!block.startsWith('data: ') || block === 'data: [DONE]') continue;
    const obj = JSON.parse(block.slice(6)) as { choices: Array<{ delta?: { content?: string } }> };
    text += obj.choices[0]?.delta?.content ?? '';
  }
  return text;
}

test('a card number split over four token events is redacted; framing and order intact', () => {
  const out = run(Buffer.from(STREAM), []);
  assert.equal(textOf(out), 'My card is [REDACTED:CARD] thanks!');
  assert.ok(out.endsWith(`${finish}data: [DONE]\n\n`), 'finish and [DONE] come last, unchanged');
  for (const block of out.split('\n\n').filter((b) => b !== '')) {
    assert.ok(block.startsWith('data: '));
    if (block !== 'data: [DONE]') JSON.parse(block.slice(6));
  }
});

test('every single split point gives the same redacted text', () => {
  const bytes = Buffer.from(STREAM);
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.equal(textOf(run(bytes, [cut])), 'My card is [REDACTED:CARD] thanks!', `split at ${cut}`);
  }
});

test('text before the hold-back window is released while the stream runs', () => {
  const r = new SseRedactor(redact, 8);
  const first = r.push(Buffer.from(ev('a long harmless preamble of text ')), false).toString();
  assert.ok(textOf(first).length > 0, 'released before the end of the stream');
  assert.ok(textOf(first).length <= 'a long harmless preamble of text '.length - 8);
});

test('property: any chunking of any token stream — valid framing, no card digits leak, text preserved otherwise', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('4111', '1111', '11', '111111', '5555555555554444')), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (parts, rawCuts) => {
        const stream = parts.map((t) => ev(t)).join('') + finish + 'data: [DONE]\n\n';
        const bytes = Buffer.from(stream);
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const out = run(bytes, cuts);
        const expected = redact(parts.join(''), true).text;
        assert.equal(textOf(out), expected);
        assert.ok(!/\d{16}/.test(textOf(out)));
      },
    ),
    { numRuns: 300 },
  );
});

test('property: each redacted value is reported once, when released — not again each time held-back text is re-scanned', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('4111', '1111', '11', '111111', '5555555555554444')), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (parts, rawCuts) => {
        let reported = 0;
        const counting: RedactFn = (text, released) => {
          const result = redact(text, released);
          if (released) reported += result.spans.length;
          return result;
        };
        const bytes = Buffer.from(parts.map((t) => ev(t)).join('') + finish + 'data: [DONE]\n\n');
        run(
          bytes,
          [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b),
          counting,
        );
        assert.equal(reported, redact(parts.join(''), true).spans.length);
      },
    ),
    { numRuns: 300 },
  );
});
