/**
 * Hostile request bodies through real Envoy: each refused with a 400 in our
 * format naming the parameter, nothing reaching the model server, and the
 * sidecar unharmed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let stack: TestStack;

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await stack.stop();
});

async function post(body: Buffer | string): Promise<{ status: number; code: string; param: string | null }> {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.files.keys['alice'] ?? ''}`, 'content-type': 'application/json' },
    body,
  });
  const json = (await res.json()) as { error: { code: string; param: string | null } };
  return { status: res.status, code: json.error.code, param: json.error.param };
}

const msgs = '"messages":[{"role":"user","content":"hi"}]';

test('hostile bodies are 400 invalid_request_body naming the parameter; nothing reaches the model', async (t) => {
  stack.upstream.clearRequests();
  const cases: Array<[string, Buffer | string, string | null]> = [
    ['duplicate model', `{"model":"gpt-demo","model":"other",${msgs}}`, 'model'],
    ['__proto__ key', `{"model":"gpt-demo",${msgs},"__proto__":{"polluted":true}}`, '__proto__'],
    ['constructor key', `{"model":"gpt-demo",${msgs},"metadata":{"constructor":{"prototype":{}}}}`, 'metadata.constructor'],
    ['deep nesting', `{"model":"gpt-demo",${msgs},"x":${'['.repeat(5000)}${']'.repeat(5000)}}`, null],
    ['huge integer', `{"model":"gpt-demo",${msgs},"max_tokens":123456789012345678901234567890}`, 'max_tokens'],
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from(`{"model":"gpt-demo","messages":[{"role":"user","content":"`), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')]),
      null,
    ],
    ['temperature out of range', `{"model":"gpt-demo",${msgs},"temperature":7}`, 'temperature'],
    ['no messages', '{"model":"gpt-demo","messages":[]}', 'messages'],
  ];
  for (const [name, body, param] of cases) {
    await t.test(name, async () => {
      const r = await post(body);
      assert.equal(r.status, 400, name);
      assert.equal(r.code, 'invalid_request_body', name);
      if (param !== null) assert.equal(r.param, param, name);
    });
  }
  assert.equal(stack.upstream.requests.length, 0);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  // The sidecar is unharmed: a good request still works.
  const ok = await stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'still fine' }] });
  assert.match(ok.choices[0]?.message.content ?? '', /Demo reply/);
});
