/**
 * Anthropic's Messages API surface, by method and path. `GET /v1/models` is
 * shared with the OpenAI family: it is Anthropic's when the client sends
 * `anthropic-version` (the official SDKs always do), so this family is tried
 * before OpenAI's. Data plus a matcher, importing only types and the path helpers (the
 * schemas read the names through src/families/endpoints.ts).
 */
import type { EndpointMatch, EndpointSpec } from '../../pipeline/endpoint.ts';
import { decodePathSegment, pathOnly } from '../common/path.ts';

export const ANTHROPIC_ENDPOINTS = [
  { name: 'messages', kind: 'inference', method: 'POST', path: '/v1/messages', generates: true },
  { name: 'count_tokens', kind: 'inference', method: 'POST', path: '/v1/messages/count_tokens', generates: false },
  // The same endpoints as OpenAI's catalogue (an allowlist entry `models` covers both shapes).
  { name: 'models', kind: 'model_list', method: 'GET', path: '/v1/models', generates: false },
  { name: 'model', kind: 'model_get', method: 'GET', path: '/v1/models/{model}', generates: false },
] as const satisfies readonly EndpointSpec[];

const [MESSAGES, COUNT_TOKENS, MODELS, MODEL] = ANTHROPIC_ENDPOINTS;
const MODEL_PREFIX = '/v1/models/';

export function matchEndpoint(method: string, rawPath: string, headers: ReadonlyMap<string, string>): EndpointMatch | null {
  const path = pathOnly(rawPath);
  if (path === MESSAGES.path) return method === MESSAGES.method ? { ok: true, endpoint: MESSAGES } : { ok: false, reason: 'method_not_allowed' };
  if (path === COUNT_TOKENS.path) return method === COUNT_TOKENS.method ? { ok: true, endpoint: COUNT_TOKENS } : { ok: false, reason: 'method_not_allowed' };
  if (!headers.has('anthropic-version') || method !== 'GET') return null;
  if (path === MODELS.path) return { ok: true, endpoint: MODELS };
  if (path.startsWith(MODEL_PREFIX)) {
    const id = decodePathSegment(path.slice(MODEL_PREFIX.length));
    return id === null ? { ok: false, reason: 'unknown_url' } : { ok: true, endpoint: MODEL, modelId: id };
  }
  return null;
}
