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
  /** `<tag>\0<limit key>` → when the store said the caller may retry, and whether it was the daily cap. */
  readonly #denials = new Map<string, { until: number; daily: boolean; name: string }>();
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
    const options = { reservedTokens, utcOffsetMs: this.#zone.at(this.#now()), leaseMs: this.#cfg.leaseTtlSeconds * 1000, kinds: req.kinds, share: 1 };
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
      if (!(err instanceof CircuitOpenError)) this.#d.primary.settle(req.requestId, tag, { tokenDelta: -reservedTokens }).catch(() => undefined);
      this.#refuseIfRecentlyDenied(plan, tag, limits);
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
      if (mode === 'store') this.#rememberDenial(tag, limits, decision.deniedBy, decision.retryAfterMs, daily);
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
    if (limits.some((l) => l.kind === 'concurrency')) this.#hold(req.requestId, store, tag);
    return { plan: plan.name, soft: softAction(plan, decision), mode, reservedTokens, completionCap, headers, requestId: req.requestId, tag, store };
  }

  /** Real usage against the reservation, leases released. Never throws: a failed settlement is logged and counted. */
  async settle(ticket: QuotaTicket, usedTokens: number): Promise<void> {
    if (ticket.store === null) return;
    this.#release(ticket.requestId);
    try {
      await ticket.store.settle(ticket.requestId, ticket.tag, { tokenDelta: usedTokens - ticket.reservedTokens });
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

  #rememberDenial(tag: string, limits: readonly LimitSpec[], deniedBy: string, retryAfterMs: number, daily: boolean): void {
    const spec = limits.find((l) => l.name === deniedBy);
    if (spec === undefined) return;
    const key = `${tag}\0${spec.key}`;
    this.#denials.delete(key); // re-inserted last: the map stays ordered by age
    if (this.#denials.size >= MAX_DENIALS) {
      const now = this.#now();
      for (const [k, d] of this.#denials) if (d.until <= now) this.#denials.delete(k);
      if (this.#denials.size >= MAX_DENIALS) this.#denials.delete(this.#denials.keys().next().value as string);
    }
    this.#denials.set(key, { until: this.#now() + retryAfterMs, daily, name: deniedBy });
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
      throw new GatewayError(
        d.daily ? 'insufficient_quota' : 'rate_limit_exceeded',
        d.daily
          ? `Daily token quota exhausted (${describe(d.name)}); it resets in ${formatReset(waitMs)}.`
          : `Rate limit reached (${describe(d.name)}); retry in ${formatReset(waitMs)}.`,
        { headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) } },
      );
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
