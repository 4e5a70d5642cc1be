/**
 * From a plan and a request to the store's LimitSpecs. Keys of one decision
 * share the org as their Redis Cluster hash tag, so the whole decision runs
 * on one slot; every counter of an org lives there.
 */
import type { QuotaLimitRule, QuotaPlan } from '../../config/schema.ts';
import type { QuotaSubject } from '../../pipeline/ports.ts';
import type { LimitSpec } from '../../stores/quota/port.ts';

export type { QuotaSubject };

export interface LimitOptions {
  /** Tokens reserved at admission (prompt estimate + completion allowance); 0 = no token limits apply. */
  readonly reservedTokens: number;
  /** Cost reserved at admission in micro units of the plan's currency: the most the request can cost (0: unpriced). */
  readonly reservedCostMicros: number;
  readonly utcOffsetMs: number;
  readonly leaseMs: number;
  /** Which kinds of limits to build (ext_authz sees no responses: request counts only). */
  readonly kinds: 'all' | 'requests_only';
  /** Scales every limit (the `local` fallback enforces a per-replica share). */
  readonly share: number;
}

function scopeKey(rule: QuotaLimitRule, s: QuotaSubject): string {
  switch (rule.scope) {
    case 'key':
      return s.keyId === null ? `principal:${s.principal}` : `key:${s.keyId}`;
    case 'tenant':
      return `tenant:${s.tenant}`;
    case 'org':
      return 'org';
    case 'endpoint':
      return `model:${s.model}`;
    case 'tenant_endpoint':
      return `tenant:${s.tenant}:model:${s.model}`;
  }
}

const scaled = (limit: number, share: number): number => Math.max(1, Math.floor(limit * share));

/**
 * Limit names say what a limit counts (`requests:…`, `tokens:…`,
 * `budget:…`, `concurrency:…`) — the store settles `tokens:` limits with the
 * token delta and `budget:` limits (micro units of the plan's currency) with
 * the cost delta, the stage
 * reports headers and picks the error from them.
 */
export function buildLimits(plan: QuotaPlan, s: QuotaSubject, o: LimitOptions): LimitSpec[] {
  const out: LimitSpec[] = [];
  for (const rule of plan.limits) {
    const k = scopeKey(rule, s);
    const sc = rule.scope;
    if (rule.rps !== undefined) {
      out.push({ kind: 'rate', name: `requests:rps:${sc}`, key: `${k}:rps`, ratePerSec: rule.rps * o.share, burst: scaled(rule.burst ?? rule.rps, o.share) });
    }
    if (rule.rpm !== undefined) {
      out.push({ kind: 'window', name: `requests:rpm:${sc}`, key: `${k}:rpm`, limit: scaled(rule.rpm, o.share), windowMs: 60_000, cost: 1 });
    }
    if (o.kinds === 'requests_only') continue;
    if (rule.tpm !== undefined && o.reservedTokens > 0) {
      out.push({ kind: 'window', name: `tokens:tpm:${sc}`, key: `${k}:tpm`, limit: scaled(rule.tpm, o.share), windowMs: 60_000, cost: o.reservedTokens });
    }
    if (rule.tpd !== undefined && o.reservedTokens > 0) {
      out.push({
        kind: 'day',
        name: `tokens:tpd:${sc}`,
        key: `${k}:tpd`,
        limit: scaled(rule.tpd, o.share),
        utcOffsetMs: o.utcOffsetMs,
        cost: o.reservedTokens,
      });
    }
    if (rule.budgetDaily !== undefined) {
      out.push({
        kind: 'day',
        name: `budget:daily:${sc}`,
        key: `${k}:bpd`,
        limit: scaled(rule.budgetDaily, o.share),
        utcOffsetMs: o.utcOffsetMs,
        cost: o.reservedCostMicros,
      });
    }
    if (rule.budgetMonthly !== undefined) {
      out.push({
        kind: 'month',
        name: `budget:monthly:${sc}`,
        key: `${k}:bpm`,
        limit: scaled(rule.budgetMonthly, o.share),
        utcOffsetMs: o.utcOffsetMs,
        cost: o.reservedCostMicros,
      });
    }
    if (rule.concurrency !== undefined) {
      out.push({ kind: 'concurrency', name: `concurrency:${sc}`, key: `${k}:conc`, limit: scaled(rule.concurrency, o.share), leaseMs: o.leaseMs });
    }
  }
  return out;
}
