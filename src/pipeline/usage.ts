/** Token usage, as a model server reported it or as the gateway estimated it. */

export interface ReportedUsage {
  /** Every prompt token the model read, cached or not. */
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Of promptTokens, those read from the provider's prompt cache (priced apart: src/pipeline/cost.ts); 0 when not reported. */
  readonly cachedPromptTokens: number;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedPromptTokens: number;
  /** `counted` when the model server reported it, `estimated` when we had to guess. */
  source: 'counted' | 'estimated';
}

/** Rough tokens-from-characters ratio for English text; used only when nothing was counted. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}
