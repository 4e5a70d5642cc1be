import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatParam, JsonParseError, parseStrictJson, parseStrictJsonText } from '../../src/pipeline/json.ts';
import type { JsonErrorReason, JsonLimits } from '../../src/pipeline/json.ts';

const LIMITS: JsonLimits = { maxDepth: 64 };

function parse(text: string, limits: JsonLimits = LIMITS): unknown {
  return parseStrictJson(Buffer.from(text, 'utf8'), limits);
}

function rejects(input: string | Uint8Array, reason: JsonErrorReason, param: string | null, limits: JsonLimits = LIMITS): JsonParseError {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  try {
    parseStrictJson(bytes, limits);
  } catch (err) {
    assert.ok(err instanceof JsonParseError, `expected JsonParseError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.param, param);
    return err;
  }
  assert.fail(`expected ${reason} for ${typeof input === 'string' ? input : Buffer.from(input).toString('hex')}`);
}

test('parses what JSON.parse parses, with the same values', () => {
  const samples = [
    '{}',
    '[]',
    '0',
    '-0',
    '1.5e3',
    '-12.25E-2',
    'true',
    'false',
    'null',
    '""',
    '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"',
    ' { "a" : [ 1 , 2 , { "b" : null } ] , "c" : "ü😀" } ',
    '[[[[]]],{},[{}]]',
    `{"n":${Number.MAX_SAFE_INTEGER},"m":${Number.MIN_SAFE_INTEGER},"f":1e300,"g":123456789012345678901234.5}`,
  ];
  for (const s of samples) assert.equal(JSON.stringify(parse(s)), JSON.stringify(JSON.parse(s)), s);
  assert.ok(Object.is(parse('-0'), -0));
});

test('objects have a null prototype at every level', () => {
  const v = parse('{"a":{"b":[{"c":{}}]}}') as Record<string, Record<string, Record<string, unknown>[]>>;
  assert.equal(Object.getPrototypeOf(v), null);
  assert.equal(Object.getPrototypeOf(v['a']), null);
  const inner = v['a']?.['b']?.[0];
  assert.equal(Object.getPrototypeOf(inner), null);
  assert.equal(Object.getPrototypeOf(inner?.['c']), null);
  assert.ok(Array.isArray(v['a']?.['b']));
});

test('malformed JSON is invalid_json', async (t) => {
  for (const s of [
    '{',
    '[1,]',
    '{"a":1,}',
    '{"a" 1}',
    '{a:1}',
    "{'a':1}",
    '01',
    '1.',
    '.5',
    '-',
    '1e',
    '+1',
    'tru',
    'nul',
    '"\\x"',
    '"\\u12"',
    '"abc',
    '"a\nb"',
    '[1 2]',
    '{"a":1}{',
    '{"a":1} x',
    'NaN',
    'Infinity',
    '[1]]',
    '\uFEFF{}',
  ]) {
    await t.test(JSON.stringify(s), () => {
      assert.throws(
        () => parse(s),
        (err) => err instanceof JsonParseError && err.reason === 'invalid_json',
        s,
      );
    });
  }
  // The param points at the member being read.
  rejects('{"a":{"b":[1,}}', 'invalid_json', 'a.b[1]');
});

test('empty input is its own reason', () => {
  rejects('', 'empty', null);
  assert.throws(() => parseStrictJsonText('', LIMITS), JsonParseError);
});

test('invalid UTF-8 is refused from the raw bytes', async (t) => {
  const bad: Array<[string, number[]]> = [
    ['overlong "/"', [0x22, 0xc0, 0xaf, 0x22]],
    ['overlong 3-byte NUL', [0x22, 0xe0, 0x80, 0x80, 0x22]],
    ['overlong 4-byte', [0x22, 0xf0, 0x82, 0x82, 0xac, 0x22]],
    ['lone continuation', [0x22, 0x80, 0x22]],
    ['UTF-8 encoded high surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ['UTF-8 encoded low surrogate', [0x22, 0xed, 0xb0, 0x80, 0x22]],
    ['truncated sequence', [0x22, 0xe2, 0x82, 0x22]],
    ['beyond U+10FFFF', [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22]],
    ['0xFF byte', [0x7b, 0xff, 0x7d]],
    ['truncated at end', [0x22, 0x61, 0xe2]],
  ];
  for (const [name, bytes] of bad) {
    await t.test(name, () => {
      const err = rejects(Uint8Array.from(bytes), 'invalid_utf8', null);
      assert.ok(err.offset >= 0 && err.offset < bytes.length, `${name}: offset ${err.offset}`);
    });
  }
  // A body with invalid bytes deep inside a valid-looking request.
  const body = Buffer.concat([Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi '), Buffer.from([0xc0, 0x80]), Buffer.from('"}]}')]);
  const err = rejects(body, 'invalid_utf8', null);
  assert.equal(err.offset, body.indexOf(0xc0));
});

test('lone surrogate escapes are refused; pairs are accepted', () => {
  assert.equal(parse('"\\ud83d\\ude00"'), '😀');
  rejects('{"a":"\\ud800"}', 'invalid_unicode_escape', 'a');
  rejects('{"a":"\\ud800x"}', 'invalid_unicode_escape', 'a');
  rejects('{"a":"\\udc00"}', 'invalid_unicode_escape', 'a');
  rejects('{"a":"\\ud800\\u0041"}', 'invalid_unicode_escape', 'a');
});

test('nesting deeper than maxDepth is refused; the limit is inclusive', () => {
  assert.deepEqual(parse('[[[1]]]', { maxDepth: 3 }), [[[1]]]);
  rejects('[[[[1]]]]', 'too_deep', '[0][0][0]', { maxDepth: 3 });
  rejects('{"a":{"b":{"c":{}}}}', 'too_deep', 'a.b.c', { maxDepth: 3 });
});

test('depth 10 000 is refused fast and without stack overflow; unbounded depth still works', () => {
  const deep = Buffer.from('['.repeat(10_000) + ']'.repeat(10_000));
  const t0 = performance.now();
  rejects(deep, 'too_deep', formatParam(new Array<number>(64).fill(0)), { maxDepth: 64 });
  assert.ok(performance.now() - t0 < 50);
  // Iterative: even a million levels cannot overflow the call stack.
  const huge = Buffer.from('['.repeat(1_000_000) + ']'.repeat(1_000_000));
  let v = parseStrictJson(huge, { maxDepth: 2_000_000 });
  for (let k = 1; k < 1_000_000; k++) v = (v as unknown[])[0];
  assert.deepEqual(v, []);
  const objs = Buffer.from('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000));
  rejects(objs, 'too_deep', 'a.a.a', { maxDepth: 3 });
});

test('duplicate keys are refused anywhere, with their path', () => {
  rejects('{"model":"a","model":"b"}', 'duplicate_key', 'model');
  rejects('{"messages":[{"role":"user","role":"system"}]}', 'duplicate_key', 'messages[0].role');
  rejects('{"a":{"x":1,"y":2,"x":3}}', 'duplicate_key', 'a.x');
  // Escapes are decoded before comparing.
  rejects('{"model":1,"mod\\u0065l":2}', 'duplicate_key', 'model');
  assert.deepEqual({ ...(parse('{"a":1,"b":{"a":2}}') as object) }, { a: 1, b: Object.assign(Object.create(null) as object, { a: 2 }) });
});

test('__proto__, constructor and prototype keys are refused and nothing is polluted', () => {
  rejects('{"__proto__":{"polluted":1}}', 'forbidden_key', '__proto__');
  rejects('{"a":[{"constructor":{"prototype":{"polluted":1}}}]}', 'forbidden_key', 'a[0].constructor');
  rejects('{"prototype":1}', 'forbidden_key', 'prototype');
  rejects('{"\\u005f_proto__":{"polluted":1}}', 'forbidden_key', '__proto__');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  // Other keys that are Object.prototype members are plain data on a null-prototype object.
  const v = parse('{"toString":1,"hasOwnProperty":2,"__defineGetter__":3,"valueOf":"x"}') as Record<string, unknown>;
  assert.equal(Object.getOwnPropertyDescriptor(v, 'valueOf')?.value, 'x');
  assert.equal(Object.getOwnPropertyDescriptor(v, 'toString')?.value, 1);
  assert.equal(Object.getPrototypeOf(v), null);
});

test('numbers: overflow and unsafe integers are refused, fractions and exponents are fine', () => {
  rejects('{"a":1e400}', 'number_out_of_range', 'a');
  rejects('[-1e309]', 'number_out_of_range', '[0]');
  rejects('{"seed":9007199254740992}', 'unsafe_integer', 'seed');
  rejects('{"seed":-9007199254740992}', 'unsafe_integer', 'seed');
  rejects('{"a":[1,2,123456789012345678901234567890]}', 'unsafe_integer', 'a[2]');
  assert.equal(parse('9007199254740991'), 9007199254740991);
  assert.equal(parse('9007199254740992.0'), 9007199254740992);
  assert.equal(parse('1e20'), 1e20);
  assert.equal(parse('1e-400'), 0);
});

test('optional limits: keys per object and string size', () => {
  assert.ok(parse('{"a":1,"b":2}', { maxDepth: 4, maxKeys: 2 }));
  rejects('{"x":{"a":1,"b":2,"c":3}}', 'too_many_keys', 'x.c', { maxDepth: 4, maxKeys: 2 });
  assert.equal(parse('"ééé"', { maxDepth: 4, maxStringBytes: 6 }), 'ééé');
  rejects('{"k":"éééé"}', 'string_too_long', 'k', { maxDepth: 4, maxStringBytes: 6 });
  rejects('{"kkkkkkk":1}', 'string_too_long', null, { maxDepth: 4, maxStringBytes: 6 });
});

test('formatParam uses OpenAI notation', () => {
  assert.equal(formatParam([]), null);
  assert.equal(formatParam(['messages', 0, 'content', 1, 'text']), 'messages[0].content[1].text');
  assert.equal(formatParam([2, 'a']), '[2].a');
});

test('linear time on a 2 MiB chat body, within a small factor of JSON.parse', () => {
  const body = Buffer.from(
    JSON.stringify({
      model: 'm',
      messages: Array.from({ length: 4000 }, (_, i) => ({
        role: i % 2 === 1 ? 'assistant' : 'user',
        content: `Lorem ipsum "quoted" ünï 😀\n `.repeat(16) + String(i),
      })),
    }),
  );
  assert.ok(body.length > 2 * 1024 * 1024);
  const time = (f: () => void): number => {
    let best = Infinity;
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      f();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const strict = time(() => {
    parseStrictJson(body, LIMITS);
  });
  const native = time(() => {
    JSON.parse(body.toString('utf8'));
  });
  assert.deepEqual(JSON.parse(JSON.stringify(parseStrictJson(body, LIMITS))), JSON.parse(body.toString('utf8')));
  // Generous bound for loaded CI machines; typical is 2-4x.
  assert.ok(strict < Math.max(native * 15, 150), `strict ${strict.toFixed(1)} ms vs JSON.parse ${native.toFixed(1)} ms`);
  // Pathological shapes stay linear: a long run of escapes, many keys, a wide array.
  const escapes = Buffer.from(`"${'\\n'.repeat(1_000_000)}"`);
  const keys = Buffer.from(`{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`);
  const wide = Buffer.from(`[${'0,'.repeat(1_000_000)}0]`);
  for (const b of [escapes, keys, wide]) assert.ok(time(() => parseStrictJson(b, LIMITS)) < 500);
});
