/**
 * The quota stage: one atomic decision per request across every limit of the
 * caller's plan (reserve), one settlement when it ends (real usage, leases
 * released). When the store cannot decide, the plan's policy applies —
 * fail closed, fail open, or a local in-memory limiter enforcing a share of
 * each limit — always counted in metrics, logged, and flagged on the request.
 *
 * Two things keep the store-down path honest:
 * - A caller the store refused (429) recently is still refused while the
 *   store cannot decide, until the retry time the store gave: an over-limit
 *   decision is never turned into a 503 (or into an admission) by a blip.
 * - Concurrency leases live `leaseTtlSeconds` and this stage renews the
 *   leases of its requests in flight every `leaseRenewSeconds` (a heartbeat),
 *   up to `leaseSeconds`: the slots of a sidecar that died free within the TTL.
 */
import type { Logger } from 'pino';
import type { QuotaConfig, QuotaPlan } from '../../config/schema.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { QuotaGate, QuotaMode, QuotaRequest, QuotaTicket as PortTicket, SoftAction } from '../../pipeline/ports.ts';
import type { Decision, LimitSpec, QuotaStore } from '../../stores/quota/port.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { CircuitOpenError } from '../../stores/quota/breaker.ts';
import { ZoneOffset } from './clock.ts';
import { formatReset, rateLimitHeaders } from './headers.ts';
import { buildLimits } from './limits.ts';
import { errorMessage } from '../../shared/values.ts';
import { maxCostUnits, unitsToMicrosCeil } from '../../pipeline/cost.ts';
import type { RequestCost } from '../../pipeline/ports.ts';

/** The stage's ticket: what the pipeline sees, plus where the reservation is held. */
export interface QuotaTicket extends PortTicket {
  readonly requestId: string;
  readonly tag: string;
  /** Spend reserved in micro units of `currency` (0: the plan has no budget, or nothing is priced). */
  readonly reservedCostMicros: number;
  readonly currency: string;
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
  /**
   * The plans of the routing snapshot in use (delivered by the control plane), looked up before the config's
   * `quotas.plans`; absent: the config's only.
   */
  readonly snapshotPlans?: () => ReadonlyMap<string, QuotaPlan>;
  /** Runs the lease heartbeat every intervalMs until stopped (default: an unref'd setInterval; tests tick it by hand). */
  readonly schedule?: (tick: () => void, intervalMs: number) => () => void;
}

/** A request in flight that holds concurrency leases. */
interface Held {
  readonly store: QuotaStore;
  readonly tag: string;
  readonly since: number;
}

/** Recent refusals remembered for the store-down path (bounded: the oldest go first). */
const MAX_DENIALS = 10_000;

function intervalSchedule(tick: () => void, intervalMs: number): () => void {
  const t = setInterval(tick, intervalMs);
  t.unref();
  return () => clearInterval(t);
}

export class QuotaStage implements QuotaGate<QuotaTicket> {
  readonly #cfg: QuotaConfig;
  readonly #d: QuotaDeps;
  readonly #plans: ReadonlyMap<string, QuotaPlan>;
  readonly #zone: ZoneOffset;
  readonly #now: () => number;
  readonly #schedule: (tick: () => void, intervalMs: number) => () => void;
  #lastDegradedLog = 0;
  /** `<tag>\0<limit key>` → when the store said the caller may retry, and the refusing limit's name. */
  readonly #denials = new Map<string, { until: number; name: string }>();
  readonly #held = new Map<string, Held>();
  #stopHeartbeat: (() => void) | null = null;
  #renewing: Promise<void> | null = null;

  constructor(cfg: QuotaConfig, deps: QuotaDeps) {
    this.#cfg = cfg;
    this.#d = deps;
    this.#plans = new Map(cfg.plans.map((p) => [p.name, p]));
    this.#zone = new ZoneOffset(cfg.timeZone);
    this.#now = deps.now ?? Date.now;
    this.#schedule = deps.schedule ?? intervalSchedule;
  }

  /**
   * The plan for a tier: the plan of that name (the snapshot's, else the config's), else the default plan (looked up
   * the same way), else none (no quotas).
   */
  planFor(tier: string): QuotaPlan | null {
    const fromSnapshot = this.#d.snapshotPlans?.();
    const named = (name: string): QuotaPlan | null => fromSnapshot?.get(name) ?? this.#plans.get(name) ?? null;
    return named(tier) ?? (this.#cfg.defaultPlan === undefined ? null : named(this.#cfg.defaultPlan));
  }

  /** Reserves; throws a 429/503 GatewayError when refused. null when no plan applies. */
  async admit(req: QuotaRequest): Promise<QuotaTicket | null> {
    const plan = this.planFor(req.tier);
    if (plan === null || plan.limits.length === 0) return null;
    const completion = req.generates ? (req.maxTokens ?? plan.defaultMaxTokens) : 0;
    const reservedTokens = req.promptTokens + completion;
    const budgets = req.kinds === 'all' && plan.limits.some((l) => l.budgetDaily !== undefined || l.budgetMonthly !== undefined);
    // Budgets need a bound on the completion as much as token limits do: an unset max_tokens is capped for both.
    const limitsTokens = budgets || plan.limits.some((l) => l.tpm !== undefined || l.tpd !== undefined);
    const completionCap = req.generates && req.maxTokens === null && limitsTokens && plan.capUnsetMaxTokens ? plan.defaultMaxTokens : null;
    const reservedCostMicros = budgets ? reserveCost(plan, req, completion) : 0;
    const tag = req.subject.org;
    const options = {
      reservedTokens,
      reservedCostMicros,
      utcOffsetMs: this.#zone.at(this.#now()),
      leaseMs: this.#cfg.leaseTtlSeconds * 1000,
      kinds: req.kinds,
      share: 1,
    };
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
      // A call the breaker skipped never reached Redis: nothing to undo, and no extra load on a sick store.
      if (!(err instanceof CircuitOpenError))
        this.#d.primary.settle(req.requestId, tag, { tokenDelta: -reservedTokens, costDelta: -reservedCostMicros }).catch(() => undefined);
      this.#refuseIfRecentlyDenied(plan, tag, limits);
      this.#logDegraded(plan, err);
      m.quotaDegraded.inc({ plan: plan.name, policy: plan.whenStoreDown });
      if (plan.whenStoreDown === 'fail_closed') {
        throw new GatewayError('quota_unavailable', 'The quota service is unavailable; the request was not admitted.', { headers: { 'retry-after': '1' } });
      }
      if (plan.whenStoreDown === 'fail_open') {
        return {
          plan: plan.name,
          soft: null,
          mode: 'fail_open',
          reservedTokens,
          reservedCostMicros,
          currency: plan.currency,
          completionCap,
          headers: [],
          requestId: req.requestId,
          tag,
          store: null,
        };
      }
      mode = 'local';
      store = this.#d.local;
      decision = await store.admit(req.requestId, tag, buildLimits(plan, req.subject, { ...options, share: plan.localShare }));
    }
    const headers = rateLimitHeaders(decision.states, plan.currency);
    if (reservedCostMicros > 0 || budgets) this.#observeBudgets(plan, req.subject.tenant, decision);
    if (!decision.admitted) {
      if (mode === 'store') this.#rememberDenial(tag, limits, decision.deniedBy, decision.retryAfterMs);
      m.quotaDecisions.inc({ plan: plan.name, outcome: 'denied', limit: limitKind(decision.deniedBy) });
      const retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      throw refusal(decision.deniedBy, decision.retryAfterMs, plan, Object.fromEntries([...headers, ['retry-after', retryAfter]]));
    }
    m.quotaDecisions.inc({ plan: plan.name, outcome: 'admitted', limit: 'none' });
    if (limits.some((l) => l.kind === 'concurrency')) this.#hold(req.requestId, store, tag);
    return {
      plan: plan.name,
      soft: softAction(plan, decision),
      mode,
      reservedTokens,
      reservedCostMicros,
      currency: plan.currency,
      completionCap,
      headers,
      requestId: req.requestId,
      tag,
      store,
    };
  }

  /** Real usage and cost against the reservation, leases released. Never throws: a failed settlement is logged and counted. */
  async settle(ticket: QuotaTicket, usedTokens: number, cost: RequestCost | null): Promise<void> {
    if (ticket.store === null) return;
    this.#release(ticket.requestId);
    // Budgets count whole micro units, rounded up: a request is never charged less than it cost.
    const spent = cost !== null && cost.currency === ticket.currency ? Number(unitsToMicrosCeil(cost.units)) : 0;
    const costDelta = ticket.reservedCostMicros === 0 && spent === 0 ? 0 : spent - ticket.reservedCostMicros;
    try {
      await ticket.store.settle(ticket.requestId, ticket.tag, { tokenDelta: usedTokens - ticket.reservedTokens, costDelta });
    } catch (err) {
      this.#d.metrics.quotaStoreErrors.inc({ operation: 'settle' });
      this.#d.log.warn({ requestId: ticket.requestId, err: errorMessage(err) }, 'quota settlement failed; leases expire by TTL');
    }
  }

  /**
   * One heartbeat: renews the leases of every request in flight, one store call per (store, tag). A request
   * older than leaseSeconds is no longer renewed (its lease then expires by TTL), nor one whose lease is gone.
   * A failed renewal is counted and retried at the next beat; the TTL leaves room for missed beats.
   */
  renewLeases(): Promise<void> {
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = null;
    });
    return this.#renewing;
  }

  /** Stops the heartbeat (shutdown). */
  close(): void {
    this.#stopHeartbeat?.();
    this.#stopHeartbeat = null;
    this.#held.clear();
  }

  /** Requests whose leases the heartbeat renews (for tests and metrics). */
  get leasesHeld(): number {
    return this.#held.size;
  }

  async #renewOnce(): Promise<void> {
    const now = this.#now();
    const maxMs = this.#cfg.leaseSeconds * 1000;
    const groups = new Map<QuotaStore, Map<string, string[]>>();
    for (const [id, h] of this.#held) {
      if (now - h.since >= maxMs) {
        this.#release(id);
        this.#d.log.warn(
          { requestId: id, leaseSeconds: this.#cfg.leaseSeconds },
          'request in flight past quotas.leaseSeconds: its concurrency lease is no longer renewed',
        );
        continue;
      }
      const byTag = groups.get(h.store) ?? new Map<string, string[]>();
      groups.set(h.store, byTag);
      byTag.set(h.tag, [...(byTag.get(h.tag) ?? []), id]);
    }
    const leaseMs = this.#cfg.leaseTtlSeconds * 1000;
    const calls: Array<Promise<void>> = [];
    for (const [store, byTag] of groups) {
      for (const [tag, ids] of byTag) {
        calls.push(
          store.renew(tag, ids, leaseMs).then(
            (alive) => ids.forEach((id, i) => alive[i] === false && this.#release(id)),
            (err: unknown) => {
              this.#d.metrics.quotaStoreErrors.inc({ operation: 'renew' });
              this.#d.log.warn({ tag, requests: ids.length, err: errorMessage(err) }, 'concurrency lease renewal failed; retried at the next beat');
            },
          ),
        );
      }
    }
    await Promise.all(calls);
  }

  #hold(requestId: string, store: QuotaStore, tag: string): void {
    this.#held.set(requestId, { store, tag, since: this.#now() });
    this.#stopHeartbeat ??= this.#schedule(() => void this.renewLeases(), this.#cfg.leaseRenewSeconds * 1000);
  }

  #release(requestId: string): void {
    this.#held.delete(requestId);
    if (this.#held.size === 0 && this.#stopHeartbeat !== null) {
      this.#stopHeartbeat();
      this.#stopHeartbeat = null;
    }
  }

  #rememberDenial(tag: string, limits: readonly LimitSpec[], deniedBy: string, retryAfterMs: number): void {
    const spec = limits.find((l) => l.name === deniedBy);
    if (spec === undefined) return;
    const key = `${tag}\0${spec.key}`;
    this.#denials.delete(key); // re-inserted last: the map stays ordered by age
    if (this.#denials.size >= MAX_DENIALS) {
      const now = this.#now();
      for (const [k, d] of this.#denials) if (d.until <= now) this.#denials.delete(k);
      if (this.#denials.size >= MAX_DENIALS) this.#denials.delete(this.#denials.keys().next().value as string);
    }
    this.#denials.set(key, { until: this.#now() + retryAfterMs, name: deniedBy });
  }

  /** While the store cannot decide: a caller it refused is still refused (429), until the retry time it gave. */
  #refuseIfRecentlyDenied(plan: QuotaPlan, tag: string, limits: readonly LimitSpec[]): void {
    const now = this.#now();
    for (const spec of limits) {
      const key = `${tag}\0${spec.key}`;
      const d = this.#denials.get(key);
      if (d === undefined) continue;
      if (d.until <= now) {
        this.#denials.delete(key);
        continue;
      }
      const waitMs = d.until - now;
      this.#d.metrics.quotaDecisions.inc({ plan: plan.name, outcome: 'denied', limit: limitKind(d.name) });
      throw refusal(d.name, waitMs, plan, { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) });
    }
  }

  /** How much of each budget the decision saw used (the budget_used_ratio gauge: the near-exhaustion alert). */
  #observeBudgets(plan: QuotaPlan, tenant: string, decision: Decision): void {
    for (const st of decision.states) {
      if (!st.name.startsWith('budget:') || st.limit <= 0) continue;
      const [, period = '', scope = ''] = st.name.split(':');
      // A refused decision reports remaining 0 on its refusing limit: fully used as far as the caller is concerned.
      this.#d.metrics.budgetUsed.set({ plan: plan.name, budget: period, scope, tenant }, Math.min(1, (st.limit - st.remaining) / st.limit));
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

/** `requests:rpm:tenant` → `rpm`, `budget:daily:org` → `budget_daily` (a bounded metric label). */
function limitKind(name: string): string {
  const [family, kind] = name.split(':');
  if (family === 'budget') return `budget_${kind ?? 'unknown'}`;
  return kind ?? 'concurrency';
}

function describe(name: string): string {
  const [family, kind, scope] = name.split(':');
  if (family === 'concurrency') return `concurrent requests per ${kind ?? 'scope'}`;
  if (family === 'budget') return `${kind ?? ''} spend budget per ${scope ?? 'scope'}`;
  return `${kind ?? family} per ${scope ?? 'scope'}`;
}

/** The client's error for a refusing limit: a spend budget, the daily token cap, or a rate. */
function refusal(name: string, waitMs: number, plan: QuotaPlan, headers: Record<string, string>): GatewayError {
  if (name.startsWith('budget:'))
    return new GatewayError('budget_exceeded', `Spend budget exhausted (${describe(name)}, ${plan.currency}); it resets in ${formatReset(waitMs)}.`, {
      headers,
    });
  if (name.startsWith('tokens:tpd'))
    return new GatewayError('insufficient_quota', `Daily token quota exhausted (${describe(name)}); it resets in ${formatReset(waitMs)}.`, { headers });
  return new GatewayError('rate_limit_exceeded', `Rate limit reached (${describe(name)}); retry in ${formatReset(waitMs)}.`, { headers });
}

/**
 * The spend a budget reserves: the most the request can cost at the dearest deployment that may answer it (every
 * prompt token uncached, the whole completion allowance used), in micro units rounded up. A deployment priced in
 * another currency cannot be counted against the budget: the request is refused rather than let through unmetered.
 */
function reserveCost(plan: QuotaPlan, req: QuotaRequest, completion: number): number {
  let most = 0n;
  for (const p of req.prices) {
    if (p.currency !== plan.currency)
      throw new GatewayError(
        'budget_currency_mismatch',
        `The model '${req.subject.model}' is priced in ${p.currency}, but your spend budget counts ${plan.currency}; the request was not admitted.`,
      );
    const units = maxCostUnits(p, req.promptTokens, completion);
    if (units > most) most = units;
  }
  return Number(unitsToMicrosCeil(most));
}

export type { LimitSpec };
