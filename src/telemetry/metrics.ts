/**
 * Prometheus metrics. Label values come only from bounded sets: config
 * (org, tenant), the routing snapshot (model ids), our own enums (endpoint,
 * phase, decision, kind). Never a request id, key or raw user value.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastHistogram, type Series } from './fast-histogram.ts';

const PREFIX = 'inference_gateway_';

/** How a routing snapshot reached the sidecar (the `source` label of the rejection counter). */
export const SNAPSHOT_SOURCES = ['file', 'admin_push', 'redis'] as const;
export type SnapshotSource = (typeof SNAPSHOT_SOURCES)[number];

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests handled, by endpoint, model, decision and final HTTP status.',
    labelNames: ['endpoint', 'model', 'decision', 'status'] as const,
    registers: [this.registry],
  });

  readonly phaseSeconds = new FastHistogram({
    name: `${PREFIX}phase_duration_seconds`,
    help: 'Time the sidecar spent answering one ext_proc message, by phase.',
    labelName: 'phase',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });

  readonly tokens = new Counter({
    name: `${PREFIX}tokens_total`,
    help: 'Tokens by org, tenant, model, kind (prompt|completion) and source (counted|estimated).',
    labelNames: ['org', 'tenant', 'model', 'kind', 'source'] as const,
    registers: [this.registry],
  });

  readonly cost = new Counter({
    name: `${PREFIX}cost_total`,
    help: "What requests cost at their deployment's price, by org, tenant, logical model and currency (a float sum: the audit record holds the exact amounts).",
    labelNames: ['org', 'tenant', 'model', 'currency'] as const,
    registers: [this.registry],
  });

  readonly timeToFirstToken = new Histogram({
    name: `${PREFIX}time_to_first_token_seconds`,
    help: 'From the request reaching the sidecar to the first generated token of a stream.',
    labelNames: ['model'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /**
   * One observation per streamed request: the mean gap between successive
   * response chunks that carried generated text, (last − first) / (chunks − 1),
   * for streams with two or more such chunks. The per-request mean rather than
   * one observation per gap: every request weighs the same (a long answer does
   * not drown the short ones), it is what other gateways export as ITL, and it
   * costs one observation per request instead of one per chunk on the hot
   * path. A chunk is what Envoy hands the sidecar: it may carry several tokens
   * (a server or proxy batching), so this is the gap between deliveries, the
   * latency a client actually sees between pieces of text.
   */
  readonly interTokenLatency = new FastHistogram({
    name: `${PREFIX}inter_token_latency_seconds`,
    help: 'Per streamed request, the mean time between successive response chunks carrying generated text (streams with 2 or more such chunks), by model.',
    labelName: 'model',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly outputTokensPerSecond = new FastHistogram({
    name: `${PREFIX}output_tokens_per_second`,
    help: "Per completed streamed request with 2 or more content chunks and the server's completion token count: completion tokens / (end of stream − first token), by model.",
    labelName: 'model',
    buckets: [1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2500],
    registers: [this.registry],
  });

  readonly upstreamResponses = new Counter({
    name: `${PREFIX}upstream_responses_total`,
    help: 'Upstream attempts by logical model, deployment cluster, provider and status class (2xx|3xx|4xx|5xx|none: no response came). Every attempt of a fallback chain counts.',
    labelNames: ['model', 'cluster', 'provider', 'status_class'] as const,
    registers: [this.registry],
  });

  readonly upstreamLatency = new FastHistogram({
    name: `${PREFIX}upstream_latency_seconds`,
    help: "From the request leaving the sidecar (or a fallback attempt starting) to the deployment's response headers, by deployment cluster.",
    labelName: 'cluster',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly activeStreams = new Gauge({
    name: `${PREFIX}active_streams`,
    help: 'ext_proc streams (one per HTTP request) currently open.',
    registers: [this.registry],
  });

  readonly auditCommitSeconds = new FastHistogram({
    name: `${PREFIX}audit_commit_duration_seconds`,
    help: 'Time from handing an audit record to the sink until it was written.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly #auditCommit = this.auditCommitSeconds.series();

  readonly auditFailures = new Counter({
    name: `${PREFIX}audit_failures_total`,
    help: 'Audit records that could not be committed (the request failed closed).',
    registers: [this.registry],
  });

  readonly fallbacks = new Counter({
    name: `${PREFIX}fallbacks_total`,
    help: 'Attempts of requests with fallbacks that failed over to the next deployment, by logical model, provider of the failed deployment and reason (rate_limited|server_error|unreachable|unknown).',
    labelNames: ['model', 'provider', 'reason'] as const,
    registers: [this.registry],
  });

  readonly destinationRoutings = new Counter({
    name: `${PREFIX}destination_routings_total`,
    help: "Requests the data policy's destination rules acted on, by rule and result: constrained (some deployment of the route was excluded, an authorized one served), refused (none authorized: 403), unavailable (authorized ones drained or down: 503).",
    labelNames: ['rule', 'result'] as const,
    registers: [this.registry],
  });

  readonly streamErrors = new Counter({
    name: `${PREFIX}stream_errors_total`,
    help: 'ext_proc streams that ended abnormally, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly jwksFetches = new Counter({
    name: `${PREFIX}jwks_fetches_total`,
    help: 'JWKS fetches by configured issuer and outcome (ok|error).',
    labelNames: ['issuer', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly introspectionCalls = new Counter({
    name: `${PREFIX}introspection_calls_total`,
    help: 'Token introspection calls by configured issuer and outcome (active|inactive|error; circuit_open: refused without a call).',
    labelNames: ['issuer', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly quotaDecisions = new Counter({
    name: `${PREFIX}quota_decisions_total`,
    help: 'Quota decisions by plan, outcome (admitted|denied) and the refusing limit kind (rps|rpm|tpm|tpd|concurrency).',
    labelNames: ['plan', 'outcome', 'limit'] as const,
    registers: [this.registry],
  });

  readonly quotaStoreErrors = new Counter({
    name: `${PREFIX}quota_store_errors_total`,
    help: 'Quota store (Redis) failures by operation (admit|settle).',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly budgetUsed = new Gauge({
    name: `${PREFIX}budget_used_ratio`,
    help: "Share of a spend budget used (reservations included) at the last decision that checked it, by plan, period (daily|monthly), scope and tenant (the requester's tenant).",
    labelNames: ['plan', 'budget', 'scope', 'tenant'] as const,
    registers: [this.registry],
  });

  readonly quotaDegraded = new Counter({
    name: `${PREFIX}quota_degraded_decisions_total`,
    help: "Requests decided by a plan's store-down policy (fail_closed|fail_open|local) instead of the store.",
    labelNames: ['plan', 'policy'] as const,
    registers: [this.registry],
  });

  readonly traceSpansDropped = new Counter({
    name: `${PREFIX}trace_spans_dropped_total`,
    help: 'Request spans that never reached the trace collector, by reason (queue_full: the export queue was full; export_failed: the collector refused, failed or timed out).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly snapshotInfo = new Gauge({
    name: `${PREFIX}routing_snapshot_info`,
    help: 'The routing snapshot in use (value 1, version as label).',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });

  readonly snapshotRejections = new Counter({
    name: `${PREFIX}routing_snapshot_rejections_total`,
    help: 'Routing snapshots refused (invalid, untrusted, older than the one in use, or refused by policy.destinationCheck; the last good one kept serving), by how they arrived.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly snapshotLoadedAt = new Gauge({
    name: `${PREFIX}routing_snapshot_loaded_timestamp_seconds`,
    help: 'When the routing snapshot in use was loaded.',
    registers: [this.registry],
  });

  /** When the snapshot in use was issued (or, without an issue time, loaded), epoch ms; read at scrape time. */
  #snapshotBornMs: number | null = null;
  readonly #now: () => number;

  readonly snapshotAge = new Gauge({
    name: `${PREFIX}routing_snapshot_age_seconds`,
    help: 'Seconds since the routing snapshot in use was issued by the control plane (its issuedAt; its load time when it carries none). Computed at scrape time.',
    registers: [this.registry],
    collect: () => {
      if (this.#snapshotBornMs !== null) this.snapshotAge.set(Math.max(0, (this.#now() - this.#snapshotBornMs) / 1000));
    },
  });

  constructor(opts: { processMetrics?: boolean; now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
    // Event-loop delay sampled every 100 ms, not prom-client's default 10 ms: its timer woke the process 100 times a
    // second for a gauge scraped every ~15 s (idle CPU, and wake-ups that add to every request at a steady rate).
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: PREFIX, eventLoopMonitoringPrecision: 100 });
    // Every delivery channel's series exists from the start, so an alert on increase() sees the first rejection.
    for (const source of SNAPSHOT_SOURCES) this.snapshotRejections.inc({ source }, 0);
  }

  /**
   * The hot-path series, through children bound once per label tuple: prom-client hashes a label object on every
   * call otherwise (sorting its names), several times per request. Label values are bounded (see above), so the
   * caches are too.
   */
  readonly #phaseChildren = new Map<string, Series>();
  readonly #requestChildren = new Map<string, { inc(v?: number): void }>();
  readonly #tokenChildren = new Map<string, { inc(v?: number): void }>();
  readonly #costChildren = new Map<string, { inc(v?: number): void }>();
  readonly #itlChildren = new Map<string, Series>();
  readonly #tpsChildren = new Map<string, Series>();
  readonly #upstreamChildren = new Map<string, { inc(v?: number): void }>();
  readonly #destinationChildren = new Map<string, { inc(v?: number): void }>();
  readonly #upstreamLatencyChildren = new Map<string, Series>();

  observePhase(phase: string, seconds: number): void {
    let child = this.#phaseChildren.get(phase);
    if (child === undefined) this.#phaseChildren.set(phase, (child = this.phaseSeconds.series(phase)));
    child.observe(seconds);
  }

  countRequest(endpoint: string, model: string, decision: string, status: string): void {
    const key = `${endpoint}\0${model}\0${decision}\0${status}`;
    let child = this.#requestChildren.get(key);
    if (child === undefined) this.#requestChildren.set(key, (child = this.requests.labels(endpoint, model, decision, status)));
    child.inc();
  }

  countTokens(org: string, tenant: string, model: string, kind: 'prompt' | 'completion', source: string, n: number): void {
    const key = `${org}\0${tenant}\0${model}\0${kind}\0${source}`;
    let child = this.#tokenChildren.get(key);
    if (child === undefined) this.#tokenChildren.set(key, (child = this.tokens.labels(org, tenant, model, kind, source)));
    child.inc(n);
  }

  /** `units` in 10⁻¹² of the currency (src/pipeline/cost.ts). */
  countCost(org: string, tenant: string, model: string, currency: string, units: bigint): void {
    const key = `${org}\0${tenant}\0${model}\0${currency}`;
    let child = this.#costChildren.get(key);
    if (child === undefined) this.#costChildren.set(key, (child = this.cost.labels(org, tenant, model, currency)));
    child.inc(Number(units) / 1e12);
  }

  observeInterTokenLatency(model: string, seconds: number): void {
    let child = this.#itlChildren.get(model);
    if (child === undefined) this.#itlChildren.set(model, (child = this.interTokenLatency.series(model)));
    child.observe(seconds);
  }

  observeOutputTokensPerSecond(model: string, rate: number): void {
    let child = this.#tpsChildren.get(model);
    if (child === undefined) this.#tpsChildren.set(model, (child = this.outputTokensPerSecond.series(model)));
    child.observe(rate);
  }

  /** One upstream attempt: `status` null when no response came. */
  countUpstreamResponse(model: string, cluster: string, provider: string, status: number | null): void {
    const statusClass = status === null || status < 100 || status > 599 ? 'none' : `${Math.floor(status / 100)}xx`;
    const key = `${model}\0${cluster}\0${provider}\0${statusClass}`;
    let child = this.#upstreamChildren.get(key);
    if (child === undefined) this.#upstreamChildren.set(key, (child = this.upstreamResponses.labels(model, cluster, provider, statusClass)));
    child.inc();
  }

  countDestinationRouting(rule: string, result: 'constrained' | 'refused' | 'unavailable'): void {
    // Children cached as for the upstream counter: a constrained routing is counted on every such request.
    const key = `${rule}\0${result}`;
    let child = this.#destinationChildren.get(key);
    if (child === undefined) this.#destinationChildren.set(key, (child = this.destinationRoutings.labels(rule, result)));
    child.inc();
  }

  observeUpstreamLatency(cluster: string, seconds: number): void {
    let child = this.#upstreamLatencyChildren.get(cluster);
    if (child === undefined) this.#upstreamLatencyChildren.set(cluster, (child = this.upstreamLatency.series(cluster)));
    child.observe(seconds);
  }

  observeAuditCommit(seconds: number): void {
    this.#auditCommit.observe(seconds);
  }

  /** `issuedAt`: the control plane's issue time (epoch ms) when the snapshot carries one. */
  setSnapshot(version: string, loadedAt: number, issuedAt: number | null = null): void {
    this.snapshotInfo.reset();
    this.snapshotInfo.set({ version }, 1);
    this.snapshotLoadedAt.set(loadedAt / 1000);
    this.#snapshotBornMs = issuedAt ?? loadedAt;
  }
}
