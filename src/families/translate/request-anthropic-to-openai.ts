/**
 * An Anthropic Messages request (validated by the caller) as an OpenAI Chat
 * Completions request.
 *
 * - `system` becomes the first message; a `system` turn stays where it is;
 * - a user turn's `tool_result` blocks become `tool` messages, sent before
 *   the rest of the turn (OpenAI wants them right after the tool calls);
 * - `tool_use` blocks become the assistant's `tool_calls` (input as JSON);
 * - thinking blocks in the history are left out (OpenAI has no place for
 *   them, and a model reads its own past turns without them);
 * - `is_error` on a tool result is left out: OpenAI's tool message has no
 *   such flag (the result's text is sent as is);
 * - `stream: true` also asks for `stream_options.include_usage`, so the
 *   stream's usage can be counted and reported back;
 * - `top_k` is sent as is: OpenAI-compatible servers (vLLM…) accept it;
 * - a parameter without an OpenAI equivalent is refused by name.
 */
import { isObject } from '../../shared/values.ts';
import type { AnthropicBlock, AnthropicMessageParam, AnthropicMessagesRequest, AnthropicTool, AnthropicToolChoice } from './anthropic-types.ts';
import type {
  OpenAIAssistantPart,
  OpenAIChatRequest,
  OpenAIFunctionTool,
  OpenAIMessage,
  OpenAITextPart,
  OpenAIToolCall,
  OpenAIToolChoice,
  OpenAIUserPart,
} from './openai-types.ts';
import { checkParams, type ParamTable } from './params.ts';
import { invalid, unsupported } from './translation-error.ts';

const UPSTREAM = 'OpenAI Chat Completions';

const PARAMS: ParamTable = {
  model: 'mapped',
  messages: 'mapped',
  max_tokens: 'mapped',
  system: 'mapped',
  stop_sequences: 'mapped',
  temperature: 'mapped',
  top_p: 'mapped',
  top_k: 'mapped',
  stream: 'mapped',
  tools: 'mapped',
  tool_choice: 'mapped',
  metadata: 'mapped',
  // Harmless: the message the client receives is the same without them.
  service_tier: 'dropped',
  cache_control: 'dropped', // a prompt-caching hint
  // Accepted at their neutral value only.
  thinking: (v) => isObject(v) && v['type'] === 'disabled',
  speed: (v) => v === 'standard',
};

/** Fields of a client tool; cache and streaming hints are dropped, anything else is refused. */
const TOOL_FIELDS: ParamTable = {
  name: 'mapped',
  description: 'mapped',
  input_schema: 'mapped',
  strict: 'mapped',
  type: 'mapped',
  cache_control: 'dropped',
  eager_input_streaming: 'dropped',
};

export function anthropicToOpenAIChat(req: AnthropicMessagesRequest, upstreamModel: string): OpenAIChatRequest {
  checkParams(req, PARAMS, UPSTREAM);
  const messages: OpenAIMessage[] = [];
  if (req.system != null) {
    const content = textContent(typeof req.system === 'string' ? [req.system] : req.system.map((b) => b.text));
    if (content !== null) messages.push({ role: 'system', content });
  }
  for (let i = 0; i < req.messages.length; i++) convertMessage(req.messages[i] as AnthropicMessageParam, `messages[${i}]`, messages);
  const out: OpenAIChatRequest = { model: upstreamModel, messages, max_tokens: req.max_tokens };
  if (req.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  if (req.stop_sequences != null && req.stop_sequences.length > 0) out.stop = req.stop_sequences;
  if (req.temperature != null) out.temperature = req.temperature;
  if (req.top_p != null) out.top_p = req.top_p;
  if (req.top_k != null) out.top_k = req.top_k;
  const tools = req.tools == null ? [] : req.tools.map(convertTool);
  if (tools.length > 0) out.tools = tools;
  if (req.tool_choice != null) {
    out.tool_choice = convertToolChoice(req.tool_choice);
    if ('disable_parallel_tool_use' in req.tool_choice && req.tool_choice.disable_parallel_tool_use === true && tools.length > 0)
      out.parallel_tool_calls = false;
  }
  const userId = req.metadata?.user_id;
  if (typeof userId === 'string' && userId !== '') out.user = userId;
  return out;
}

// ── Messages ────────────────────────────────────────────────────────────────

function convertMessage(m: AnthropicMessageParam, at: string, out: OpenAIMessage[]): void {
  if (m.role === 'system') {
    const content = textContent(typeof m.content === 'string' ? [m.content] : m.content.map((b, j) => textOf(b, `${at}.content[${j}]`)));
    if (content !== null) out.push({ role: 'system', content });
    return;
  }
  if (typeof m.content === 'string') {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.content !== '') out.push({ role: 'assistant', content: m.content });
    return;
  }
  if (m.role === 'user') userTurn(m.content, at, out);
  else if (m.role === 'assistant') assistantTurn(m.content, at, out);
  else throw invalid(`${at}.role`, `Unknown message role '${String((m as { role: unknown }).role)}'.`);
}

/** Tool results first, as `tool` messages; then the rest of the turn as one user message. */
function userTurn(blocks: readonly AnthropicBlock[], at: string, out: OpenAIMessage[]): void {
  const parts: OpenAIUserPart[] = [];
  for (let j = 0; j < blocks.length; j++) {
    const b = blocks[j] as AnthropicBlock;
    const here = `${at}.content[${j}]`;
    switch (b.type) {
      case 'text':
        parts.push({ type: 'text', text: b.text });
        break;
      case 'image':
        parts.push({ type: 'image_url', image_url: { url: imageUrl(b.source, `${here}.source`) } });
        break;
      case 'tool_result':
        out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: toolResultContent(b.content, `${here}.content`) ?? '' });
        break;
      default:
        throw unsupported(here, UPSTREAM, `a content block of type ${String(b.type)}`);
    }
  }
  if (parts.length === 0) return;
  const only = parts.length === 1 ? parts[0] : undefined;
  out.push({ role: 'user', content: only?.type === 'text' ? only.text : parts });
}

function assistantTurn(blocks: readonly AnthropicBlock[], at: string, out: OpenAIMessage[]): void {
  const texts: string[] = [];
  const calls: OpenAIToolCall[] = [];
  for (let j = 0; j < blocks.length; j++) {
    const b = blocks[j] as AnthropicBlock;
    switch (b.type) {
      case 'text':
        texts.push(b.text);
        break;
      case 'tool_use':
        calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        break;
      case 'thinking':
      case 'redacted_thinking':
        break;
      default:
        throw unsupported(`${at}.content[${j}]`, UPSTREAM, `a content block of type ${String(b.type)}`);
    }
  }
  const content: string | OpenAIAssistantPart[] | null = textContent(texts);
  if (content === null && calls.length === 0) return;
  out.push(calls.length === 0 ? { role: 'assistant', content } : { role: 'assistant', content, tool_calls: calls });
}

/** Texts as OpenAI content: one text as a string, several as text parts; null when there is no text. */
function textContent(texts: readonly string[]): string | OpenAITextPart[] | null {
  const kept = texts.filter((t) => t !== '');
  if (kept.length === 0) return null;
  return kept.length === 1 ? (kept[0] as string) : kept.map((text) => ({ type: 'text', text }));
}

function textOf(b: AnthropicBlock, at: string): string {
  if (b.type !== 'text') throw unsupported(at, UPSTREAM, `a system block of type ${String(b.type)}`);
  return b.text;
}

function toolResultContent(content: AnthropicBlock[] | string | undefined, at: string): string | OpenAITextPart[] | null {
  if (content === undefined) return null;
  if (typeof content === 'string') return content;
  return textContent(content.map((b, k) => (b.type === 'text' ? b.text : unsupportedInResult(b, `${at}[${k}]`))));
}

function unsupportedInResult(b: AnthropicBlock, at: string): never {
  throw unsupported(at, UPSTREAM, `a ${String(b.type)} block inside a tool result`);
}

/** A base64 source becomes a data: URL; a url source stays a URL. */
function imageUrl(source: unknown, at: string): string {
  if (isObject(source)) {
    if (source['type'] === 'base64' && typeof source['media_type'] === 'string' && typeof source['data'] === 'string') {
      return `data:${source['media_type']};base64,${source['data']}`;
    }
    if (source['type'] === 'url' && typeof source['url'] === 'string') return source['url'];
  }
  throw unsupported(at, UPSTREAM, `an image source of type ${String(isObject(source) ? source['type'] : source)}`);
}

// ── Tools ───────────────────────────────────────────────────────────────────

function convertTool(tool: AnthropicTool, i: number): OpenAIFunctionTool {
  if (tool.type != null && tool.type !== 'custom') throw unsupported(`tools[${i}]`, UPSTREAM, `the server tool ${tool.type}`);
  for (const key of Object.keys(tool)) {
    if (tool[key] != null && !Object.hasOwn(TOOL_FIELDS, key)) throw unsupported(`tools[${i}].${key}`, UPSTREAM);
  }
  const fn: OpenAIFunctionTool['function'] = { name: tool.name, parameters: tool.input_schema };
  if (tool.description !== undefined) fn.description = tool.description;
  if (tool.strict === true) fn.strict = true;
  return { type: 'function', function: fn };
}

function convertToolChoice(choice: AnthropicToolChoice): OpenAIToolChoice {
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return { type: 'function', function: { name: choice.name } };
    default:
      throw unsupported('tool_choice', UPSTREAM, `type ${String((choice as { type: unknown }).type)}`);
  }
}
