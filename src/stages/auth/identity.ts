/**
 * Combining verified credentials into the request's one Identity.
 *
 * - Every credential presented must verify; a bad one is never skipped in
 *   favour of another (it is refused by its verifier before we get here).
 * - Credentials that name an org or tenant must agree (else credential_conflict).
 * - The principal is the most specific caller: a bearer token (JWT or an
 *   introspected OAuth token — a request carries one bearer at most), then API
 *   key, then the mTLS workload. The tier comes from the same credential when it has one.
 * - Roles are the union; model and endpoint allowlists the intersection —
 *   each credential's restrictions apply.
 * - Requirement rules (auth.require) may demand several methods at once.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { Allow, AuthMethod, Credential, Identity } from '../../pipeline/identity.ts';

export interface AuthRequirement {
  readonly tenant?: string | undefined;
  readonly endpoints?: readonly Endpoint[] | undefined;
  readonly methods: readonly AuthMethod[];
}

const PRECEDENCE: readonly AuthMethod[] = ['jwt', 'introspection', 'api_key', 'mtls'];

export function combineCredentials(credentials: readonly Credential[], endpoint: Endpoint | null, requirements: readonly AuthRequirement[]): Identity {
  if (credentials.length === 0) throw new GatewayError('missing_api_key', 'A credential is required: send "Authorization: Bearer <key or token>".');
  const ordered = [...credentials].sort((a, b) => PRECEDENCE.indexOf(a.method) - PRECEDENCE.indexOf(b.method));
  const lead = ordered[0] as Credential;
  const org = agree(ordered, 'org');
  const tenant = agree(ordered, 'tenant');
  if (org === null || tenant === null) {
    throw new GatewayError('additional_credential_required', 'No presented credential names an organisation and a tenant.');
  }
  let models: Allow<string> = '*';
  let endpoints: Allow<Endpoint> = '*';
  const roles = new Set<string>();
  for (const c of ordered) {
    models = intersect(models, c.models);
    endpoints = intersect(endpoints, c.endpoints);
    for (const r of c.roles) roles.add(r);
  }
  const methods = ordered.map((c) => c.method);
  const rule = requirements.find(
    (r) => (r.tenant === undefined || r.tenant === tenant) && (r.endpoints === undefined || (endpoint !== null && r.endpoints.includes(endpoint))),
  );
  if (rule !== undefined) {
    const missing = rule.methods.filter((m) => !methods.includes(m));
    if (missing.length > 0) {
      throw new GatewayError('additional_credential_required', `This request also requires: ${missing.join(', ')}.`);
    }
  }
  const apiKey = ordered.find((c) => c.method === 'api_key');
  const jwt = ordered.find((c) => c.method === 'jwt');
  const introspected = ordered.find((c) => c.method === 'introspection');
  const mtls = ordered.find((c) => c.method === 'mtls');
  return Object.freeze({
    methods,
    principal: lead.principal,
    org,
    tenant,
    tier: lead.tier ?? ordered.find((c) => c.tier !== null)?.tier ?? 'standard',
    roles: Object.freeze([...roles].sort()),
    models,
    endpoints,
    keyId: apiKey?.method === 'api_key' ? apiKey.keyId : null,
    jwt: jwt?.method === 'jwt' ? { issuer: jwt.issuer, subject: jwt.subject } : null,
    introspection: introspected?.method === 'introspection' ? { issuer: introspected.issuer, subject: introspected.subject } : null,
    mtls: mtls?.method === 'mtls' ? { spiffeId: mtls.spiffeId, subject: mtls.certSubject, certDigest: mtls.certDigest } : null,
  });
}

function agree(credentials: readonly Credential[], field: 'org' | 'tenant'): string | null {
  let value: string | null = null;
  for (const c of credentials) {
    const v = c[field];
    if (v === null) continue;
    if (value !== null && v !== value) {
      throw new GatewayError('credential_conflict', `The presented credentials name different ${field === 'org' ? 'organisations' : 'tenants'}.`);
    }
    value = v;
  }
  return value;
}

function intersect<T>(a: Allow<T>, b: Allow<T>): Allow<T> {
  if (a === '*') return b;
  if (b === '*') return a;
  return new Set([...a].filter((x) => b.has(x)));
}
