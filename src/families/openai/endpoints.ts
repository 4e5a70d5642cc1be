/**
 * The OpenAI-compatible API surface, by method and path. Anything else is
 * refused by the sidecar before it reaches a model server.
 *
 * This module is data plus a matcher and imports only types and the path helpers, so the
 * config and snapshot schemas can list the endpoint names without loading
 * the family (src/families/endpoints.ts).
 */
import type { EndpointMatch, EndpointSpec } from '../../pipeline/endpoint.ts';
import { decodePathSegment, pathOnly } from '../common/path.ts';

export const OPENAI_ENDPOINTS = [
  { name: 'chat', kind: 'inference', method: 'POST', path: '/v1/chat/completions', generates: true },
  { name: 'completions', kind: 'inference', method: 'POST', path: '/v1/completions', generates: true },
  { name: 'embeddings', kind: 'inference', method: 'POST', path: '/v1/embeddings', generates: false },
  { name: 'models', kind: 'model_list', method: 'GET', path: '/v1/models', generates: false },
  { name: 'model', kind: 'model_get', method: 'GET', path: '/v1/models/{model}', generates: false },
] as const satisfies readonly EndpointSpec[];

export type OpenAIEndpoint = (typeof OPENAI_ENDPOINTS)[number]['name'];

const BY_PATH: ReadonlyMap<string, EndpointSpec> = new Map(OPENAI_ENDPOINTS.filter((e) => !e.path.includes('{')).map((e) => [e.path, e]));
const MODEL_GET = OPENAI_ENDPOINTS[4];
const MODEL_PREFIX = '/v1/models/';

/** The endpoint for this method and path; null when the path is not OpenAI's. */
export function matchEndpoint(method: string, rawPath: string): EndpointMatch | null {
  const path = pathOnly(rawPath);
  const spec = BY_PATH.get(path);
  if (spec !== undefined) return method === spec.method ? { ok: true, endpoint: spec } : { ok: false, reason: 'method_not_allowed' };
  if (path.startsWith(MODEL_PREFIX)) {
    const id = decodePathSegment(path.slice(MODEL_PREFIX.length));
    if (id === null) return { ok: false, reason: 'unknown_url' };
    return method === MODEL_GET.method ? { ok: true, endpoint: MODEL_GET, modelId: id } : { ok: false, reason: 'method_not_allowed' };
  }
  return null;
}
