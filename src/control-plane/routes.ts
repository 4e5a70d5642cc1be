/**
 * The admin API's routes: one table, from which the server dispatches and
 * the OpenAPI document is generated (so every route is documented).
 */
import type { z } from 'zod';
import { KINDS, KeyCreateSchema, KeyPatchSchema, KeyRotateSchema, type Kind } from './resources.ts';

export type Verb = 'list' | 'create' | 'get' | 'replace' | 'patch' | 'delete' | 'revoke' | 'rotate' | 'status' | 'openapi';

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI form: /v1/models/{id}. */
  readonly path: string;
  readonly kind: Kind | 'keys' | null;
  readonly verb: Verb;
  /** null: no authentication (the OpenAPI document). */
  readonly access: 'read' | 'write' | null;
  /** The body's schema (validated; errors name the field). */
  readonly body?: z.ZodType;
  /** The If-Match header is required (428 without, 412 when stale). */
  readonly ifMatch: boolean;
  readonly summary: string;
}

const collection = (kind: Kind): Route[] => {
  const k = KINDS[kind];
  return [
    { method: 'GET', path: `/v1/${kind}`, kind, verb: 'list', access: 'read', ifMatch: false, summary: `List ${kind}` },
    { method: 'POST', path: `/v1/${kind}`, kind, verb: 'create', access: 'write', body: k.schema, ifMatch: false, summary: `Create a ${k.noun}` },
    { method: 'GET', path: `/v1/${kind}/{id}`, kind, verb: 'get', access: 'read', ifMatch: false, summary: `Get a ${k.noun} (with its ETag)` },
    { method: 'PUT', path: `/v1/${kind}/{id}`, kind, verb: 'replace', access: 'write', body: k.schema, ifMatch: true, summary: `Replace a ${k.noun}` },
    {
      method: 'PATCH',
      path: `/v1/${kind}/{id}`,
      kind,
      verb: 'patch',
      access: 'write',
      ifMatch: true,
      summary: `Change fields of a ${k.noun} (JSON merge patch, RFC 7396; the result is validated as a whole)`,
    },
    { method: 'DELETE', path: `/v1/${kind}/{id}`, kind, verb: 'delete', access: 'write', ifMatch: true, summary: `Delete a ${k.noun}` },
  ];
};

export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/v1/openapi.json', kind: null, verb: 'openapi', access: null, ifMatch: false, summary: 'This API as an OpenAPI 3.1 document' },
  {
    method: 'GET',
    path: '/v1/status',
    kind: null,
    verb: 'status',
    access: 'read',
    ifMatch: false,
    summary: 'The desired state revision, the snapshot version and whether everything committed has reached Redis',
  },
  ...collection('models'),
  ...collection('deployments'),
  ...collection('plans'),
  ...collection('tenants'),
  {
    method: 'GET',
    path: '/v1/keys',
    kind: 'keys',
    verb: 'list',
    access: 'read',
    ifMatch: false,
    summary: 'List API keys (metadata only, never a key or its hash)',
  },
  {
    method: 'POST',
    path: '/v1/keys',
    kind: 'keys',
    verb: 'create',
    access: 'write',
    body: KeyCreateSchema,
    ifMatch: false,
    summary: 'Create an API key: the key is in this answer only; only its hash is stored',
  },
  { method: 'GET', path: '/v1/keys/{id}', kind: 'keys', verb: 'get', access: 'read', ifMatch: false, summary: "Get a key's metadata (with its ETag)" },
  {
    method: 'PATCH',
    path: '/v1/keys/{id}',
    kind: 'keys',
    verb: 'patch',
    access: 'write',
    body: KeyPatchSchema,
    ifMatch: true,
    summary: "Change a key's tier, roles, models, endpoints or expiry (expiresAt null removes it)",
  },
  {
    method: 'POST',
    path: '/v1/keys/{id}/revoke',
    kind: 'keys',
    verb: 'revoke',
    access: 'write',
    ifMatch: true,
    summary: 'Revoke a key: sidecars refuse it within about a second',
  },
  {
    method: 'POST',
    path: '/v1/keys/{id}/rotate',
    kind: 'keys',
    verb: 'rotate',
    access: 'write',
    body: KeyRotateSchema,
    ifMatch: true,
    summary: "Make a new key with this key's grants (returned once); this one expires after graceMs",
  },
];

/** The route and path parameters of a request, or null. */
export function matchRoute(method: string, pathname: string): { route: Route; id: string | null } | { allowed: string[] } | null {
  const parts = pathname.split('/').slice(1);
  const allowed: string[] = [];
  for (const r of ROUTES) {
    const want = r.path.split('/').slice(1);
    if (want.length !== parts.length) continue;
    let id: string | null = null;
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      const w = want[i] as string;
      const got = parts[i] as string;
      if (w === '{id}') {
        try {
          id = decodeURIComponent(got);
        } catch {
          ok = false;
        }
        if (id === '') ok = false;
      } else if (w !== got) ok = false;
      if (!ok) break;
    }
    if (!ok) continue;
    if (r.method === method) return { route: r, id };
    allowed.push(r.method);
  }
  return allowed.length > 0 ? { allowed } : null;
}
