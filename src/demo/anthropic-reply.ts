// The demo model server's deterministic answer to an Anthropic Messages
// request, as one JSON message or as the SSE events of a stream.
//
// Text: the same reply as the OpenAI chat endpoint (./tokens.ts replyPieces
// over the last user message's text, x-demo-words long, max_tokens capping it
// with stop_reason "max_tokens"; x-demo-reply replaces it whatever max_tokens
// says), cut before the first stop_sequences match (stop_reason
// "stop_sequence"). output_tokens is the number of pieces sent (a piece the
// match starts inside is sent up to the match, and counts).
//
// Tool use, when `tools` are declared and tool_choice is not "none":
//   - tool_choice {type:"tool",name} always calls that tool;
//   - tool_choice {type:"any"} always calls a tool: x-demo-tool's, else the first;
//   - otherwise ("auto") a tool is called when the last user message does not
//     answer an earlier call (no tool_result block) and either x-demo-tool names
//     the tool or that message's text has the word "weather" (the first tool).
// The input fills the tool's input_schema properties deterministically
// (string: the user's text; number/integer: minimum or 1; boolean: true;
// enum/const: the first value; array: []; object: recursively), and
// output_tokens is the token count of the input's JSON text.

import { replyPieces, countTokens } from './tokens.ts';
import { planReply } from './script.ts';
import type { Scripted } from './script.ts';
import type { MessagesRequest } from './anthropic-request.ts';
import { isObject } from '../shared/values.ts';

type Json = Record<string, unknown>;

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export type ReplyContent = { type: 'text'; pieces: string[] } | { type: 'tool_use'; id: string; name: string; input: Json };

export interface MessageReply {
  id: string;
  model: string;
  content: ReplyContent;
  stopReason: StopReason;
  stopSequence: string | null;
  usage: Usage;
}

/** Extra inputs from the scripting headers (see ./upstream.ts). */
export interface ReplyScript extends Scripted {
  /** x-demo-tool: the tool to call. */
  tool: string | undefined;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

const MAX_SCHEMA_DEPTH = 4;
const MAX_STRING_INPUT = 200;
/** input_json_delta fragment length, in code points. */
const JSON_FRAGMENT = 12;

function sampleValue(schema: unknown, text: string, depth: number): unknown {
  if (!isObject(schema)) return null;
  const choices = schema['enum'];
  if (Array.isArray(choices) && choices.length > 0) return choices[0] as unknown;
  if ('const' in schema) return schema['const'];
  const declared = schema['type'];
  const type: unknown = Array.isArray(declared) ? declared[0] : declared;
  switch (type) {
    case 'string':
      return text;
    case 'integer':
    case 'number':
      return typeof schema['minimum'] === 'number' ? schema['minimum'] : 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return sampleObject(schema, text, depth + 1);
    default:
      return null;
  }
}

function sampleObject(schema: Json | undefined, text: string, depth: number): Json {
  const out: Json = {};
  const props = schema?.['properties'];
  if (depth > MAX_SCHEMA_DEPTH || !isObject(props)) return out;
  for (const [name, prop] of Object.entries(props)) out[name] = sampleValue(prop, text, depth);
  return out;
}

function chosenTool(req: MessagesRequest, scripted: string | undefined): string | undefined {
  const { tools, toolChoice, prompt } = req;
  if (tools.length === 0 || toolChoice.type === 'none') return undefined;
  if (toolChoice.type === 'tool') return toolChoice.name;
  const first = tools[0]?.name;
  if (toolChoice.type === 'any') return scripted ?? first;
  if (prompt.answersTool) return undefined;
  if (scripted !== undefined) return scripted;
  return /\bweather\b/i.test(prompt.lastUserAsk) ? first : undefined;
}

/** Cut `pieces` before the earliest match of any stop sequence. */
function applyStopSequences(pieces: string[], stops: readonly string[]): { pieces: string[]; matched: string | null } {
  if (stops.length === 0) return { pieces, matched: null };
  const text = pieces.join('');
  let at = -1;
  let matched: string | null = null;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) {
      at = i;
      matched = s;
    }
  }
  if (matched === null) return { pieces, matched };
  const kept: string[] = [];
  let pos = 0;
  for (const p of pieces) {
    if (pos + p.length > at) {
      if (at > pos) kept.push(p.slice(0, at - pos));
      break;
    }
    kept.push(p);
    pos += p.length;
  }
  return { pieces: kept, matched };
}

/** Decide the whole reply (ids come from `nextId`). */
export function planMessage(req: MessagesRequest, script: ReplyScript, nextId: () => number): MessageReply {
  const usage = (output: number): Usage => ({
    input_tokens: req.prompt.inputTokens,
    output_tokens: output,
    cache_creation_input_tokens: script.cacheCreationTokens,
    cache_read_input_tokens: script.cacheReadTokens,
  });
  const id = `msg_demo_${nextId()}`;
  const tool = chosenTool(req, script.tool);
  if (tool !== undefined) {
    const schema = req.tools.find((t) => t.name === tool)?.inputSchema;
    const text = req.prompt.lastUserAsk.trim().slice(0, MAX_STRING_INPUT) || 'demo';
    const input = sampleObject(schema, text, 0);
    return {
      id,
      model: req.model,
      content: { type: 'tool_use', id: `toolu_demo_${nextId()}`, name: tool, input },
      stopReason: 'tool_use',
      stopSequence: null,
      usage: usage(countTokens(JSON.stringify(input))),
    };
  }
  let pieces: string[];
  let stopReason: StopReason = 'end_turn';
  if (script.reply !== undefined) {
    pieces = script.reply;
  } else {
    const plan = planReply(script, req.maxTokens);
    pieces = replyPieces(req.prompt.lastUserText, plan.count);
    if (plan.finishReason === 'length') stopReason = 'max_tokens';
  }
  const cut = applyStopSequences(pieces, req.stopSequences);
  if (cut.matched !== null) stopReason = 'stop_sequence';
  return { id, model: req.model, content: { type: 'text', pieces: cut.pieces }, stopReason, stopSequence: cut.matched, usage: usage(cut.pieces.length) };
}

function contentBlock(content: ReplyContent): Json {
  if (content.type === 'text') return { type: 'text', text: content.pieces.join('') };
  return { type: 'tool_use', id: content.id, name: content.name, input: content.input };
}

/** The non-streaming response body. */
export function messageJson(reply: MessageReply): string {
  return JSON.stringify({
    id: reply.id,
    type: 'message',
    role: 'assistant',
    model: reply.model,
    content: [contentBlock(reply.content)],
    stop_reason: reply.stopReason,
    stop_sequence: reply.stopSequence,
    usage: reply.usage,
  });
}

function sse(event: Json & { type: string }): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Split a string into fragments of `size` code points (never inside a surrogate pair). */
function fragments(s: string, size: number): string[] {
  const points = Array.from(s);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(''));
  return out;
}

/**
 * The stream's events, one string each: message_start, content_block_start,
 * ping, the deltas, content_block_stop, message_delta, message_stop.
 * `cumulativeDeltaUsage` (x-demo-delta-usage: cumulative) repeats the input and
 * cache counts in message_delta's usage, as the live API has done since 2025;
 * by default it carries output_tokens only, as in the documented example.
 */
export function messageEvents(reply: MessageReply, cumulativeDeltaUsage: boolean): string[] {
  const { usage, content } = reply;
  const events: string[] = [];
  events.push(
    sse({
      type: 'message_start',
      message: {
        id: reply.id,
        type: 'message',
        role: 'assistant',
        model: reply.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: Math.min(1, usage.output_tokens) },
      },
    }),
  );
  if (content.type === 'text') {
    events.push(sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
    events.push(sse({ type: 'ping' }));
    for (const text of content.pieces) events.push(sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }));
  } else {
    events.push(sse({ type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: content.id, name: content.name, input: {} } }));
    events.push(sse({ type: 'ping' }));
    for (const partial_json of ['', ...fragments(JSON.stringify(content.input), JSON_FRAGMENT)]) {
      events.push(sse({ type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json } }));
    }
  }
  events.push(sse({ type: 'content_block_stop', index: 0 }));
  const deltaUsage = cumulativeDeltaUsage
    ? {
        input_tokens: usage.input_tokens,
        cache_creation_input_tokens: usage.cache_creation_input_tokens,
        cache_read_input_tokens: usage.cache_read_input_tokens,
        output_tokens: usage.output_tokens,
      }
    : { output_tokens: usage.output_tokens };
  events.push(sse({ type: 'message_delta', delta: { stop_reason: reply.stopReason, stop_sequence: reply.stopSequence }, usage: deltaUsage }));
  events.push(sse({ type: 'message_stop' }));
  return events;
}
