/**
 * The data policy: which data classes found in a request (or a response) are
 * permitted, redacted or refused, by route, model, tenant, org and role.
 * For each class found, the first rule whose filters match and that names the
 * class decides; the request's decision is the strictest over its classes
 * (deny > redact > permit). Decisions name the class, never the value.
 */
import type { PolicyConfig } from '../../config/schema.ts';
import type { PolicyAction, PolicySubject } from '../../pipeline/ports.ts';

export type { PolicyAction, PolicySubject };
export type DataClassName = 'PII' | 'PCI' | 'PHI' | 'SECRET';

export interface PolicyDecision {
  readonly action: PolicyAction;
  /** The classes that get each action (for redaction: which classes to replace). */
  readonly byClass: ReadonlyMap<DataClassName, { readonly action: PolicyAction; readonly rule: string | null }>;
  readonly version: string;
}

const SEVERITY: Readonly<Record<PolicyAction, number>> = { permit: 0, redact: 1, deny: 2 };

export class Policy {
  readonly #cfg: PolicyConfig;

  constructor(cfg: PolicyConfig) {
    this.#cfg = cfg;
  }

  get version(): string {
    return this.#cfg.version;
  }

  decide(classes: ReadonlySet<DataClassName>, s: PolicySubject): PolicyDecision {
    const byClass = new Map<DataClassName, { action: PolicyAction; rule: string | null }>();
    let action: PolicyAction = 'permit';
    for (const c of classes) {
      const rule = this.#cfg.rules.find((r) => r.classes.includes(c) && matches(r.match, s));
      const a = rule?.action ?? this.#cfg.defaultAction;
      byClass.set(c, { action: a, rule: rule?.name ?? null });
      if (SEVERITY[a] > SEVERITY[action]) action = a;
    }
    return { action, byClass, version: this.#cfg.version };
  }
}

function matches(m: PolicyConfig['rules'][number]['match'], s: PolicySubject): boolean {
  return (
    (m.endpoints === undefined || m.endpoints.includes(s.endpoint)) &&
    (m.models === undefined || m.models.includes(s.model)) &&
    (m.tenants === undefined || m.tenants.includes(s.tenant)) &&
    (m.orgs === undefined || m.orgs.includes(s.org)) &&
    (m.roles === undefined || m.roles.some((r) => s.roles.includes(r)))
  );
}
