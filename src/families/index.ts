/**
 * The API families this gateway serves, in the order their paths are tried.
 * A new family is a sibling folder of ./openai plus one line here (and its
 * endpoint table in ./endpoints.ts). Anthropic comes first: it claims the
 * shared `GET /v1/models` only for clients that send `anthropic-version`.
 */
import type { ApiFamily } from '../pipeline/ports.ts';
import { anthropicFamily } from './anthropic/family.ts';
import { openAIFamily } from './openai/family.ts';

export const API_FAMILIES: readonly ApiFamily[] = [anthropicFamily, openAIFamily];

/** Errors for paths no family serves are OpenAI-shaped, unless the client is recognisably another family's. */
export const DEFAULT_FAMILY: ApiFamily = openAIFamily;
