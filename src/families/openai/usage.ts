/** Token usage as OpenAI-compatible servers report it (`usage.prompt_tokens`, `usage.completion_tokens`, `usage.prompt_tokens_details.cached_tokens`). */
import type { ReportedUsage } from '../../pipeline/usage.ts';

export type { ReportedUsage };

function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** Reads `usage` from a completion, chunk or embeddings object; null when absent or malformed. */
export function usageFrom(obj: unknown): ReportedUsage | null {
  if (typeof obj !== 'object' || obj === null) return null;
  const usage = (obj as Record<string, unknown>)['usage'];
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const prompt = count(u['prompt_tokens']);
  if (prompt === null) return null;
  const completion = count(u['completion_tokens']) ?? 0; // embeddings report none
  const details = u['prompt_tokens_details'];
  const cached = typeof details === 'object' && details !== null ? (count((details as Record<string, unknown>)['cached_tokens']) ?? 0) : 0;
  return { promptTokens: prompt, completionTokens: completion, cachedPromptTokens: Math.min(cached, prompt) };
}
