/**
 * An introspection answer's claims → the credential's Grants. Members are
 * found by exact name first (names such as `https://example.com/groups`
 * contain dots), else by dot path (`realm_access.roles`). Lists may come as
 * arrays or space-separated strings (`scope`, or `scp` either way). Groups
 * and scopes become roles (and models) through the issuer's `grants`.
 *
 * Values end up in headers, logs and metric labels, so anything taken from
 * the answer must be a short printable string or the token is refused —
 * the IdP is trusted to say who the caller is, not to shape our headers.
 */
import type { IntrospectionIssuerConfig } from '../../config/schema.ts';
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { Allow, Grants } from '../../pipeline/identity.ts';

export type Claims = Readonly<Record<string, unknown>>;

const MAX_CLAIM_CHARS = 128;
const SANE_TEXT = new RegExp(`^[^\\p{C}\\p{Zl}\\p{Zp}]{1,${MAX_CLAIM_CHARS}}$`, 'u');
/** Upper bound on the entries of one list (roles, groups, scopes, models) taken from one answer. */
const MAX_LIST_ITEMS = 64;

/** The grants of one issuer, compiled once from its config. */
export interface ClaimMapper {
  grants(claims: Claims): Grants & { readonly principal: string; readonly subject: string };
}

export function claimAt(claims: Claims, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let node: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function refused(issuer: string, claim: string, what: string): GatewayError {
  return new GatewayError('invalid_token', `Invalid token from issuer ${issuer}: claim "${claim}" must be ${what}.`);
}

function text(claims: Claims, claim: string, issuer: string): string | undefined {
  const v = claimAt(claims, claim);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !SANE_TEXT.test(v)) throw refused(issuer, claim, `a string of 1-${MAX_CLAIM_CHARS} printable characters`);
  return v;
}

/** An array of strings or one space-separated string (OAuth `scope`); absent = empty. */
export function list(claims: Claims, claim: string, issuer: string): readonly string[] {
  const v = claimAt(claims, claim);
  if (v === undefined || v === null) return [];
  const items = typeof v === 'string' ? v.split(' ').filter((p) => p !== '') : v;
  if (!Array.isArray(items) || items.length > MAX_LIST_ITEMS || !items.every((i): i is string => typeof i === 'string' && SANE_TEXT.test(i))) {
    throw refused(issuer, claim, `a list (array or space-separated string) of at most ${MAX_LIST_ITEMS} values of 1-${MAX_CLAIM_CHARS} printable characters`);
  }
  return [...new Set(items)];
}

function allow<T extends string>(values: readonly T[]): Allow<T> {
  return values.includes('*' as T) ? '*' : new Set(values);
}

export function claimMapper(cfg: IntrospectionIssuerConfig): ClaimMapper {
  const issuer = cfg.issuer;
  const map = cfg.claims;
  const defaults = cfg.defaults;
  const endpoints: Allow<Endpoint> = defaults.endpoints.includes('*') ? '*' : new Set(defaults.endpoints.filter((e): e is Endpoint => e !== '*'));
  const byGroup = new Map<string, Array<(typeof cfg.grants)[number]>>();
  const byScope = new Map<string, Array<(typeof cfg.grants)[number]>>();
  for (const g of cfg.grants) {
    const [index, key] = g.group !== undefined ? [byGroup, g.group] : [byScope, g.scope ?? ''];
    index.set(key, [...(index.get(key) ?? []), g]);
  }
  return {
    grants(claims) {
      // RFC 7662: `sub` is the resource owner; a client-credentials token has none, and its client is the caller.
      const subject = text(claims, 'sub', issuer) ?? text(claims, 'client_id', issuer);
      if (subject === undefined)
        throw new GatewayError('invalid_token', `Invalid token from issuer ${issuer}: the answer names neither "sub" nor "client_id".`);
      const principal = map.principal === undefined ? subject : text(claims, map.principal, issuer);
      if (principal === undefined)
        throw new GatewayError('invalid_token', `Invalid token from issuer ${issuer}: missing the required "${map.principal}" claim.`);

      const matched = [
        ...list(claims, map.groups, issuer).flatMap((g) => byGroup.get(g) ?? []),
        ...list(claims, map.scopes, issuer).flatMap((s) => byScope.get(s) ?? []),
      ];
      const roles = new Set(list(claims, map.roles, issuer));
      for (const g of matched) for (const r of g.roles) roles.add(r);

      // Models: the token's own list wins; else what the matching grants name; else the issuer's default.
      const tokenModels = list(claims, map.models, issuer);
      const grantModels = matched.flatMap((g) => g.models ?? []);
      const models = tokenModels.length > 0 ? tokenModels : matched.some((g) => g.models !== undefined) ? grantModels : defaults.models;

      return Object.freeze({
        principal,
        subject,
        org: text(claims, map.org, issuer) ?? defaults.org ?? null,
        tenant: text(claims, map.tenant, issuer) ?? defaults.tenant ?? null,
        tier: text(claims, map.tier, issuer) ?? defaults.tier,
        roles: Object.freeze([...roles].sort()),
        models: allow(models),
        endpoints,
      });
    },
  };
}
