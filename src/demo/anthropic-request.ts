// Reading an Anthropic Messages request body for the demo model server:
// validation (a RequestError with Anthropic-style "<field path>: <problem>"
// messages) and the few facts the reply is built from.
//
// Input-token rule (usage.input_tokens and /v1/messages/count_tokens): the
// tokens (./tokens.ts) of the system prompt's text, plus, in every message,
// the string content or the text of its `text` blocks, the text of its
// `tool_result` blocks, and the JSON text of its `tool_use` inputs. Images,
// documents, thinking and other blocks count 0; so do tool definitions.
//
// Validation follows the real API where it is cheap and catches a broken
// translation: `model` and (for /v1/messages) `max_tokens` are required,
// roles are user/assistant (or system, text only), every message but a final
// assistant one has non-empty content, tool_use blocks only in assistant
// turns and tool_result blocks only in user turns, and tool_choice must name a
// declared tool. Unknown block types and unknown fields are accepted.

import { countTokens } from './tokens.ts';
import { RequestError } from './http.ts';
import { isObject } from '../shared/values.ts';

type Json = Record<string, unknown>;

export interface ToolDef {
  name: string;
  /** The custom tool's input_schema (absent for server tools). */
  inputSchema: Json | undefined;
}

export type ToolChoiceType = 'auto' | 'any' | 'tool' | 'none';

export interface AnthropicPrompt {
  inputTokens: number;
  /** All the text of the last user message (text blocks and tool results), joined by spaces: what the reply echoes. */
  lastUserText: string;
  /** Only the last user message's own text (no tool results): what the tool triggers look at. */
  lastUserAsk: string;
  /** Whether the last user message carries a tool_result block (the answer to an earlier tool call). */
  answersTool: boolean;
}

export interface MessagesRequest {
  model: string;
  maxTokens: number;
  stream: boolean;
  stopSequences: string[];
  tools: ToolDef[];
  toolChoice: { type: ToolChoiceType; name: string | undefined };
  prompt: AnthropicPrompt;
}

function invalid(path: string, problem: string): RequestError {
  return new RequestError(400, `${path}: ${problem}`, path);
}

function requiredString(body: Json, name: string): string {
  const v = body[name];
  if (v === undefined) throw invalid(name, 'Field required');
  if (typeof v !== 'string' || v === '') throw invalid(name, 'Input should be a non-empty string');
  return v;
}

function optionalNumber(body: Json, name: string, min: number, max: number, integer = false): void {
  const v = body[name];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw invalid(name, `Input should be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
}

/** Texts of a `system` prompt or system message: a string, or text blocks. */
function systemTexts(v: unknown, path: string): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) throw invalid(path, 'Input should be a string or an array of text blocks');
  return v.map((block: unknown, i) => {
    if (!isObject(block) || block['type'] !== 'text' || typeof block['text'] !== 'string') {
      throw invalid(`${path}.${i}`, "Input should be a text block ({type: 'text', text})");
    }
    return block['text'];
  });
}

function toolResultTexts(v: unknown, path: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) throw invalid(path, 'Input should be a string or an array of content blocks');
  const out: string[] = [];
  v.forEach((block: unknown, i) => {
    if (!isObject(block) || typeof block['type'] !== 'string') throw invalid(`${path}.${i}`, 'Input should be a content block with a type');
    if (block['type'] === 'text') {
      if (typeof block['text'] !== 'string') throw invalid(`${path}.${i}.text`, 'Field required');
      out.push(block['text']);
    }
  });
  return out;
}

interface MessageTexts {
  /** Everything that counts as input tokens. */
  counted: string[];
  /** Text and tool_result text: what a reply echoes. */
  said: string[];
  /** Only text blocks (or string content). */
  asked: string[];
  answersTool: boolean;
}

function messageTexts(role: string, content: unknown, path: string): MessageTexts {
  if (typeof content === 'string') return { counted: [content], said: [content], asked: [content], answersTool: false };
  if (!Array.isArray(content)) throw invalid(path, 'Input should be a string or an array of content blocks');
  const out: MessageTexts = { counted: [], said: [], asked: [], answersTool: false };
  content.forEach((block: unknown, i) => {
    const at = `${path}.${i}`;
    if (!isObject(block) || typeof block['type'] !== 'string') throw invalid(at, 'Input should be a content block with a type');
    switch (block['type']) {
      case 'text': {
        const text = block['text'];
        if (typeof text !== 'string') throw invalid(`${at}.text`, 'Field required');
        out.counted.push(text);
        out.said.push(text);
        out.asked.push(text);
        break;
      }
      case 'image':
        if (!isObject(block['source'])) throw invalid(`${at}.source`, 'Field required');
        break;
      case 'tool_use':
        if (role !== 'assistant') throw invalid(at, 'tool_use blocks are only allowed in assistant messages');
        if (typeof block['id'] !== 'string' || block['id'] === '') throw invalid(`${at}.id`, 'Field required');
        if (typeof block['name'] !== 'string' || block['name'] === '') throw invalid(`${at}.name`, 'Field required');
        if (!isObject(block['input'])) throw invalid(`${at}.input`, 'Input should be an object');
        out.counted.push(JSON.stringify(block['input']));
        break;
      case 'tool_result': {
        if (role !== 'user') throw invalid(at, 'tool_result blocks are only allowed in user messages');
        if (typeof block['tool_use_id'] !== 'string' || block['tool_use_id'] === '') throw invalid(`${at}.tool_use_id`, 'Field required');
        const texts = toolResultTexts(block['content'], `${at}.content`);
        out.counted.push(...texts);
        out.said.push(...texts);
        out.answersTool = true;
        break;
      }
      default:
        // document, thinking, search results, server tool blocks...: passed through, 0 tokens.
        break;
    }
  });
  return out;
}

/** Validate `system` + `messages` and gather what the reply and the token counts need. */
export function readPrompt(body: Json): AnthropicPrompt {
  let inputTokens = 0;
  const system = body['system'];
  if (system !== undefined && system !== null) {
    for (const t of systemTexts(system, 'system')) inputTokens += countTokens(t);
  }
  const messages = body['messages'];
  if (messages === undefined) throw invalid('messages', 'Field required');
  if (!Array.isArray(messages)) throw invalid('messages', 'Input should be a valid list');
  if (messages.length === 0) throw invalid('messages', 'at least one message is required');
  let last: { said: string; ask: string; answersTool: boolean } | undefined;
  let lastAny = '';
  messages.forEach((m: unknown, i) => {
    const at = `messages.${i}`;
    if (!isObject(m)) throw invalid(at, 'Input should be an object');
    const role = m['role'];
    const content = m['content'];
    if (role !== 'user' && role !== 'assistant' && role !== 'system') throw invalid(`${at}.role`, "Input should be 'user', 'assistant' or 'system'");
    if (content === undefined) throw invalid(`${at}.content`, 'Field required');
    const finalAssistant = role === 'assistant' && i === messages.length - 1;
    if (!finalAssistant && (content === '' || (Array.isArray(content) && content.length === 0))) {
      throw invalid(`${at}.content`, 'all messages must have non-empty content except for the optional final assistant message');
    }
    if (role === 'system') {
      for (const t of systemTexts(content, `${at}.content`)) inputTokens += countTokens(t);
      return;
    }
    const texts = messageTexts(role, content, `${at}.content`);
    for (const t of texts.counted) inputTokens += countTokens(t);
    lastAny = texts.said.join(' ');
    if (role === 'user') last = { said: lastAny, ask: texts.asked.join(' '), answersTool: texts.answersTool };
  });
  return {
    inputTokens,
    lastUserText: last?.said ?? lastAny,
    lastUserAsk: last?.ask ?? '',
    answersTool: last?.answersTool ?? false,
  };
}

function readTools(body: Json): ToolDef[] {
  const tools = body['tools'];
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw invalid('tools', 'Input should be a valid list');
  const seen = new Set<string>();
  return tools.map((tool: unknown, i) => {
    const at = `tools.${i}`;
    if (!isObject(tool)) throw invalid(at, 'Input should be an object');
    const name = tool['name'];
    if (typeof name !== 'string' || name === '') throw invalid(`${at}.name`, 'Field required');
    if (seen.has(name)) throw invalid('tools', `Tool names must be unique (${name})`);
    seen.add(name);
    const custom = tool['type'] === undefined || tool['type'] === null || tool['type'] === 'custom';
    const schema = tool['input_schema'];
    if (custom && !isObject(schema)) throw invalid(`${at}.input_schema`, 'Field required');
    return { name, inputSchema: isObject(schema) ? schema : undefined };
  });
}

function readToolChoice(body: Json, tools: ToolDef[]): MessagesRequest['toolChoice'] {
  const choice = body['tool_choice'];
  if (choice === undefined || choice === null) return { type: 'auto', name: undefined };
  const type = isObject(choice) ? choice['type'] : undefined;
  if (type !== 'auto' && type !== 'any' && type !== 'tool' && type !== 'none') {
    throw invalid('tool_choice.type', "Input should be 'auto', 'any', 'tool' or 'none'");
  }
  if ((type === 'any' || type === 'tool') && tools.length === 0) throw invalid('tool_choice', `tool_choice.type '${type}' requires tools`);
  if (type !== 'tool') return { type, name: undefined };
  const name = isObject(choice) ? choice['name'] : undefined;
  if (typeof name !== 'string' || !tools.some((t) => t.name === name)) throw invalid('tool_choice.name', 'Input should name one of the tools');
  return { type, name };
}

/** Validate a POST /v1/messages body. */
export function readMessagesRequest(body: Json): MessagesRequest {
  const model = requiredString(body, 'model');
  const maxTokens = body['max_tokens'];
  if (maxTokens === undefined) throw invalid('max_tokens', 'Field required');
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw invalid('max_tokens', 'Input should be an integer greater than or equal to 1');
  }
  const prompt = readPrompt(body);
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw invalid('stream', 'Input should be a valid boolean');
  const stops = body['stop_sequences'];
  if (stops !== undefined && stops !== null && !(Array.isArray(stops) && stops.every((s) => typeof s === 'string' && s !== ''))) {
    throw invalid('stop_sequences', 'Input should be a list of non-empty strings');
  }
  const metadata = body['metadata'];
  if (metadata !== undefined && metadata !== null) {
    const userId = isObject(metadata) ? metadata['user_id'] : undefined;
    if (!isObject(metadata) || (userId !== undefined && userId !== null && typeof userId !== 'string')) {
      throw invalid('metadata', 'Input should be an object with an optional string user_id');
    }
  }
  optionalNumber(body, 'temperature', 0, 1);
  optionalNumber(body, 'top_p', 0, 1);
  optionalNumber(body, 'top_k', 0, Number.MAX_SAFE_INTEGER, true);
  const tools = readTools(body);
  return {
    model,
    maxTokens,
    stream: stream === true,
    stopSequences: Array.isArray(stops) ? (stops as string[]) : [],
    tools,
    toolChoice: readToolChoice(body, tools),
    prompt,
  };
}

/** Validate a POST /v1/messages/count_tokens body (no max_tokens) and count its input tokens. */
export function readCountTokensRequest(body: Json): number {
  requiredString(body, 'model');
  const prompt = readPrompt(body);
  readToolChoice(body, readTools(body));
  return prompt.inputTokens;
}
