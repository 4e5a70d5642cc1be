/**
 * The request parameters a model's transforms may set (routing snapshot
 * `transforms.defaults` and `transforms.forced`): an allowlist of well-known
 * sampling and length parameters, each with the values it takes and the
 * endpoints it applies to, named as in the client's API. Plain data: the
 * snapshot schema (src/control/snapshot.ts) validates with it, and each
 * family's request applies it (./transforms.ts).
 *
 * A parameter only some APIs have applies only to their endpoints:
 * `reasoning_effort`, `seed` and the penalties are OpenAI's, `top_k` is
 * Anthropic's. `max_tokens` is the completion allowance of every endpoint
 * that generates (in OpenAI chat, whichever of `max_tokens` and
 * `max_completion_tokens` the client sent).
 */
import * as z from 'zod';

export type TransformValue = number | string;

export interface TransformParamSpec {
  readonly value: z.ZodType<TransformValue>;
  /** The endpoints whose bodies take it. */
  readonly endpoints: readonly string[];
  /**
   * Whether an Anthropic Messages body can carry this value: Anthropic's own
   * bounds (`temperature` at most 1), and what translating OpenAI chat to an
   * Anthropic deployment accepts (src/families/translate/request-openai-to-anthropic.ts).
   */
  readonly anthropic: (value: TransformValue) => boolean;
}

const GENERATING = ['chat', 'completions', 'messages'] as const;
const OPENAI = ['chat', 'completions'] as const;
const always = (): boolean => true;
const penalty: TransformParamSpec = { value: z.number().min(-2).max(2), endpoints: OPENAI, anthropic: (v) => v === 0 };

export const TRANSFORM_PARAMS = {
  max_tokens: { value: z.int().min(1).max(10_000_000), endpoints: GENERATING, anthropic: always },
  temperature: { value: z.number().min(0).max(2), endpoints: GENERATING, anthropic: (v) => typeof v === 'number' && v <= 1 },
  top_p: { value: z.number().min(0).max(1), endpoints: GENERATING, anthropic: always },
  top_k: { value: z.int().min(0).max(1_000_000), endpoints: ['messages'], anthropic: always },
  // Dropped when translated to Anthropic (best-effort determinism only).
  seed: { value: z.int(), endpoints: OPENAI, anthropic: always },
  presence_penalty: penalty,
  frequency_penalty: penalty,
  reasoning_effort: { value: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']), endpoints: ['chat'], anthropic: () => false },
} as const satisfies Readonly<Record<string, TransformParamSpec>>;

export type TransformParamName = keyof typeof TRANSFORM_PARAMS;

export const TRANSFORM_PARAM_NAMES = Object.keys(TRANSFORM_PARAMS) as TransformParamName[];

/** The parameters that apply to an endpoint. */
export function transformParamsOf(endpoint: string): TransformParamName[] {
  return TRANSFORM_PARAM_NAMES.filter((p) => (TRANSFORM_PARAMS[p].endpoints as readonly string[]).includes(endpoint));
}
