/**
 * A buffered Anthropic message as an OpenAI chat completion: text blocks
 * joined into `content`, tool_use blocks as `tool_calls`, the stop reason as
 * `finish_reason`, usage with cached prompt tokens folded into
 * `prompt_tokens`. Thinking blocks have no place in OpenAI's message and are
 * left out. The upstream's body is not trusted to be well formed: what is
 * missing reads as empty.
 */
import { isObject } from '../../shared/values.ts';
import { derivedId } from './ids.ts';
import type { JsonObject, OpenAIChatCompletion, OpenAIResponseMessage, OpenAIToolCall } from './openai-types.ts';
import { finishReasonFromAnthropic } from './reasons.ts';
import { anthropicCounts, openAIUsageFromCounts } from './usage.ts';

export interface ResponseOptions {
  /** `created` (epoch seconds); now by default. Anthropic's messages carry no time. */
  readonly created?: number;
}

export function anthropicResponseToOpenAIChat(body: object, clientModel: string, opts: ResponseOptions = {}): OpenAIChatCompletion {
  const resp = body as JsonObject; // the upstream's JSON: every field is checked before use
  const blocks = Array.isArray(resp['content']) ? (resp['content'] as unknown[]) : [];
  let text = '';
  let sawText = false;
  const calls: OpenAIToolCall[] = [];
  for (const b of blocks) {
    if (!isObject(b)) continue;
    if (b['type'] === 'text' && typeof b['text'] === 'string') {
      text += b['text'];
      sawText = true;
    } else if (b['type'] === 'tool_use') {
      const id = typeof b['id'] === 'string' ? b['id'] : `call_${calls.length}`;
      calls.push({ id, type: 'function', function: { name: typeof b['name'] === 'string' ? b['name'] : '', arguments: JSON.stringify(b['input'] ?? {}) } });
    }
  }
  const message: OpenAIResponseMessage = { role: 'assistant', content: sawText || calls.length === 0 ? text : null, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  const out: OpenAIChatCompletion = {
    id: typeof resp['id'] === 'string' ? resp['id'] : derivedId('chatcmpl-', JSON.stringify(resp)),
    object: 'chat.completion',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: clientModel,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonFromAnthropic(resp['stop_reason']) }],
  };
  if (isObject(resp['usage'])) out.usage = openAIUsageFromCounts(anthropicCounts(resp['usage']));
  return out;
}
