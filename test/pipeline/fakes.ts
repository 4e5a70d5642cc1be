/**
 * Plain fakes of every port the request processor depends on, for hermetic
 * tests of whole phase sequences: no sockets, no Envoy, no stores. Each fake
 * records what it was asked and can be told to fail.
 */
import { pino } from 'pino';
import { AttemptProcessor } from '../../src/pipeline/attempt.ts';
import { MemoryAttemptLedger } from '../../src/stages/route/attempt-ledger.ts';
import { pickAmong } from '../../src/stages/route/resolver.ts';
import { RequestProcessor, type HeaderView, type RequestState } from '../../src/pipeline/processor.ts';
import type { AuditRecord } from '../../src/pipeline/audit-record.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { NO_CONNECTION_INFO, type ConnectionInfo, type Identity } from '../../src/pipeline/identity.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import type {
  ApiFamily,
  Authenticate,
  AuditSink,
  ContentInspector,
  DestinationGuard,
  CredentialHeaders,
  Finding,
  Inspection,
  PolicySubject,
  QuotaGate,
  QuotaRequest,
  QuotaTicket,
  RedactFn,
  RequestTracer,
  RouteResolver,
  TextRef,
  Translators,
  UpstreamCredentials,
} from '../../src/pipeline/ports.ts';
import { pricesOf, type Deployment, type ModelRoute, type RequestTransforms, type Snapshot, type TrustAttributes } from '../../src/pipeline/snapshot.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';

export function identity(over: Partial<Identity> = {}): Identity {
  return {
    methods: ['api_key'],
    principal: 'key:k1',
    org: 'acme',
    tenant: 'research',
    tier: 'standard',
    roles: ['user'],
    models: '*',
    endpoints: '*',
    keyId: 'k1',
    jwt: null,
    introspection: null,
    mtls: null,
    ...over,
  };
}

/** Bearer tokens → identities; anything else is refused as an unknown key. */
export class FakeAuth implements Authenticate {
  readonly seen: Array<{ headers: CredentialHeaders; endpoint: string | null }> = [];
  readonly #ids: ReadonlyMap<string, Identity>;

  constructor(ids: Record<string, Identity>) {
    this.#ids = new Map(Object.entries(ids));
  }

  async authenticate(headers: CredentialHeaders, _conn: ConnectionInfo, endpoint: string | null): Promise<Identity> {
    this.seen.push({ headers, endpoint });
    if (headers.authorization === undefined) throw new GatewayError('missing_api_key', 'A credential is required.');
    const id = this.#ids.get(headers.authorization.replace(/^Bearer /, ''));
    if (id === undefined) throw new GatewayError('invalid_api_key', 'Unknown key.');
    return id;
  }
}

export const NO_TRUST_STATED: TrustAttributes = { region: null, residency: null, hosting: null, attestations: [], retention: null, provider: null };

export function deployment(cluster: string, upstreamModel: string, over: Partial<Deployment> = {}): Deployment {
  const trust = over.trust ?? NO_TRUST_STATED;
  return {
    id: `${cluster}/${upstreamModel}`,
    cluster,
    upstreamModel,
    provider: 'openai',
    credential: null,
    weight: 1,
    labels: {},
    trust,
    priorities: [trust],
    price: null,
    fallback: null,
    ...over,
  };
}

export function route(
  id: string,
  endpoints: readonly string[],
  targets: readonly Deployment[],
  overrides: ReadonlyMap<string, ModelRoute> = new Map(),
  transforms: RequestTransforms | null = null,
): ModelRoute {
  let sum = 0;
  return {
    id,
    endpoints: new Set(endpoints),
    ownedBy: 'test',
    responseModel: 'alias',
    targets,
    cumulativeWeights: targets.map((t) => (sum += t.weight)),
    prices: pricesOf(targets),
    overrides,
    transforms,
  };
}

export function snapshot(models: readonly ModelRoute[], version = 'v1'): Snapshot {
  return { version, loadedAt: Date.UTC(2026, 11, 4), issuedAt: null, signedBy: null, models: new Map(models.map((m) => [m.id, m])) };
}

/** Picks targets in a scripted order (the first target by default). */
export class FakeRoutes implements RouteResolver {
  snapshot: Snapshot;
  picks: number[] = [];

  constructor(s: Snapshot) {
    this.snapshot = s;
  }
  current(): Snapshot {
    return this.snapshot;
  }
  forTenant(r: ModelRoute, tenant: string): ModelRoute {
    return r.overrides.get(tenant) ?? r;
  }
  /** Among authorized targets: the first with a weight (the real weighted pick at random 0). */
  pick(r: ModelRoute, among?: ReadonlySet<Deployment>): Deployment {
    if (among !== undefined) return pickAmong(r, among, 0);
    return r.targets[this.picks.shift() ?? 0] as Deployment;
  }
  visibleModels(s: Snapshot, id: Identity): readonly ModelRoute[] {
    return [...s.models.values()].filter((m) => id.models === '*' || id.models.has(m.id));
  }
}

export type FakeTicket = QuotaTicket & { readonly requestId: string };

export class FakeQuota implements QuotaGate<FakeTicket> {
  readonly admitted: QuotaRequest[] = [];
  readonly settled: Array<{ requestId: string; usedTokens: number }> = [];
  /** Set to refuse the next admissions with this error. */
  refuse: GatewayError | null = null;
  /** Set to return no ticket (no plan applies). */
  noPlan = false;
  ticket: Partial<QuotaTicket> = {};

  async admit(req: QuotaRequest): Promise<FakeTicket | null> {
    this.admitted.push(req);
    if (this.refuse !== null) throw this.refuse;
    if (this.noPlan) return null;
    const completion = req.generates ? (req.maxTokens ?? 100) : 0;
    return {
      plan: 'std',
      soft: null,
      mode: 'store',
      reservedTokens: req.promptTokens + completion,
      completionCap: null,
      headers: [['x-ratelimit-limit-requests', '10']],
      ...this.ticket,
      requestId: req.requestId,
    };
  }

  async settle(ticket: FakeTicket, usedTokens: number): Promise<void> {
    this.settled.push({ requestId: ticket.requestId, usedTokens });
  }
}

/**
 * A stand-in for the classifier and policy: `SECRET-…` words are refused,
 * `CARD-…` words redacted as `[REDACTED:CARD]`; everything else permitted.
 */
/** A throw becomes a rejection, as from the real (async) content guard. */
function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}

export class FakeContent implements ContentInspector {
  readonly policyVersion = 'p-test';
  readonly subjects: PolicySubject[] = [];
  responses = true;

  inspectRequest(texts: readonly TextRef[], subject: PolicySubject): Promise<Inspection> {
    this.subjects.push(subject);
    return settle(() => this.#inspect(texts, 'request'));
  }
  inspectsResponses(): boolean {
    return this.responses;
  }
  inspectResponse(texts: readonly TextRef[]): Promise<Inspection> {
    return settle(() => this.#inspect(texts, 'response'));
  }
  streamRedaction(_subject: PolicySubject, onFindings: (found: readonly Finding[]) => void): RedactFn | null {
    if (!this.responses) return null;
    return (text, released) => {
      const spans = [...text.matchAll(/CARD-\d+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length }));
      if (spans.length === 0) return { text, spans };
      if (released) onFindings(spans.map(() => ({ detector: 'card' })));
      return { text: text.replace(/CARD-\d+/g, '[REDACTED:CARD]'), spans };
    };
  }

  #inspect(texts: readonly TextRef[], side: string): Inspection {
    const counts: Record<string, number> = {};
    let redacted = false;
    let action: Inspection['decision']['action'] = 'permit';
    const found = new Set<string>();
    const sent = new Set<string>();
    for (const t of texts) {
      // PHI-<word> is found and permitted (it stays in the text); a card is found and redacted.
      if (/PHI-\w+/.test(t.text)) {
        found.add('PHI');
        sent.add('PHI');
      }
      if (/SECRET-\w+/.test(t.text))
        throw new GatewayError('data_policy_denied', `The ${side} contains data the policy does not allow here: SECRET (policy p-test).`);
      const cards = t.text.match(/CARD-\d+/g);
      if (cards !== null) {
        counts['card'] = (counts['card'] ?? 0) + cards.length;
        t.set(t.text.replace(/CARD-\d+/g, '[REDACTED:CARD]'));
        found.add('PCI');
        redacted = true;
        action = 'redact';
      }
    }
    return { decision: { action, version: this.policyVersion }, counts, redacted, classes: { found: [...found].sort(), sent: [...sent].sort() } };
  }
}

export class FakeCredentials implements UpstreamCredentials {
  readonly #values: ReadonlyMap<string, string>;
  constructor(values: Record<string, string> = {}) {
    this.#values = new Map(Object.entries(values));
  }
  headers(name: string, provider: string): ReadonlyArray<readonly [string, string]> {
    const v = this.#values.get(name);
    if (v === undefined) throw new GatewayError('upstream_credential_unavailable', `The credential for this deployment (${name}) is not available.`);
    return [[provider === 'anthropic' ? 'x-api-key' : 'authorization', provider === 'anthropic' ? v : `Bearer ${v}`]];
  }
}

/** Records every record; `failing` makes the next appends reject (a disk full, a Redis down). */
export class FakeAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  failing = false;
  async append(record: AuditRecord): Promise<void> {
    if (this.failing) throw new Error('disk full');
    this.records.push(record);
  }
  async close(): Promise<void> {}
}

export interface Rig {
  readonly processor: RequestProcessor;
  readonly auth: FakeAuth;
  readonly routes: FakeRoutes;
  readonly quota: FakeQuota;
  readonly content: FakeContent;
  readonly audit: FakeAudit;
  readonly metrics: Metrics;
  /** The upstream phase of targets with fallbacks, over the same fakes and ledger. */
  readonly attempts: AttemptProcessor;
  readonly ledger: MemoryAttemptLedger;
}

export const USER_KEY = 'user-key';

/** A processor over fakes: `gpt` (chat, completions) → cluster `c1` as `up-gpt`, `emb` (embeddings) → `c2`. */
export function rig(
  over: {
    families?: readonly ApiFamily[];
    snapshot?: Snapshot;
    ids?: Record<string, Identity>;
    credentials?: Record<string, string>;
    translators?: Translators;
    extAuthzRedact?: 'deny' | 'permit';
    /** A real content guard instead of the fake (the rig's `content` stays the fake, unused). */
    content?: ContentInspector;
    maxBodyBytes?: number;
    /** The processor's monotonic clock (ns), for timings a test asserts exactly. */
    hrClock?: () => bigint;
    /** Request spans (src/tracing); without one, none. */
    tracer?: RequestTracer;
    /** The metrics the processor counts into (a fresh registry by default). */
    metrics?: Metrics;
    /** The data policy's destination rules (none by default). */
    destinations?: DestinationGuard;
  } = {},
): Rig {
  const auth = new FakeAuth(over.ids ?? { [USER_KEY]: identity() });
  const routes = new FakeRoutes(
    over.snapshot ??
      snapshot([route('gpt', ['chat', 'completions'], [deployment('c1', 'up-gpt')]), route('emb', ['embeddings'], [deployment('c2', 'up-emb')])]),
  );
  const quota = new FakeQuota();
  const content = new FakeContent();
  const audit = new FakeAudit();
  const metrics = over.metrics ?? new Metrics({ processMetrics: false });
  const ledger = new MemoryAttemptLedger();
  const credentials = new FakeCredentials(over.credentials);
  const translators = over.translators ?? { between: () => null };
  const families = over.families ?? [openAIFamily];
  let n = 0;
  const processor = new RequestProcessor({
    options: {
      maxBodyBytes: over.maxBodyBytes ?? 4096,
      maxJsonDepth: 16,
      streamHoldBackChars: 32,
      defaultMaxTokens: 1024,
      extAuthzRedact: over.extAuthzRedact ?? 'deny',
    },
    families,
    defaultFamily: openAIFamily,
    auth,
    routes,
    quota,
    content: over.content ?? content,
    destinations: over.destinations ?? null,
    credentials,
    translators,
    audit,
    attempts: ledger,
    metrics,
    log: pino({ enabled: false }),
    newRequestId: () => `req-${String(++n).padStart(4, '0')}`,
    ...(over.hrClock === undefined ? {} : { hrClock: over.hrClock }),
    tracer: over.tracer ?? null,
  });
  const attempts = new AttemptProcessor({
    families,
    defaultFamily: openAIFamily,
    routes,
    translators,
    credentials,
    ledger,
    log: pino({ enabled: false }),
    options: { maxJsonDepth: 16, defaultMaxTokens: 1024 },
  });
  return { processor, attempts, ledger, auth, routes, quota, content, audit, metrics };
}

// ── Phase sequences ─────────────────────────────────────────────────────────

export type Step =
  | { readonly phase: 'request_headers'; readonly headers: Record<string, string>; readonly endOfStream?: boolean; readonly conn?: ConnectionInfo }
  | { readonly phase: 'request_body'; readonly body: string | Buffer }
  | { readonly phase: 'response_headers'; readonly headers: Record<string, string>; readonly endOfStream?: boolean }
  | { readonly phase: 'response_body'; readonly chunk: string; readonly endOfStream: boolean }
  | { readonly phase: 'abort'; readonly reason: string };

export interface Run {
  readonly state: RequestState;
  /** One result per step that has an answer (abort has none). */
  readonly results: PhaseResult[];
}

function view(h: Record<string, string>): HeaderView {
  return new Map(Object.entries(h));
}

/**
 * Drives the processor as the ext_proc stream does: one phase after another,
 * stopping after a local reply (Envoy sends nothing more for that request).
 */
export async function drive(p: RequestProcessor, steps: readonly Step[]): Promise<Run> {
  const [first, ...rest] = steps;
  if (first?.phase !== 'request_headers') throw new Error('a sequence starts with request headers');
  const head = await p.requestHeaders(view(first.headers), first.endOfStream ?? false, first.conn ?? NO_CONNECTION_INFO);
  const results: PhaseResult[] = [head.result];
  const state = head.state;
  for (const step of rest) {
    if (results.at(-1)?.kind === 'respond') break;
    switch (step.phase) {
      case 'request_body':
        results.push(await p.requestBody(state, Buffer.isBuffer(step.body) ? step.body : Buffer.from(step.body)));
        break;
      case 'response_headers':
        results.push(await p.responseHeaders(state, view(step.headers), step.endOfStream ?? false));
        break;
      case 'response_body':
        results.push(await p.responseBody(state, Buffer.from(step.chunk), step.endOfStream));
        break;
      case 'abort':
        await p.abort(state, step.reason);
        break;
      case 'request_headers':
        throw new Error('request headers come once');
    }
  }
  return { state, results };
}

/** The bytes the client receives over a stream: each chunk's replacement, or the chunk itself. */
export function streamedText(steps: readonly Step[], results: readonly PhaseResult[]): string {
  const chunks = steps.filter((s): s is Extract<Step, { phase: 'response_body' }> => s.phase === 'response_body');
  const offset = results.length - chunks.length;
  return chunks
    .map((c, i) => {
      const r = results[offset + i];
      return r?.kind === 'continue' && r.body !== undefined ? r.body.toString('utf8') : c.chunk;
    })
    .join('');
}
