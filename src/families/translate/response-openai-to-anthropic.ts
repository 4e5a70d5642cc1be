/**
 * A buffered OpenAI chat completion as an Anthropic message: the first
 * choice's text (or refusal) as a text block, its tool calls as tool_use
 * blocks (arguments parsed: Anthropic's input is an object), the finish
 * reason as `stop_reason`, usage with cached prompt tokens as
 * `cache_read_input_tokens`. Arguments that are not a JSON object cannot be
 * expressed: a TranslationError (502). What is missing reads as empty.
 */
import { isObject } from '../../shared/values.ts';
import type { AnthropicMessage, AnthropicResponseBlock } from './anthropic-types.ts';
import { anthropicToolId, derivedId } from './ids.ts';
import type { JsonObject } from './openai-types.ts';
import { stopReasonFromOpenAI } from './reasons.ts';
import { TranslationError } from './translation-error.ts';
import { anthropicUsageFromOpenAI } from './usage.ts';

export function openAIChatResponseToAnthropic(body: object, clientModel: string): AnthropicMessage {
  const resp = body as JsonObject; // the upstream's JSON: every field is checked before use
  const choices = Array.isArray(resp['choices']) ? (resp['choices'] as unknown[]) : [];
  const choice = choices.find((c) => isObject(c) && (c['index'] ?? 0) === 0) ?? choices[0];
  const c = isObject(choice) ? choice : {};
  const message = isObject(c['message']) ? c['message'] : {};
  const id = typeof resp['id'] === 'string' ? resp['id'] : derivedId('msg_', JSON.stringify(resp));
  const content: AnthropicResponseBlock[] = [];
  const text = textOf(message['content']);
  if (text !== '') content.push({ type: 'text', text });
  else if (typeof message['refusal'] === 'string' && message['refusal'] !== '') content.push({ type: 'text', text: message['refusal'] });
  const calls = Array.isArray(message['tool_calls']) ? (message['tool_calls'] as unknown[]) : [];
  calls.forEach((call, i) => {
    if (!isObject(call) || !isObject(call['function'])) return;
    const fn = call['function'];
    const callId = typeof call['id'] === 'string' && call['id'] !== '' ? call['id'] : `${id}_${i}`;
    content.push({ type: 'tool_use', id: anthropicToolId(callId), name: typeof fn['name'] === 'string' ? fn['name'] : '', input: toolInput(fn['arguments']) });
  });
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: clientModel,
    content,
    stop_reason: stopReasonFromOpenAI(c['finish_reason']),
    stop_sequence: null,
    usage: anthropicUsageFromOpenAI(resp['usage']) ?? { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

/** Message content as text: a string, or the texts of an array of parts. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const p of content) if (isObject(p) && typeof p['text'] === 'string') text += p['text'];
  return text;
}

function toolInput(args: unknown): JsonObject {
  if (args === undefined || args === null || (typeof args === 'string' && args.trim() === '')) return {};
  if (isObject(args)) return args; // some servers send an object
  let parsed: unknown;
  try {
    parsed = typeof args === 'string' ? JSON.parse(args) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!isObject(parsed)) throw new TranslationError('untranslatable_response', 'The model returned tool call arguments that are not a JSON object.');
  return parsed;
}
