/**
 * The API families this gateway serves, in the order their paths are tried.
 * A new family is a sibling folder of ./openai plus one line here (and its
 * endpoint table in ./endpoints.ts).
 */
import type { ApiFamily } from '../pipeline/ports.ts';
import { openAIFamily } from './openai/family.ts';

export const API_FAMILIES: readonly ApiFamily[] = [openAIFamily];
