/**
 * Why generation stopped, in each API's words. Anthropic says more than
 * OpenAI (a stop sequence and the natural end are both `stop`), so the way
 * back picks the most likely one.
 */
import type { AnthropicStopReason } from './anthropic-types.ts';
import type { OpenAIFinishReason } from './openai-types.ts';

const TO_OPENAI: Readonly<Record<AnthropicStopReason, OpenAIFinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  // A server-tool loop paused: the turn ended, the client may continue it.
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

const TO_ANTHROPIC: Readonly<Record<OpenAIFinishReason, AnthropicStopReason>> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

/** An Anthropic stop_reason as OpenAI's finish_reason; null (still running) stays null, a reason this version does not know ends the turn. */
export function finishReasonFromAnthropic(reason: unknown): OpenAIFinishReason | null {
  if (reason === null || reason === undefined) return null;
  return typeof reason === 'string' && Object.hasOwn(TO_OPENAI, reason) ? TO_OPENAI[reason as AnthropicStopReason] : 'stop';
}

/** An OpenAI finish_reason as Anthropic's stop_reason; null stays null, a reason this version does not know ends the turn. */
export function stopReasonFromOpenAI(reason: unknown): AnthropicStopReason | null {
  if (reason === null || reason === undefined) return null;
  return typeof reason === 'string' && Object.hasOwn(TO_ANTHROPIC, reason) ? TO_ANTHROPIC[reason as OpenAIFinishReason] : 'end_turn';
}
