/**
 * An OpenAI Chat Completions request (validated by the OpenAI family) as an
 * Anthropic Messages request.
 *
 * - system and developer messages, wherever they are, become `system`, in order;
 * - `tool` messages become `tool_result` blocks of a user turn, and
 *   consecutive turns of the same role are merged (Anthropic alternates
 *   user and assistant, and a user turn starts with its tool results);
 * - empty texts are left out (Anthropic refuses empty text blocks);
 * - a parameter without an Anthropic equivalent is refused by name
 *   (TranslationError, a 400), unless it is harmless or at its neutral value.
 */
import { isObject } from '../../shared/values.ts';
import type {
  AnthropicBlock,
  AnthropicImageBlock,
  AnthropicImageMediaType,
  AnthropicMessageParam,
  AnthropicMessagesRequest,
  AnthropicTextBlock,
  AnthropicTool,
  AnthropicToolChoice,
  AnthropicToolResultBlock,
  AnthropicToolUseBlock,
} from './anthropic-types.ts';
import { anthropicToolId } from './ids.ts';
import type {
  JsonObject,
  OpenAIAssistantMessage,
  OpenAIChatRequest,
  OpenAIMessage,
  OpenAITextPart,
  OpenAITool,
  OpenAIToolChoice,
  OpenAIToolMessage,
  OpenAIUserPart,
} from './openai-types.ts';
import { checkParams, isEmptyObject, isFalse, isZero, type ParamTable } from './params.ts';
import { invalid, unsupported } from './translation-error.ts';

const UPSTREAM = 'Anthropic Messages';

export interface OpenAIToAnthropicOptions {
  /** `max_tokens` when the client set none: Anthropic requires one. */
  readonly defaultMaxTokens: number;
}

const PARAMS: ParamTable = {
  model: 'mapped',
  messages: 'mapped',
  max_tokens: 'mapped',
  max_completion_tokens: 'mapped',
  stop: 'mapped',
  temperature: 'mapped',
  top_p: 'mapped',
  top_k: 'mapped',
  stream: 'mapped',
  tools: 'mapped',
  tool_choice: 'mapped',
  parallel_tool_calls: 'mapped',
  user: 'mapped',
  safety_identifier: 'mapped',
  // Harmless: the completion the client receives is the same without them.
  stream_options: 'dropped', // the stream translator reports usage on its own
  seed: 'dropped', // best-effort determinism only
  store: 'dropped',
  metadata: 'dropped', // OpenAI's tags for stored completions
  service_tier: 'dropped',
  prompt_cache_key: 'dropped',
  prompt_cache_retention: 'dropped',
  // Accepted at their neutral value only.
  n: (v) => v === 1,
  logprobs: isFalse,
  top_logprobs: isZero,
  presence_penalty: isZero,
  frequency_penalty: isZero,
  logit_bias: isEmptyObject,
  response_format: (v) => isObject(v) && v['type'] === 'text',
  modalities: (v) => Array.isArray(v) && v.every((m) => m === 'text'),
};

const IMAGE_TYPES: ReadonlySet<string> = new Set<AnthropicImageMediaType>(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

export function openAIChatToAnthropic(req: OpenAIChatRequest, upstreamModel: string, opts: OpenAIToAnthropicOptions): AnthropicMessagesRequest {
  checkParams(req, PARAMS, UPSTREAM);
  const { system, messages } = convertMessages(req.messages);
  const out: AnthropicMessagesRequest = {
    model: upstreamModel,
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? opts.defaultMaxTokens,
    messages,
  };
  if (system.length > 0) out.system = system.length === 1 && isPlainText(system[0]) ? system[0].text : system;
  if (req.stop != null) {
    const stops = typeof req.stop === 'string' ? [req.stop] : req.stop;
    if (stops.length > 0) out.stop_sequences = stops;
  }
  if (req.temperature != null) {
    if (req.temperature > 1)
      throw invalid(
        'temperature',
        `'temperature' must be between 0 and 1 for this model (its deployment speaks the Anthropic Messages API); got ${req.temperature}.`,
      );
    out.temperature = req.temperature;
  }
  if (req.top_p != null) out.top_p = req.top_p;
  if (req.top_k != null) out.top_k = req.top_k;
  if (req.stream === true) out.stream = true;
  const tools = req.tools === undefined ? [] : req.tools.map(convertTool);
  if (tools.length > 0) out.tools = tools;
  const choice = convertToolChoice(req.tool_choice, req.parallel_tool_calls === false && tools.length > 0);
  if (choice !== null) out.tool_choice = choice;
  const userId = req.user ?? req['safety_identifier'];
  if (typeof userId === 'string' && userId !== '') out.metadata = { user_id: userId };
  return out;
}

// ── Messages ────────────────────────────────────────────────────────────────

interface Turn {
  role: 'user' | 'assistant';
  blocks: AnthropicBlock[];
}

function convertMessages(input: readonly OpenAIMessage[]): { system: AnthropicTextBlock[]; messages: AnthropicMessageParam[] } {
  const system: AnthropicTextBlock[] = [];
  const turns: Turn[] = [];
  for (let i = 0; i < input.length; i++) {
    const m = input[i] as OpenAIMessage;
    const at = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        for (const text of texts(m.content)) if (text !== '') system.push({ type: 'text', text });
        break;
      case 'user':
        addTurn(turns, 'user', userBlocks(m.content, `${at}.content`));
        break;
      case 'assistant':
        addTurn(turns, 'assistant', assistantBlocks(m, at));
        break;
      case 'tool':
        addTurn(turns, 'user', [toolResult(m)]);
        break;
      default:
        throw invalid(`${at}.role`, `Unknown message role '${String((m as { role: unknown }).role)}'.`);
    }
  }
  return { system, messages: turns.map((t) => ({ role: t.role, content: simplify(t.blocks) })) };
}

/** Appends a turn, merged into the previous one of the same role; in a user turn, tool results come first. */
function addTurn(turns: Turn[], role: Turn['role'], blocks: AnthropicBlock[]): void {
  if (blocks.length === 0) return;
  const last = turns.at(-1);
  if (last === undefined || last.role !== role) {
    turns.push({ role, blocks });
    return;
  }
  for (const b of blocks) {
    if (b.type === 'tool_result') {
      const firstOther = last.blocks.findIndex((x) => x.type !== 'tool_result');
      if (firstOther !== -1) {
        last.blocks.splice(firstOther, 0, b);
        continue;
      }
    }
    last.blocks.push(b);
  }
}

/** One plain text block is sent as a string, as a client would write it. */
function simplify(blocks: AnthropicBlock[]): string | AnthropicBlock[] {
  const only = blocks.length === 1 ? blocks[0] : undefined;
  return only !== undefined && isPlainText(only) ? only.text : blocks;
}

function isPlainText(b: AnthropicBlock | undefined): b is AnthropicTextBlock {
  return b !== undefined && b.type === 'text' && Object.keys(b).length === 2;
}

function texts(content: string | readonly OpenAITextPart[]): string[] {
  return typeof content === 'string' ? [content] : content.map((p) => p.text);
}

function textBlocks(content: string | readonly OpenAITextPart[]): AnthropicTextBlock[] {
  const out: AnthropicTextBlock[] = [];
  for (const text of texts(content)) if (text !== '') out.push({ type: 'text', text });
  return out;
}

function userBlocks(content: string | readonly OpenAIUserPart[], at: string): AnthropicBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  const out: AnthropicBlock[] = [];
  for (let j = 0; j < content.length; j++) {
    const part = content[j] as OpenAIUserPart;
    switch (part.type) {
      case 'text':
        if (part.text !== '') out.push({ type: 'text', text: part.text });
        break;
      case 'image_url':
        out.push(imageBlock(part.image_url.url, `${at}[${j}].image_url.url`));
        break;
      default:
        throw unsupported(`${at}[${j}]`, UPSTREAM, `a content part of type ${String(part.type)}`);
    }
  }
  return out;
}

/** A data: URL becomes a base64 source, an http(s) URL a url source. */
export function imageBlock(url: string, at: string): AnthropicImageBlock {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',');
    const header = comma === -1 ? '' : url.slice(5, comma).toLowerCase();
    if (!header.endsWith(';base64')) throw invalid(at, 'An image data URL must be base64-encoded (data:image/png;base64,…).');
    const mediaType = header.slice(0, -';base64'.length);
    if (!IMAGE_TYPES.has(mediaType)) throw invalid(at, `Images for this model must be JPEG, PNG, GIF or WebP; got '${mediaType.slice(0, 40)}'.`);
    return { type: 'image', source: { type: 'base64', media_type: mediaType as AnthropicImageMediaType, data: url.slice(comma + 1) } };
  }
  if (url.startsWith('https://') || url.startsWith('http://')) return { type: 'image', source: { type: 'url', url } };
  throw invalid(at, 'An image URL must be an http(s) URL or a base64 data URL.');
}

function assistantBlocks(m: OpenAIAssistantMessage, at: string): AnthropicBlock[] {
  if (m['audio'] != null) throw unsupported(`${at}.audio`, UPSTREAM);
  if (m['function_call'] != null) throw unsupported(`${at}.function_call`, UPSTREAM, 'use tool_calls');
  const out: AnthropicBlock[] = [];
  const content = m.content;
  if (typeof content === 'string') {
    if (content !== '') out.push({ type: 'text', text: content });
  } else if (Array.isArray(content)) {
    for (const part of content) {
      const text = part.type === 'text' ? part.text : part.refusal;
      if (text !== '') out.push({ type: 'text', text });
    }
  }
  if (typeof m.refusal === 'string' && m.refusal !== '' && out.length === 0) out.push({ type: 'text', text: m.refusal });
  const calls = m.tool_calls ?? [];
  for (let j = 0; j < calls.length; j++) {
    const call = calls[j];
    if (call === undefined) continue;
    if (call.type !== 'function') throw unsupported(`${at}.tool_calls[${j}]`, UPSTREAM, `a tool call of type ${String(call.type)}`);
    const block: AnthropicToolUseBlock = {
      type: 'tool_use',
      id: anthropicToolId(call.id),
      name: call.function.name,
      input: toolInput(call.function.arguments, `${at}.tool_calls[${j}].function.arguments`),
    };
    out.push(block);
  }
  return out;
}

/** Tool call arguments as the object Anthropic wants; an empty string means no arguments. */
function toolInput(args: string, at: string): JsonObject {
  if (args.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw invalid(at, 'Tool call arguments must be a JSON object for this model; these are not valid JSON.');
  }
  if (!isObject(parsed)) throw invalid(at, 'Tool call arguments must be a JSON object for this model.');
  return parsed;
}

function toolResult(m: OpenAIToolMessage): AnthropicToolResultBlock {
  const block: AnthropicToolResultBlock = { type: 'tool_result', tool_use_id: anthropicToolId(m.tool_call_id) };
  if (typeof m.content === 'string') {
    if (m.content !== '') block.content = m.content;
  } else {
    const parts = textBlocks(m.content);
    if (parts.length > 0) block.content = parts;
  }
  return block;
}

// ── Tools ───────────────────────────────────────────────────────────────────

function convertTool(tool: OpenAITool, i: number): AnthropicTool {
  if (tool.type !== 'function') throw unsupported(`tools[${i}]`, UPSTREAM, `a tool of type ${String(tool.type)}`);
  const fn = tool.function;
  const params = fn.parameters ?? {};
  const out: AnthropicTool = { name: fn.name, input_schema: 'type' in params ? params : { type: 'object', ...params } };
  if (fn.description !== undefined) out.description = fn.description;
  if (fn.strict === true) out.strict = true;
  return out;
}

function convertToolChoice(choice: OpenAIToolChoice | undefined, noParallel: boolean): AnthropicToolChoice | null {
  const flag = noParallel ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined || choice === null) return noParallel ? { type: 'auto', ...flag } : null;
  if (choice === 'none') return { type: 'none' };
  if (choice === 'auto') return { type: 'auto', ...flag };
  if (choice === 'required') return { type: 'any', ...flag };
  if (choice.type === 'function') return { type: 'tool', name: choice.function.name, ...flag };
  throw unsupported('tool_choice', UPSTREAM, `type ${choice.type}`);
}
