/**
 * The catalogue of endpoint names across every API family, for the schemas
 * that refer to endpoints by name (config allowlists and rules, API key
 * records, routing snapshots). Each family's endpoint table is plain data,
 * so importing this loads no family code. A new family adds its table here
 * and its implementation in ./index.ts (test/families/registry.test.ts
 * checks the two agree).
 */
import type { EndpointSpec } from '../pipeline/endpoint.ts';
import { ANTHROPIC_ENDPOINTS } from './anthropic/endpoints.ts';
import { OPENAI_ENDPOINTS } from './openai/endpoints.ts';

/** Each family's endpoints, by the family's name (which is also the provider schema of deployments that speak it). */
export const FAMILY_ENDPOINTS: ReadonlyMap<string, readonly EndpointSpec[]> = new Map<string, readonly EndpointSpec[]>([
  ['openai', OPENAI_ENDPOINTS],
  ['anthropic', ANTHROPIC_ENDPOINTS],
]);

export const ENDPOINT_TABLES: readonly (readonly EndpointSpec[])[] = [...FAMILY_ENDPOINTS.values()];

/** The API schemas a deployment can speak: `openai` (vLLM, TGI, OpenAI-compatible servers) and `anthropic`. */
export const PROVIDERS = [...FAMILY_ENDPOINTS.keys()] as [string, ...string[]];

/**
 * Endpoints a provider serves through translation (src/families/translate):
 * OpenAI's chat completions and Anthropic's messages, each from the other.
 * Completions, embeddings and token counting have no counterpart.
 */
const TRANSLATED: ReadonlyMap<string, readonly string[]> = new Map([
  ['anthropic', ['chat']],
  ['openai', ['messages']],
]);

/** Whether a deployment speaking `provider` serves `endpoint`: in its own API, or translated. */
export function providerServes(provider: string, endpoint: string): boolean {
  return (FAMILY_ENDPOINTS.get(provider)?.some((e) => e.name === endpoint) ?? false) || (TRANSLATED.get(provider)?.includes(endpoint) ?? false);
}

const all = ENDPOINT_TABLES.flat();

/**
 * Every endpoint name, once, in declaration order (OpenAI's first, so the
 * list reads as it did before a second family). Two families may share a
 * name only for the same operation: the model catalogue (`models`, `model`).
 */
export const ENDPOINT_NAMES = [...new Set(all.map((e) => e.name))] as [string, ...string[]];

/** The endpoints a routing snapshot can route a model on (those with a body naming a model). */
export const ROUTED_ENDPOINT_NAMES = [...new Set(all.filter((e) => e.kind === 'inference').map((e) => e.name))] as [string, ...string[]];
