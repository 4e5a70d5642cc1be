/**
 * Every string a model writes in a stream is in scope (issue #13 item 1):
 * OpenAI tool call arguments assembled across chunks, refusals, reasoning,
 * unknown fields, events whose `data:` spans several lines; Anthropic tool
 * input JSON and thinking deltas. Each case is checked at every split point
 * of the byte stream (Envoy cuts chunks anywhere).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseRedactor } from '../../src/families/openai/sse-redact.ts';
import { AnthropicSseRedactor } from '../../src/families/anthropic/sse-redact.ts';
import type { RedactFn, StreamRedactor } from '../../src/pipeline/ports.ts';

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

function run(make: () => StreamRedactor, bytes: Buffer, cuts: number[]): string {
  const r = make();
  let prev = 0;
  let out = '';
  const points = [...cuts, bytes.length];
  points.forEach((cut, i) => {
    out += r.push(bytes.subarray(prev, cut), i === points.length - 1).toString();
    prev = cut;
  });
  return out;
}

/** The stream at every single split point: no card digits leak, and `check` holds for the output. */
function everySplit(make: () => StreamRedactor, stream: string, check: (out: string) => void): void {
  const bytes = Buffer.from(stream);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const out = run(make, bytes, [cut]);
    assert.ok(!/4111/.test(out), `split at ${cut}: the card leaked:\n${out}`);
    check(out);
  }
}

function events(sse: string): Array<Record<string, unknown>> {
  return sse
    .split('\n\n')
    .filter((b) => b.trim() !== '')
    .map((b) =>
      b
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
        .join('\n'),
    )
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Record<string, unknown>);
}

const openai = () => new SseRedactor(redact, 32);
const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
const finish = (reason: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: {}, finish_reason: reason }] })}\n\n`;

/** What an OpenAI client assembles from the chunks (content, refusal, reasoning, tool calls). */
function assemble(sse: string) {
  const out = { content: '', refusal: '', reasoning: '', calls: new Map<number, { id?: string; name?: string; args: string }>(), finish: null as unknown };
  for (const e of events(sse)) {
    for (const c of (e['choices'] as Array<Record<string, unknown>> | undefined) ?? []) {
      if (c['finish_reason'] != null) out.finish = c['finish_reason'];
      const d = (c['delta'] ?? {}) as Record<string, unknown>;
      out.content += (d['content'] as string | undefined) ?? '';
      out.refusal += (d['refusal'] as string | undefined) ?? '';
      out.reasoning += (d['reasoning_content'] as string | undefined) ?? '';
      for (const tc of (d['tool_calls'] as Array<Record<string, unknown>> | undefined) ?? []) {
        const i = tc['index'] as number;
        const call = out.calls.get(i) ?? { args: '' };
        const fn = (tc['function'] ?? {}) as Record<string, unknown>;
        if (typeof tc['id'] === 'string') call.id = tc['id'];
        if (typeof fn['name'] === 'string') call.name = fn['name'];
        call.args += (fn['arguments'] as string | undefined) ?? '';
        out.calls.set(i, call);
      }
    }
  }
  return out;
}

test('OpenAI: tool call arguments assembled across chunks are redacted; ids, names and order survive', () => {
  const stream =
    chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'pay', arguments: '' } }] }) +
    ['{"card":"41', '111111', '1111111', '1"}'].map((a) => chunk({ tool_calls: [{ index: 0, function: { arguments: a } }] })).join('') +
    chunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'log', arguments: '{"n":1}' } }] }) +
    finish('tool_calls') +
    'data: [DONE]\n\n';
  everySplit(openai, stream, (out) => {
    const a = assemble(out);
    assert.deepEqual(a.calls.get(0), { id: 'call_1', name: 'pay', args: '{"card":"[REDACTED:CARD]"}' });
    assert.deepEqual(a.calls.get(1), { id: 'call_2', name: 'log', args: '{"n":1}' });
    assert.equal(a.finish, 'tool_calls');
    assert.ok(out.endsWith('data: [DONE]\n\n'));
  });
});

test('OpenAI: refusal and reasoning deltas are redacted like content', () => {
  const stream =
    chunk({ role: 'assistant', reasoning_content: 'the user gave 4111' }) +
    chunk({ reasoning_content: '111111111111 so' }) +
    chunk({ refusal: 'I will not charge 41111111' }) +
    chunk({ refusal: '11111111.' }) +
    finish('stop');
  everySplit(openai, stream, (out) => {
    const a = assemble(out);
    assert.equal(a.reasoning, 'the user gave [REDACTED:CARD] so');
    assert.equal(a.refusal, 'I will not charge [REDACTED:CARD].');
  });
});

test('OpenAI: a value in a field the gateway does not know, and an event whose data spans several lines, are redacted', () => {
  const multiLine = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,\ndata: "delta":{"content":"card 4111111111111111"},"finish_reason":null}]}\n\n`;
  const stream = chunk({ content: 'hello ' }, { x_vendor: { note: 'card 4111111111111111' } }) + multiLine + finish('stop');
  everySplit(openai, stream, (out) => {
    assert.match(out, /\[REDACTED:CARD\]/);
    assert.equal(assemble(out).content, 'hello card [REDACTED:CARD]');
  });
});

test('OpenAI: a usage chunk and unknown events without choices pass unchanged, byte for byte', () => {
  const usage = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } })}\n\n`;
  const stream = chunk({ content: 'hi' }) + usage + ': keep-alive comment\n\n' + 'data: [DONE]\n\n';
  assert.equal(run(openai, Buffer.from(stream), []), stream);
});

const anthropic = () => new AnthropicSseRedactor(redact, 32);
const aev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

test('Anthropic: tool input JSON and thinking deltas are redacted across chunks; text blocks as before', () => {
  const stream =
    aev('message_start', {
      message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], usage: { input_tokens: 3, output_tokens: 1 } },
    }) +
    aev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '' } }) +
    ['user card 41111', '11111111111'].map((t) => aev('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: t } })).join('') +
    aev('content_block_stop', { index: 0 }) +
    aev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'pay', input: {} } }) +
    ['{"card": "4111', '1111', '11111111"}']
      .map((p) => aev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: p } }))
      .join('') +
    aev('content_block_stop', { index: 1 }) +
    aev('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 9 } }) +
    aev('message_stop', {});
  everySplit(anthropic, stream, (out) => {
    let thinking = '';
    let json = '';
    for (const e of events(out)) {
      const d = e['delta'] as Record<string, unknown> | undefined;
      if (d?.['type'] === 'thinking_delta') thinking += d['thinking'] as string;
      if (d?.['type'] === 'input_json_delta') json += d['partial_json'] as string;
    }
    assert.equal(thinking, 'user card [REDACTED:CARD]');
    assert.deepEqual(JSON.parse(json), { card: '[REDACTED:CARD]' });
    assert.match(out, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/);
  });
});

test('Anthropic: a value in a content block start or an unknown event is redacted', () => {
  const stream =
    aev('content_block_start', { index: 0, content_block: { type: 'text', text: 'card 4111111111111111' } }) +
    aev('vendor_event', { note: 'card 4111111111111111' }) +
    aev('message_stop', {});
  everySplit(anthropic, stream, (out) => assert.equal((out.match(/\[REDACTED:CARD\]/g) ?? []).length, 2));
});
