/**
 * Token usage as Anthropic reports it. Cached prompt tokens are reported
 * apart from `input_tokens` (`cache_read_input_tokens`,
 * `cache_creation_input_tokens`); all of them are prompt the model read, so
 * quotas and metrics count them as prompt tokens.
 */
import type { ReportedUsage } from '../../pipeline/usage.ts';

function count(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

/** Prompt tokens of a usage object (input + cache read + cache creation); null when it has no input_tokens. */
export function promptTokensOf(usage: unknown): number | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  if (typeof u['input_tokens'] !== 'number') return null;
  return count(u['input_tokens']) + count(u['cache_read_input_tokens']) + count(u['cache_creation_input_tokens']);
}

/** Prompt tokens read from the prompt cache (`cache_read_input_tokens`); 0 when absent. */
export function cachedTokensOf(usage: unknown): number {
  return typeof usage === 'object' && usage !== null ? count((usage as Record<string, unknown>)['cache_read_input_tokens']) : 0;
}

/** Reads `usage` from a message; null when absent or malformed. */
export function usageFromMessage(obj: unknown): ReportedUsage | null {
  if (typeof obj !== 'object' || obj === null) return null;
  const usage = (obj as Record<string, unknown>)['usage'];
  const prompt = promptTokensOf(usage);
  if (prompt === null) return null;
  return { promptTokens: prompt, completionTokens: count((usage as Record<string, unknown>)['output_tokens']), cachedPromptTokens: cachedTokensOf(usage) };
}
