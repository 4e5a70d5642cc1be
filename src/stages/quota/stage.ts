/**
 * The quota stage: one atomic decision per request across every limit of the
 * caller's plan (reserve), one settlement when it ends (real usage, leases
 * released). When the store cannot decide, the plan's policy applies —
 * fail closed, fail open, or a local in-memory limiter enforcing a share of
 * each limit — always counted in metrics, logged, and flagged on the request.
 */
import type { Logger } from 'pino';
import type { QuotaConfig, QuotaPlan } from '../../config/schema.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { QuotaGate, QuotaMode, QuotaRequest, QuotaTicket as PortTicket, SoftAction } from '../../pipeline/ports.ts';
import type { Decision, LimitSpec, QuotaStore } from '../../stores/quota/port.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { ZoneOffset } from './clock.ts';
import { formatReset, rateLimitHeaders } from './headers.ts';
import { buildLimits } from './limits.ts';
import { errorMessage } from '../../shared/values.ts';

/** The stage's ticket: what the pipeline sees, plus where the reservation is held. */
export interface QuotaTicket extends PortTicket {
  readonly requestId: string;
  readonly tag: string;
  /** The store that holds the reservation (null when nothing was reserved: fail open). */
  readonly store: QuotaStore | null;
}

export type { QuotaMode, QuotaRequest, SoftAction };

/** A circuit breaker around the primary store (absent for the in-memory store, which cannot fail). */
export interface Breaker {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export interface QuotaDeps {
  readonly primary: QuotaStore;
  readonly breaker: Breaker | null;
  /** Per-replica limiter for plans with whenStoreDown: local. */
  readonly local: QuotaStore;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly now?: () => number;
}

export class QuotaStage implements QuotaGate<QuotaTicket> {
  readonly #cfg: QuotaConfig;
  readonly #d: QuotaDeps;
  readonly #plans: ReadonlyMap<string, QuotaPlan>;
  readonly #zone: ZoneOffset;
  readonly #now: () => number;
  #lastDegradedLog = 0;

  constructor(cfg: QuotaConfig, deps: QuotaDeps) {
    this.#cfg = cfg;
    this.#d = deps;
    this.#plans = new Map(cfg.plans.map((p) => [p.name, p]));
    this.#zone = new ZoneOffset(cfg.timeZone);
    this.#now = deps.now ?? Date.now;
  }

  /** The plan for a tier: the plan of that name, else the default plan, else none (no quotas). */
  planFor(tier: string): QuotaPlan | null {
    return this.#plans.get(tier) ?? (this.#cfg.defaultPlan === undefined ? null : (this.#plans.get(this.#cfg.defaultPlan) ?? null));
  }

  /** Reserves; throws a 429/503 GatewayError when refused. null when no plan applies. */
  async admit(req: QuotaRequest): Promise<QuotaTicket | null> {
    const plan = this.planFor(req.tier);
    if (plan === null || plan.limits.length === 0) return null;
    const completion = req.generates ? (req.maxTokens ?? plan.defaultMaxTokens) : 0;
    const reservedTokens = req.promptTokens + completion;
    const limitsTokens = plan.limits.some((l) => l.tpm !== undefined || l.tpd !== undefined);
    const completionCap = req.generates && req.maxTokens === null && limitsTokens && plan.capUnsetMaxTokens ? plan.defaultMaxTokens : null;
    const tag = req.subject.org;
    const options = { reservedTokens, utcOffsetMs: this.#zone.at(this.#now()), leaseMs: this.#cfg.leaseSeconds * 1000, kinds: req.kinds, share: 1 };
    const limits = buildLimits(plan, req.subject, options);
    if (limits.length === 0) return null;
    const m = this.#d.metrics;

    let decision: Decision;
    let mode: QuotaMode = 'store';
    let store: QuotaStore | null = this.#d.primary;
    try {
      const primary = this.#d.primary;
      decision =
        this.#d.breaker === null ? await primary.admit(req.requestId, tag, limits) : await this.#d.breaker.run(() => primary.admit(req.requestId, tag, limits));
    } catch (err) {
      m.quotaStoreErrors.inc({ operation: 'admit' });
      // A timed-out admit may still have run on Redis: undo it when Redis answers again (a no-op if it did not).
      this.#d.primary.settle(req.requestId, tag, { tokenDelta: -reservedTokens }).catch(() => undefined);
      this.#logDegraded(plan, err);
      m.quotaDegraded.inc({ plan: plan.name, policy: plan.whenStoreDown });
      if (plan.whenStoreDown === 'fail_closed') {
        throw new GatewayError('quota_unavailable', 'The quota service is unavailable; the request was not admitted.', { headers: { 'retry-after': '1' } });
      }
      if (plan.whenStoreDown === 'fail_open') {
        return { plan: plan.name, soft: null, mode: 'fail_open', reservedTokens, completionCap, headers: [], requestId: req.requestId, tag, store: null };
      }
      mode = 'local';
      store = this.#d.local;
      decision = await store.admit(req.requestId, tag, buildLimits(plan, req.subject, { ...options, share: plan.localShare }));
    }
    const headers = rateLimitHeaders(decision.states);
    if (!decision.admitted) {
      const daily = decision.deniedBy.startsWith('tokens:tpd');
      m.quotaDecisions.inc({ plan: plan.name, outcome: 'denied', limit: limitKind(decision.deniedBy) });
      const retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      throw new GatewayError(
        daily ? 'insufficient_quota' : 'rate_limit_exceeded',
        daily
          ? `Daily token quota exhausted (${describe(decision.deniedBy)}); it resets in ${formatReset(decision.retryAfterMs)}.`
          : `Rate limit reached (${describe(decision.deniedBy)}); retry in ${formatReset(decision.retryAfterMs)}.`,
        { headers: Object.fromEntries([...headers, ['retry-after', retryAfter]]) },
      );
    }
    m.quotaDecisions.inc({ plan: plan.name, outcome: 'admitted', limit: 'none' });
    return { plan: plan.name, soft: softAction(plan, decision), mode, reservedTokens, completionCap, headers, requestId: req.requestId, tag, store };
  }

  /** Real usage against the reservation, leases released. Never throws: a failed settlement is logged and counted. */
  async settle(ticket: QuotaTicket, usedTokens: number): Promise<void> {
    if (ticket.store === null) return;
    try {
      await ticket.store.settle(ticket.requestId, ticket.tag, { tokenDelta: usedTokens - ticket.reservedTokens });
    } catch (err) {
      this.#d.metrics.quotaStoreErrors.inc({ operation: 'settle' });
      this.#d.log.warn({ requestId: ticket.requestId, err: errorMessage(err) }, 'quota settlement failed; leases expire by TTL');
    }
  }

  #logDegraded(plan: QuotaPlan, err: unknown): void {
    const now = this.#now();
    if (now - this.#lastDegradedLog < 10_000) return; // one line per 10 s, not one per request
    this.#lastDegradedLog = now;
    this.#d.log.warn({ plan: plan.name, policy: plan.whenStoreDown, err: errorMessage(err) }, "quota store unavailable: applying the plan's policy");
  }
}

function softAction(plan: QuotaPlan, decision: Decision): SoftAction | null {
  const soft = plan.soft;
  if (soft === undefined) return null;
  const crossed = decision.states.some((st) => st.limit > 0 && (st.limit - st.remaining) / st.limit > soft.threshold);
  return crossed ? { fallbackModel: soft.fallbackModel ?? null, maxTokens: soft.maxTokens ?? null } : null;
}

/** `requests:rpm:tenant` → `rpm` (a bounded metric label). */
function limitKind(name: string): string {
  return name.split(':')[1] ?? 'concurrency';
}

function describe(name: string): string {
  const [family, kind, scope] = name.split(':');
  if (family === 'concurrency') return `concurrent requests per ${kind ?? 'scope'}`;
  return `${kind ?? family} per ${scope ?? 'scope'}`;
}

export type { LimitSpec };
