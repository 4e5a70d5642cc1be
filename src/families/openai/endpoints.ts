/**
 * The OpenAI-compatible API surface the gateway serves, by method and path.
 * Anything else is refused by the sidecar before it reaches a model server.
 */
export type Endpoint = 'chat' | 'completions' | 'embeddings' | 'models' | 'model';

export type EndpointMatch =
  | { readonly ok: true; readonly endpoint: Endpoint; readonly modelId?: string }
  | { readonly ok: false; readonly reason: 'unknown_url' | 'method_not_allowed' };

/** Endpoints whose body is a JSON request naming a model. */
export const BODY_ENDPOINTS: ReadonlySet<Endpoint> = new Set(['chat', 'completions', 'embeddings']);

const POST_PATHS: ReadonlyMap<string, Endpoint> = new Map([
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
]);

export function matchEndpoint(method: string, rawPath: string): EndpointMatch {
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  const post = POST_PATHS.get(path);
  if (post !== undefined) {
    return method === 'POST' ? { ok: true, endpoint: post } : { ok: false, reason: 'method_not_allowed' };
  }
  if (path === '/v1/models') {
    return method === 'GET' ? { ok: true, endpoint: 'models' } : { ok: false, reason: 'method_not_allowed' };
  }
  if (path.startsWith('/v1/models/')) {
    const id = decodePathSegment(path.slice('/v1/models/'.length));
    if (id === null) return { ok: false, reason: 'unknown_url' };
    return method === 'GET' ? { ok: true, endpoint: 'model', modelId: id } : { ok: false, reason: 'method_not_allowed' };
  }
  return { ok: false, reason: 'unknown_url' };
}

function decodePathSegment(s: string): string | null {
  if (s === '' || s.length > 256) return null;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
