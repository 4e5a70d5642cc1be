import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SseReader } from '../../../src/families/translate/sse-reader.ts';

type Ev = [string | null, string];

function read(chunks: readonly (string | Buffer)[]): Ev[] {
  const got: Ev[] = [];
  const r = new SseReader((event, data) => got.push([event, data]));
  chunks.forEach((c, i) => r.push(typeof c === 'string' ? Buffer.from(c) : c, i === chunks.length - 1));
  return got;
}

const CASES: ReadonlyArray<{ name: string; input: string; want: Ev[] }> = [
  { name: 'a data-only event', input: 'data: {"a":1}\n\n', want: [[null, '{"a":1}']] },
  { name: 'a named event', input: 'event: ping\ndata: {}\n\n', want: [['ping', '{}']] },
  { name: 'no space after the colon', input: 'event:x\ndata:y\n\n', want: [['x', 'y']] },
  { name: 'only the first space is dropped', input: 'data:  two\n\n', want: [[null, ' two']] },
  { name: 'data lines of one event are joined with LF', input: 'data: a\ndata: b\n\n', want: [[null, 'a\nb']] },
  { name: 'CRLF line endings', input: 'event: e\r\ndata: d\r\n\r\n', want: [['e', 'd']] },
  { name: 'comments, id and retry lines are ignored', input: ': keep-alive\nid: 7\nretry: 10\ndata: x\n\n', want: [[null, 'x']] },
  { name: 'an event name without data is no event', input: 'event: lonely\n\ndata: x\n\n', want: [[null, 'x']] },
  {
    name: 'blank lines between events are harmless',
    input: '\n\ndata: 1\n\n\n\ndata: 2\n\n',
    want: [
      [null, '1'],
      [null, '2'],
    ],
  },
  { name: 'the last event without its blank line still counts at the end', input: 'data: [DONE]', want: [[null, '[DONE]']] },
  {
    name: 'the last event without the final LF',
    input: 'data: a\n\ndata: b\n',
    want: [
      [null, 'a'],
      [null, 'b'],
    ],
  },
  { name: 'an empty data value', input: 'data:\n\n', want: [[null, '']] },
  { name: 'lines that look like fields but are not', input: 'dat: x\nevents: y\ndata: z\n\n', want: [[null, 'z']] },
  { name: 'multi-byte text', input: 'data: Grüße ☃ 😀\n\n', want: [[null, 'Grüße ☃ 😀']] },
];

for (const c of CASES) {
  test(`SSE reader: ${c.name}`, () => {
    assert.deepEqual(read([c.input]), c.want);
  });
}

test('SSE reader: the same events for every split point, and one byte at a time (UTF-8 split inside characters)', () => {
  const input = Buffer.from('event: a\ndata: Grüße ☃ 😀\r\n\r\n: c\ndata: x\ndata: y\n\ndata: [DONE]\n\n');
  const want = read([input]);
  for (let cut = 0; cut <= input.length; cut++) assert.deepEqual(read([input.subarray(0, cut), input.subarray(cut)]), want, `cut at ${cut}`);
  assert.deepEqual(read(Array.from(input, (_, i) => input.subarray(i, i + 1))), want);
});

test('SSE reader: any chunking gives the same events (property)', () => {
  const line = fc.oneof(
    fc.string({ unit: fc.constantFrom('a', 'é', '😀', ' ', ':') }).map((s) => `data: ${s}`),
    fc.constantFrom('event: e', ': comment', '', 'id: 1'),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.array(fc.nat(), { maxLength: 10 }), (lines, eol, rawCuts) => {
      const bytes = Buffer.from(lines.map((l) => l + eol).join(''));
      const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, bytes.length]) {
        pieces.push(bytes.subarray(prev, c));
        prev = c;
      }
      assert.deepEqual(read(pieces), read([bytes]));
    }),
    { numRuns: 300 },
  );
});

test('SSE reader: a chunk it was given may be reused by the caller afterwards (pending bytes are copied)', () => {
  const got: Ev[] = [];
  const r = new SseReader((event, data) => got.push([event, data]));
  const buf = Buffer.from('data: hel');
  r.push(buf, false);
  buf.fill(0x21);
  r.push(Buffer.from('lo\n\n'), true);
  assert.deepEqual(got, [[null, 'hello']]);
});
