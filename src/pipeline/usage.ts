/** Token usage, as a model server reported it or as the gateway estimated it. */

export interface ReportedUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** `counted` when the model server reported it, `estimated` when we had to guess. */
  source: 'counted' | 'estimated';
}

/** Rough tokens-from-characters ratio for English text; used only when nothing was counted. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}
