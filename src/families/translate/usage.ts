/**
 * Token usage in each API's words. Anthropic counts cached prompt tokens
 * apart from `input_tokens` (cache reads and cache writes); OpenAI's
 * `prompt_tokens` includes them, with the cache reads repeated in
 * `prompt_tokens_details.cached_tokens`. OpenAI has no word for cache
 * writes: going that way they are plain prompt tokens.
 */
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { isObject } from '../../shared/values.ts';
import type { AnthropicUsage } from './anthropic-types.ts';
import type { OpenAIUsage } from './openai-types.ts';

/** A token count, or null when absent or not a count. */
export function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** Anthropic's usage counters, each 0 when absent; prompt = every prompt token, cached or not. */
export interface AnthropicCounts {
  readonly input: number;
  readonly cacheRead: number;
  readonly cacheCreation: number;
  readonly output: number;
}

export function anthropicCounts(usage: unknown, into?: AnthropicCounts): AnthropicCounts {
  const u = isObject(usage) ? usage : {};
  return {
    input: count(u['input_tokens']) ?? into?.input ?? 0,
    cacheRead: count(u['cache_read_input_tokens']) ?? into?.cacheRead ?? 0,
    cacheCreation: count(u['cache_creation_input_tokens']) ?? into?.cacheCreation ?? 0,
    output: count(u['output_tokens']) ?? into?.output ?? 0,
  };
}

export function openAIUsageFromCounts(c: AnthropicCounts): OpenAIUsage {
  const prompt = c.input + c.cacheRead + c.cacheCreation;
  return { prompt_tokens: prompt, completion_tokens: c.output, total_tokens: prompt + c.output, prompt_tokens_details: { cached_tokens: c.cacheRead } };
}

export function reportedFromCounts(c: AnthropicCounts): ReportedUsage {
  return { promptTokens: c.input + c.cacheRead + c.cacheCreation, completionTokens: c.output, cachedPromptTokens: c.cacheRead };
}

/** OpenAI's usage object as Anthropic's; null when there is none to read. */
export function anthropicUsageFromOpenAI(usage: unknown): AnthropicUsage | null {
  if (!isObject(usage)) return null;
  const prompt = count(usage['prompt_tokens']);
  if (prompt === null) return null;
  const details = usage['prompt_tokens_details'];
  const cached = Math.min(prompt, (isObject(details) ? count(details['cached_tokens']) : null) ?? 0);
  return {
    input_tokens: prompt - cached,
    output_tokens: count(usage['completion_tokens']) ?? 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}
