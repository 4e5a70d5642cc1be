import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens, replyPieces } from '../../src/demo/tokens.ts';

void test('countTokens: word runs and single punctuation characters', () => {
  assert.equal(countTokens(''), 0);
  assert.equal(countTokens('   \n\t '), 0);
  assert.equal(countTokens('Hello, world!'), 4);
  assert.equal(countTokens("it's 3.5"), 6);
  assert.equal(countTokens('snake_case42 and-dash'), 4);
  assert.equal(countTokens('naïve 日本語'), 2);
  assert.equal(countTokens('a\u00a0b\u3000c'), 3);
  assert.equal(countTokens('{"a":1}'), 7);
});

void test('replyPieces: prefix + prompt tokens, cut or padded to the count', () => {
  assert.deepEqual(replyPieces('Hi there', 0), []);
  assert.deepEqual(replyPieces('Hi there', 2), ['Demo', ' reply']);
  assert.equal(replyPieces('Hello, world!', 8).join(''), 'Demo reply to: Hello, world!');
  assert.equal(replyPieces('Hello,\n\n  world!', 8).join(''), 'Demo reply to: Hello, world!');
  assert.equal(replyPieces('x', 7).join(''), 'Demo reply to: x lorem ipsum');
  assert.equal(replyPieces('', 5).join(''), 'Demo reply to: lorem');
});

void test('replyPieces: counting the joined reply gives back the piece count', async (t) => {
  const prompts = ['', 'Hello, world!', "it's (really) 3.5%!!", 'naïve\tcafé—ok?', 'a'.repeat(50), '日本語 です。'];
  for (const prompt of prompts) {
    for (const n of [0, 1, 3, 4, 5, 12, 40]) {
      await t.test(`${JSON.stringify(prompt)} × ${n}`, () => {
        const pieces = replyPieces(prompt, n);
        assert.equal(pieces.length, n);
        assert.equal(countTokens(pieces.join('')), n, `${JSON.stringify(prompt)} x ${n}`);
        for (const p of pieces) assert.equal(countTokens(p), 1);
      });
    }
  }
});

void test('replyPieces is deterministic', () => {
  assert.deepEqual(replyPieces('Tell me a story', 30), replyPieces('Tell me a story', 30));
});
