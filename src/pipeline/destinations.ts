/**
 * Where a request may go: the data policy's destination rules
 * (docs/content-policy.md "Destination rules") evaluated against the trust
 * attributes the routing snapshot gives every deployment. Pure functions over
 * plain types, so the request path, the upstream attempt, `config validate`
 * and snapshot acceptance all decide with the same code.
 *
 * A rule applies to a request when its filters match the caller and the
 * request, and — when it names classes — one of them is still in what is
 * sent (after redaction). A deployment is authorized when it satisfies every
 * applicable rule, at every priority of its Envoy cluster: Envoy may fail
 * over inside a cluster without asking the sidecar, so a cluster is only as
 * trustworthy as its least trusted priority.
 */
import type { Endpoint } from './endpoint.ts';
import type { Deployment, ModelRoute, TrustAttributes } from './snapshot.ts';

export const HOSTING_KINDS = ['on-prem', 'private', 'hosted'] as const;
export type Hosting = (typeof HOSTING_KINDS)[number];

/** The trust attributes a rule can require or forbid. `attestations` is a set; every other one a single value. */
export const TRUST_LABELS = ['region', 'residency', 'hosting', 'attestations', 'retention', 'provider'] as const;
export type TrustLabel = (typeof TRUST_LABELS)[number];

/** Label → accepted (or refused) values. */
export type LabelValues = { readonly [L in TrustLabel]?: readonly string[] | undefined };

export interface DestinationRule {
  readonly name: string;
  /** Every given filter must match; an absent one matches everything. `tenants` are globs (`eu-*`). */
  readonly match: {
    readonly classes?: readonly string[] | undefined;
    readonly endpoints?: readonly string[] | undefined;
    readonly models?: readonly string[] | undefined;
    readonly tenants?: readonly string[] | undefined;
    readonly orgs?: readonly string[] | undefined;
    readonly roles?: readonly string[] | undefined;
  };
  /**
   * For a single-valued label: the deployment's value is one of these. For `attestations`: the deployment holds
   * every one of these.
   */
  readonly require: LabelValues;
  /** For a single-valued label: the deployment's value is none of these; for `attestations`: it holds none of these. */
  readonly forbid: LabelValues;
}

export interface DestinationSubject {
  readonly endpoint: Endpoint;
  readonly model: string;
  readonly tenant: string;
  readonly org: string;
  readonly roles: readonly string[];
}

/** Whether `tenant` matches a tenant pattern: `*` stands for any run of characters, everything else is literal. */
export function tenantMatches(pattern: string, tenant: string): boolean {
  if (!pattern.includes('*')) return pattern === tenant;
  const parts = pattern.split('*');
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (tenant.length < first.length + last.length || !tenant.startsWith(first) || !tenant.endsWith(last)) return false;
  let at = first.length;
  const end = tenant.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const found = tenant.indexOf(parts[i] as string, at);
    if (found < 0 || found + (parts[i] as string).length > end) return false;
    at = found + (parts[i] as string).length;
  }
  return true;
}

/** Whether the rule's filters (not its classes) match the subject. */
export function ruleMatchesSubject(rule: DestinationRule, s: DestinationSubject): boolean {
  const m = rule.match;
  return (
    (m.endpoints === undefined || m.endpoints.includes(s.endpoint)) &&
    (m.models === undefined || m.models.includes(s.model)) &&
    (m.tenants === undefined || m.tenants.some((p) => tenantMatches(p, s.tenant))) &&
    (m.orgs === undefined || m.orgs.includes(s.org)) &&
    (m.roles === undefined || m.roles.some((r) => s.roles.includes(r)))
  );
}

/** The rules that apply to a request: filters match, and a named class (if any) is among the classes sent. */
export function applicableRules(rules: readonly DestinationRule[], s: DestinationSubject, sent: ReadonlySet<string>): DestinationRule[] {
  const out: DestinationRule[] = [];
  for (const r of rules) {
    if (r.match.classes !== undefined && !r.match.classes.some((c) => sent.has(c))) continue;
    if (ruleMatchesSubject(r, s)) out.push(r);
  }
  return out;
}

function valuesOf(t: TrustAttributes, label: TrustLabel): readonly string[] {
  if (label === 'attestations') return t.attestations;
  const v = t[label];
  return v === null ? [] : [v];
}

/**
 * Whether one trust description satisfies the rule. An attribute the snapshot does not declare satisfies no
 * requirement and no prohibition: what is not stated is not trusted.
 */
export function trustSatisfies(t: TrustAttributes, rule: DestinationRule): boolean {
  for (const label of TRUST_LABELS) {
    const req = rule.require[label];
    if (req !== undefined) {
      const have = valuesOf(t, label);
      if (label === 'attestations' ? !req.every((v) => have.includes(v)) : !have.some((v) => req.includes(v))) return false;
    }
    const no = rule.forbid[label];
    if (no !== undefined) {
      if (label !== 'attestations' && t[label] === null) return false;
      if (valuesOf(t, label).some((v) => no.includes(v))) return false;
    }
  }
  return true;
}

/** A deployment satisfies the rule at every priority of its cluster. */
export function deploymentSatisfies(d: Deployment, rule: DestinationRule): boolean {
  for (const t of d.priorities) if (!trustSatisfies(t, rule)) return false;
  return true;
}

/** What the rules allow of one route. */
export interface RouteAuthorization {
  /** Targets that may be picked (their own deployment, every priority, satisfies every rule). */
  readonly targets: ReadonlySet<Deployment>;
  /** Every authorized deployment: the targets, and the fallback members of their chains that may be attempted. */
  readonly deployments: readonly Deployment[];
  /** The rules that excluded at least one deployment of the route. */
  readonly constraining: readonly string[];
}

export function authorizeRoute(route: ModelRoute, rules: readonly DestinationRule[]): RouteAuthorization {
  const constraining = new Set<string>();
  const allowed = (d: Deployment): boolean => {
    let ok = true;
    for (const r of rules) {
      if (deploymentSatisfies(d, r)) continue;
      ok = false;
      constraining.add(r.name);
    }
    return ok;
  };
  const targets = new Set<Deployment>();
  const deployments: Deployment[] = [];
  for (const t of route.targets) {
    // A chain is entered through its first member (the target's own deployment): if that is not authorized, the
    // target is not picked; a later member that is not authorized is vetoed when Envoy tries it (attempt.ts).
    const self = allowed(t);
    const chain = t.fallback?.chain ?? [];
    const members = chain.slice(1).filter(allowed);
    if (!self) continue;
    targets.add(t);
    deployments.push(chain[0] ?? t, ...members);
  }
  return { targets, deployments, constraining: [...constraining] };
}
