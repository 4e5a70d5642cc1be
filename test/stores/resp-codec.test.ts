/**
 * The RESP2 codec of the quota store's Redis client (src/stores/resp/codec.ts):
 * commands encode to the exact bytes Redis expects (lengths in bytes, not
 * characters), and replies decode the same however the stream is cut —
 * split at every byte, fed a byte at a time, several in one chunk, a large
 * bulk string in many chunks — while a malformed stream is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, encodeScriptCall, RespParser, RespProtocolError, RespReplyError, type RespValue } from '../../src/stores/resp/codec.ts';

/** Replies of every type the parser takes, as bytes, with what they decode to. */
const CASES: ReadonlyArray<readonly [string, RespValue]> = [
  ['+OK\r\n', 'OK'],
  ['-NOSCRIPT No matching script. Please use EVAL.\r\n', new RespReplyError('NOSCRIPT No matching script. Please use EVAL.')],
  [':0\r\n', 0],
  [':1\r\n', 1],
  [':-1\r\n', -1],
  [':1733456789012\r\n', 1733456789012],
  ['$-1\r\n', null],
  ['*-1\r\n', null],
  ['$0\r\n\r\n', ''],
  ['$22\r\n1 1733456789012 0 0 10\r\n', '1 1733456789012 0 0 10'],
  // A payload holding CRLF: framed by its length, not by the line end.
  ['$8\r\na\r\nb\r\ncd\r\n', 'a\r\nb\r\ncd'],
  // Lengths are bytes: "é" and "€" are two and three bytes of UTF-8.
  ['$5\r\né€\r\n', 'é€'],
  ['*0\r\n', []],
  ['*3\r\n:1\r\n:0\r\n:1\r\n', [1, 0, 1]],
  ['*4\r\n*2\r\n:1\r\n$1\r\nx\r\n*0\r\n$-1\r\n*1\r\n*1\r\n-ERR deep\r\n', [[1, 'x'], [], null, [[new RespReplyError('ERR deep')]]]],
];

const STREAM = Buffer.from(CASES.map(([wire]) => wire).join(''), 'utf8');
const EXPECTED = CASES.map(([, value]) => value);

/** Decodes `chunks` fed in order, comparing errors by class and message. */
function decode(chunks: readonly Buffer[]): { values: RespValue[]; parser: RespParser } {
  const values: RespValue[] = [];
  const parser = new RespParser((v) => values.push(v));
  for (const c of chunks) parser.push(c);
  return { values, parser };
}

/** RespReplyError → a plain marker, so deepEqual compares messages (Error objects compare by identity of stack otherwise). */
function plain(v: RespValue): unknown {
  if (v instanceof RespReplyError) return { replyError: v.message };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

test('encodes commands as multi-bulk with byte lengths', () => {
  assert.equal(encodeCommand(['SELECT', 3]), '*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n');
  assert.equal(encodeCommand(['AUTH', 'gateway', 'pä$$']), '*3\r\n$4\r\nAUTH\r\n$7\r\ngateway\r\n$5\r\npä$$\r\n');
  assert.equal(encodeCommand([]), '*0\r\n');
  assert.equal(
    encodeScriptCall('EVALSHA', 'abc', ['k:{t}:res:1', 'k:{t}:rpm'], ['1', '', 'w 10 60000 1 0 ', 42]),
    '*9\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n2\r\n$11\r\nk:{t}:res:1\r\n$9\r\nk:{t}:rpm\r\n$1\r\n1\r\n$0\r\n\r\n$15\r\nw 10 60000 1 0 \r\n$2\r\n42\r\n',
  );
  // Non-ASCII keys (a tag or request id from a client): the length counts UTF-8 bytes.
  assert.equal(encodeScriptCall('EVAL', 'return 1', ['ключ'], []), '*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$8\r\nключ\r\n');
});

test('what the encoder writes, the parser reads back (a command is an array of bulk strings)', () => {
  const wire = encodeScriptCall('EVALSHA', 'f'.repeat(40), ['a', 'ü'], ['x y z ', 7]);
  assert.deepEqual(decode([Buffer.from(wire)]).values, [['EVALSHA', 'f'.repeat(40), '2', 'a', 'ü', 'x y z ', '7']]);
});

test('every reply type, all in one chunk', () => {
  const { values, parser } = decode([STREAM]);
  assert.deepEqual(values.map(plain), EXPECTED.map(plain));
  assert.equal(parser.buffered, 0);
});

test('the stream split in two at every byte boundary decodes the same', () => {
  for (let i = 1; i < STREAM.length; i++) {
    const { values, parser } = decode([STREAM.subarray(0, i), STREAM.subarray(i)]);
    assert.deepEqual(values.map(plain), EXPECTED.map(plain), `split at byte ${i}`);
    assert.equal(parser.buffered, 0);
  }
});

test('the stream split in three at every pair of boundaries decodes the same', () => {
  for (let i = 1; i < STREAM.length - 1; i++) {
    for (let j = i + 1; j < STREAM.length; j++) {
      const { values } = decode([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]);
      assert.deepEqual(values.map(plain), EXPECTED.map(plain), `split at bytes ${i} and ${j}`);
    }
  }
});

test('fed one byte at a time: each reply comes out exactly when its last byte arrives', () => {
  const values: RespValue[] = [];
  const parser = new RespParser((v) => values.push(v));
  let offset = 0;
  for (const [wire, value] of CASES) {
    const bytes = Buffer.from(wire, 'utf8');
    for (let k = 0; k < bytes.length; k++) {
      parser.push(bytes.subarray(k, k + 1));
      const complete = k === bytes.length - 1;
      assert.equal(values.length, complete ? offset + 1 : offset, `${JSON.stringify(wire)} after byte ${k}`);
    }
    assert.deepEqual(plain(values[offset] as RespValue), plain(value));
    offset++;
  }
  assert.equal(parser.buffered, 0);
});

test('a large bulk string in many chunks, followed by more replies in the last chunk', () => {
  const payload = Buffer.alloc(3 * 1024 * 1024 + 7, 'q');
  const wire = Buffer.concat([Buffer.from(`$${payload.length}\r\n`), payload, Buffer.from('\r\n:5\r\n+OK\r\n')]);
  const chunks: Buffer[] = [];
  for (let at = 0; at < wire.length; at += 65_536) chunks.push(wire.subarray(at, at + 65_536));
  const values: RespValue[] = [];
  const parser = new RespParser((v) => values.push(v));
  for (const [i, c] of chunks.entries()) {
    parser.push(c);
    if (i < chunks.length - 1) assert.equal(values.length, 0, 'nothing before the payload is complete');
  }
  assert.equal(values.length, 3);
  assert.equal(typeof values[0], 'string');
  assert.equal((values[0] as string).length, payload.length);
  assert.ok((values[0] as string).split('').every((c) => c === 'q'));
  assert.deepEqual(values.slice(1), [5, 'OK']);
  assert.equal(parser.buffered, 0);
});

test('a partial reply is kept across chunks and dropped by reset()', () => {
  const values: RespValue[] = [];
  const parser = new RespParser((v) => values.push(v));
  parser.push(Buffer.from('*2\r\n:1\r\n'));
  assert.equal(values.length, 0);
  assert.ok(parser.buffered > 0);
  parser.reset();
  assert.equal(parser.buffered, 0);
  parser.push(Buffer.from(':9\r\n'));
  assert.deepEqual(values, [9], 'after reset the stream starts afresh');
});

test('a malformed stream is refused with RespProtocolError', () => {
  for (const bad of ['?what\r\n', ':12x\r\n', ':\r\n', '$3\r\nabcXY', '$-2\r\n', '*-5\r\n', '+OK\rX']) {
    const parser = new RespParser(() => undefined);
    assert.throws(() => parser.push(Buffer.from(bad)), RespProtocolError, JSON.stringify(bad));
  }
  // A line that never ends is not buffered without bound.
  const parser = new RespParser(() => undefined);
  assert.throws(() => parser.push(Buffer.from(`+${'x'.repeat(70_000)}`)), RespProtocolError);
});
