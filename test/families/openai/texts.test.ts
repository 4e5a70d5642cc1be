import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestTexts, responseTexts } from '../../../src/families/openai/texts.ts';

test('request texts: chat strings, text parts and image URLs, prompts, inputs; set() rewrites in place', () => {
  const chat = {
    messages: [
      { role: 'system', content: 'be brief' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'card 4111' },
          { type: 'image_url', image_url: { url: 'x' } },
        ],
      },
    ],
  };
  const refs = requestTexts('chat', chat);
  assert.deepEqual(
    refs.map((r) => r.text),
    ['be brief', 'card 4111', 'x'],
  );
  refs[1]?.set('card [REDACTED]');
  assert.equal((chat.messages[1]?.content as Array<{ text?: string }>)[0]?.text, 'card [REDACTED]');
  assert.deepEqual(
    requestTexts('completions', { prompt: ['a', 'b'] }).map((r) => r.text),
    ['a', 'b'],
  );
  assert.deepEqual(
    requestTexts('embeddings', { input: 'x' }).map((r) => r.text),
    ['x'],
  );
  assert.deepEqual(requestTexts('embeddings', { input: [1, 2, 3] }), []);
});

test('response texts: chat message contents and completion texts', () => {
  const body = { choices: [{ message: { role: 'assistant', content: 'hello' } }, { text: 'legacy' }] };
  const refs = responseTexts(body);
  assert.deepEqual(
    refs.map((r) => r.text),
    ['hello', 'legacy'],
  );
  refs[0]?.set('bye');
  assert.equal(body.choices[0]?.message?.content, 'bye');
});
