/**
 * The request's path through the gateway, phase by phase, over ports only
 * (ports.ts): it knows no wire protocol (src/server), no store and no API
 * family by name.
 *
 *   request headers  → sanitize, request id + trace, authenticate, endpoint
 *   request body     → the family parses; resolve the model through the
 *                      snapshot, authorize, inspect, reserve quotas, pick the
 *                      deployment, the family rewrites the body
 *   response headers → status, time to first byte, a stream → streamed body
 *   response body    → usage and redaction (buffered, or chunk by chunk)
 *   end              → metrics, then the audit record is committed before
 *                      the last answer goes back to Envoy
 *
 * Any GatewayError ends the request with the family's JSON error, audited first.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.ts';
import { buildAuditRecord } from './audit-record.ts';
import type { AttemptSummary, RequestContext } from './context.ts';
import { elapsedMs } from './context.ts';
import type { EndpointMatch, EndpointSpec } from './endpoint.ts';
import { errorMessage } from '../shared/values.ts';
import { GatewayError } from './errors.ts';
import { allows, type ConnectionInfo, type Identity } from './identity.ts';
import { CONTINUE, type HeaderEdits, type PhaseResult } from './phase-result.ts';
import type {
  ApiFamily,
  AttemptLedger,
  Authenticate,
  AuditSink,
  ContentInspector,
  DestinationGuard,
  ParsedRequest,
  PolicySubject,
  QuotaGate,
  ProviderTranslator,
  QuotaTicket,
  RequestSpan,
  RequestTracer,
  RouteResolver,
  StreamMeter,
  StreamRedactor,
  Translators,
  UpstreamCredentials,
} from './ports.ts';
import type { Deployment, Fallback, ModelRoute } from './snapshot.ts';
import { ATTEMPT_HEADER, decodeMark, encodeTicket, FALLBACK_HEADER, fallbackReason } from './fallback.ts';
import { continueTrace } from './trace.ts';
import { authorizeRoute, type RouteAuthorization } from './destinations.ts';
import { refuseQueryCredentials, splitTarget } from './query.ts';
import { costUnits } from './cost.ts';
import { estimateTokens, type Usage } from './usage.ts';

/** Request headers as Envoy delivers them: lower-case names, pseudo-headers included. */
export type HeaderView = ReadonlyMap<string, string>;

/** Headers only the gateway may set; a client's copies are removed before anything else. */
export const TRUSTED_PREFIX = 'x-gateway-';
/**
 * Headers that never reach a model server: credentials (the gateway's own, a
 * proxy's, the client's cookies), and identity claims a client might send
 * (the client certificate is only ever read from Envoy's connection
 * attributes).
 */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'proxy-authorization', 'cookie', 'x-forwarded-client-cert'] as const;
/**
 * The client's address and what its proxies claim about the request (host,
 * port, prefix): the gateway is the model server's only client, so none of
 * it is the model server's business. Deployments may be a third party's API,
 * which must not learn end users' addresses; and a client-sent
 * x-forwarded-host or -prefix is unverified text that web frameworks build
 * URLs from. The sidecar itself reads the address from Envoy's connection
 * attributes (source.address), never from these. Every other x-forwarded-*
 * a client sends goes too (FORWARDED_PREFIX), except x-forwarded-proto:
 * Envoy overwrites it with the scheme of the client's connection (it is never
 * the client's), and its route lookup finds no route without it once the
 * route cache is cleared.
 */
const CLIENT_ORIGIN_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'] as const;
const FORWARDED_PREFIX = 'x-forwarded-';
const STRIPPED: ReadonlySet<string> = new Set([...CREDENTIAL_HEADERS, ...CLIENT_ORIGIN_HEADERS]);
const FORWARDED_PROTO = 'x-forwarded-proto';
const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;
const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;

export interface ProcessorOptions {
  /** The sidecar's own body limit (Envoy's buffer limit is the first one). */
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  /** Generated text held back in a stream so a value split over events is still redacted. */
  readonly streamHoldBackChars: number;
  /** max_tokens sent to a provider that requires one (Anthropic) when neither the client nor the quota plan set one. */
  readonly defaultMaxTokens: number;
  /** ext_authz cannot rewrite a body: what the data policy's *redact* becomes there (policy.extAuthzRedact). */
  readonly extAuthzRedact: 'deny' | 'permit';
}

export interface ProcessorDeps {
  readonly options: ProcessorOptions;
  /** Tried in order; the first whose paths match serves the request. Non-empty. */
  readonly families: readonly ApiFamily[];
  /** Formats errors for a request no family serves, unless the client is recognisably another family's. */
  readonly defaultFamily: ApiFamily;
  readonly auth: Authenticate;
  readonly routes: RouteResolver;
  readonly quota: QuotaGate;
  readonly content: ContentInspector;
  /** The data policy's destination rules; none given: no rule applies, any deployment of the route may serve. */
  readonly destinations?: DestinationGuard | null;
  readonly credentials: UpstreamCredentials;
  /** Serves a client of one family from a deployment of another provider. */
  readonly translators: Translators;
  readonly audit: AuditSink;
  /** The attempts of requests with fallbacks, as the upstream phase noted them. */
  readonly attempts: AttemptLedger;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Request spans (OpenTelemetry) when tracing is configured; without one the client's trace is continued, nothing recorded. */
  readonly tracer?: RequestTracer | null;
  /** A new request id when Envoy sent none (tests make it deterministic). */
  readonly newRequestId?: () => string;
  /** The monotonic clock (ns) of the request's timings: start, first byte, content chunks, end (tests drive it). */
  readonly hrClock?: () => bigint;
}

/** Which Envoy protocol carries the request: ext_authz sees no body rewrite and no response. */
export type Protocol = 'ext_proc' | 'ext_authz';

export type Outcome = 'completed' | 'denied' | 'failed' | 'aborted';

/** Per-request state the processor keeps beyond the shared context. */
export interface RequestState {
  readonly ctx: RequestContext;
  readonly protocol: Protocol;
  /** The family whose paths matched (when none did: the client's, or the default; it formats the error). */
  readonly family: ApiFamily;
  /** The endpoint, once the head was accepted. */
  endpoint: EndpointSpec | null;
  request: ParsedRequest | null;
  meter: StreamMeter | null;
  /** Redacts generated text of a streamed response (after the usage meter). */
  redactor: StreamRedactor | null;
  /** Set when the deployment speaks another provider's API than the client. */
  translator: ProviderTranslator | null;
  /** The picked target's fallback chain: Envoy's attempts are rewritten per member (src/pipeline/attempt.ts). */
  fallback: Fallback | null;
  /** What the data policy's destination rules authorize of the chosen route; null when no rule applied. */
  authorization: RouteAuthorization | null;
  /** The quota reservation to settle when the request ends. */
  quota: QuotaTicket | null;
  /** The model server's retry-after, kept when its own 429 is put into the gateway's envelope. */
  upstreamRetryAfter: string | null;
  /** When the request left the sidecar for the upstream (the body phase continued), for the upstream latency. */
  sentHr: bigint | null;
  /** The status the response headers carried (ctx.status may become the gateway's own error status later). */
  upstreamStatus: number | null;
  /** Response chunks of a stream that carried generated text, and when the last of them arrived (inter-token latency). */
  contentChunks: number;
  lastContentHr: bigint | null;
  /** The request's span, ended once its audit record is written; null when tracing is off or the request not sampled. */
  readonly span: RequestSpan | null;
  finished: boolean;
}

const JSON_HEADERS: ReadonlyArray<readonly [string, string]> = [['content-type', 'application/json']];

export class RequestProcessor {
  readonly #d: ProcessorDeps;
  readonly #newRequestId: () => string;
  readonly #clock: () => bigint;
  readonly #tracer: RequestTracer | null;

  constructor(deps: ProcessorDeps) {
    if (deps.families.length === 0) throw new Error('RequestProcessor needs at least one API family');
    this.#d = deps;
    this.#newRequestId = deps.newRequestId ?? randomUUID;
    this.#clock = deps.hrClock ?? (() => process.hrtime.bigint());
    this.#tracer = deps.tracer ?? null;
  }

  /** Phase 1. Always returns a state, so a denial is audited like any request. */
  async requestHeaders(
    headers: HeaderView,
    endOfStream: boolean,
    conn: ConnectionInfo,
    protocol: Protocol = 'ext_proc',
  ): Promise<{ state: RequestState; result: PhaseResult }> {
    const incomingId = headers.get('x-request-id');
    const method = headers.get(':method') ?? '';
    // The query string goes no further than this line: not into the record, not upstream (requestHeaderEdits).
    const { path, query } = splitTarget(headers.get(':path') ?? '');
    const { family, match } = this.#match(method, path, headers);
    const startedAt = Date.now();
    // With tracing, the request's span starts here and its ids are the trace context sent upstream.
    const started = this.#tracer === null ? null : this.#tracer.start(headers.get('traceparent'), startedAt);
    const ctx: RequestContext = {
      requestId: incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : this.#newRequestId(),
      trace: started === null ? continueTrace(headers.get('traceparent')) : started.trace,
      startedAt,
      startedHr: this.#clock(),
      method,
      path,
      endpoint: match.ok ? match.endpoint.name : null,
      snapshot: this.#d.routes.current(),
      identity: null,
      route: null,
      deployment: null,
      attempts: null,
      stream: false,
      clientWantsStreamUsage: false,
      usage: null,
      cost: null,
      status: null,
      errorCode: null,
      firstByteHr: null,
      firstTokenHr: null,
      outcome: null,
      quota: null,
      content: null,
      destinations: null,
      transforms: null,
    };
    const state: RequestState = {
      ctx,
      protocol,
      family,
      endpoint: null,
      request: null,
      meter: null,
      redactor: null,
      translator: null,
      fallback: null,
      authorization: null,
      quota: null,
      upstreamRetryAfter: null,
      sentHr: null,
      upstreamStatus: null,
      contentChunks: 0,
      lastContentHr: null,
      span: started?.span ?? null,
      finished: false,
    };
    try {
      // A credential in the URL is refused before any is checked (it is exposed however the request ends).
      refuseQueryCredentials(query);
      // Authenticate before anything else: an anonymous caller learns nothing, not even which paths exist.
      const identity = await this.#d.auth.authenticate({ authorization: headers.get('authorization'), xApiKey: headers.get('x-api-key') }, conn, ctx.endpoint);
      ctx.identity = identity;
      const endpoint = acceptedEndpoint(match, method, path);
      if (!allows(identity.endpoints, endpoint.name)) {
        throw new GatewayError('endpoint_not_allowed', `You are not allowed to call ${endpoint.path}.`);
      }
      state.endpoint = endpoint;
      switch (endpoint.kind) {
        case 'model_list':
          return { state, result: await this.#respondOk(state, family.modelList(this.#d.routes.visibleModels(ctx.snapshot, identity), ctx.snapshot)) };
        case 'model_get':
          return {
            state,
            result: await this.#respondOk(state, family.modelObject(this.#visibleModel(ctx, identity, match.ok ? (match.modelId ?? '') : ''), ctx.snapshot)),
          };
        case 'inference': {
          if (endOfStream) throw new GatewayError('invalid_request_body', 'The request body is empty; a JSON object is required.');
          const type = headers.get('content-type');
          if (type === undefined || !JSON_CONTENT_TYPE.test(type)) {
            throw new GatewayError('unsupported_content_type', 'The request body must be sent with content-type: application/json.');
          }
          return { state, result: { kind: 'continue', headers: requestHeaderEdits(headers, ctx, identity) } };
        }
      }
    } catch (err) {
      return { state, result: await this.#fail(state, err) };
    }
  }

  /** Phase 2: the whole request body (BUFFERED). */
  async requestBody(state: RequestState, body: Buffer): Promise<PhaseResult> {
    const { ctx } = state;
    try {
      const endpoint = state.endpoint;
      const identity = ctx.identity;
      if (endpoint === null || identity === null) throw new Error('request body before an accepted request head');
      const { maxBodyBytes, maxJsonDepth } = this.#d.options;
      if (body.length > maxBodyBytes) {
        throw new GatewayError('request_too_large', `The request body is ${body.length} bytes; the limit is ${maxBodyBytes}.`);
      }
      const parsed = state.family.parseRequest(endpoint, body, { maxJsonDepth });
      state.request = parsed;
      const route = this.#routableModel(ctx, identity, endpoint, parsed.model);
      // The model's transforms, before anything else reads the body: the quota reserves their max_tokens, the data
      // policy reads their system prompt prefix.
      const req = this.#transformed(state, endpoint, parsed, route);
      state.request = req;
      // A tenant with its own deployment of this model goes there.
      ctx.route = this.#d.routes.forTenant(route, identity.tenant);
      ctx.stream = req.stream;
      ctx.clientWantsStreamUsage = req.clientWantsStreamUsage;
      // One atomic decision over every limit of the caller's plan; a refusal is a 429 with retry-after.
      const ticket = await this.#d.quota.admit({
        requestId: ctx.requestId,
        subject: { principal: identity.principal, keyId: identity.keyId, org: identity.org, tenant: identity.tenant, model: route.id },
        tier: identity.tier,
        endpoint: endpoint.name,
        generates: endpoint.generates,
        promptTokens: estimateTokens(req.promptChars),
        maxTokens: req.maxTokens,
        kinds: state.protocol === 'ext_authz' ? 'requests_only' : 'all',
        // With destination rules a tenant's request may be served by the model's own route instead of its override
        // (#authorizedRoute): budgets reserve for the dearest deployment of both.
        prices: this.#d.destinations?.configured === true && ctx.route !== route ? [...new Set([...ctx.route.prices, ...route.prices])] : ctx.route.prices,
      });
      state.quota = ticket;
      if (ticket !== null) ctx.quota = { plan: ticket.plan, mode: ticket.mode, reservedTokens: ticket.reservedTokens };
      // Then classify every string the model will read (after the quota: a flood of large bodies is refused before it costs
      // classification); the data policy permits, redacts (in the body sent upstream) or refuses.
      const inspection = await this.#d.content.inspectRequest(req.texts(), policySubject(identity, route.id, endpoint));
      const content: NonNullable<RequestContext['content']> = {
        request: inspection.counts,
        response: {},
        action: inspection.decision.action,
        unredacted: false,
        classes: inspection.classes,
      };
      ctx.content = content;
      if (state.protocol === 'ext_authz' && inspection.redacted) {
        // The redacted body cannot reach the model through ext_authz: refuse, unless the deployer chose to let it pass as is.
        if (this.#d.options.extAuthzRedact === 'deny') {
          throw new GatewayError(
            'data_policy_denied',
            `The request contains data the policy redacts, which cannot be redacted on this path (ext_authz); it is refused (found: ${Object.keys(inspection.counts).join(', ')}; policy ${inspection.decision.version}).`,
          );
        }
        // Sent as it is: every class found reaches the model, and the destination rules decide on all of them.
        content.unredacted = true;
        content.classes = { found: inspection.classes.found, sent: inspection.classes.found };
      }
      // Past the plan's soft threshold: a cheaper deployment and/or a smaller completion, before the hard limit refuses.
      const soft = ticket?.soft ?? null;
      const degradeTo = soft?.fallbackModel == null ? undefined : ctx.snapshot.models.get(soft.fallbackModel);
      const degradable = degradeTo !== undefined && degradeTo.endpoints.has(endpoint.name) ? degradeTo : null;
      // Where the data may go (classes still sent after redaction, the caller, the request): the route and the targets
      // the destination rules authorize; the weighted split (canary) picks among those only.
      const chosen = this.#authorizedRoute(state, identity, route, degradable, policySubject(identity, route.id, endpoint));
      ctx.route = chosen.route;
      const fallback = chosen.route.id === degradable?.id && degradable.id !== route.id ? degradable : undefined;
      // Failing over to another deployment is Envoy's job (every attempt on a member the rules forbid is vetoed).
      const target = this.#d.routes.pick(ctx.route, chosen.auth?.targets);
      ctx.deployment = target;
      // The tighter of the soft threshold's cap and the reservation's own (a request without max_tokens).
      const cap = minOrNull(soft?.maxTokens ?? null, ticket?.completionCap ?? null);
      const rewritten = req.rewrite(target.upstreamModel, cap);
      const defaultMaxTokens = cap ?? this.#d.options.defaultMaxTokens;
      // With fallbacks the body stays in the client's API: each attempt is rewritten for its own member upstream.
      const upstream =
        target.fallback === null
          ? this.#forDeployment(state, target, rewritten, defaultMaxTokens)
          : this.#forChain(state, target.fallback, rewritten, cap, defaultMaxTokens);
      // The client's bytes go upstream untouched when the body for the deployment says exactly what they say: no
      // body mutation for Envoy to apply and no re-serialization here (issue #15). Safe because the strict parser
      // admits only one reading of them (valid UTF-8, no duplicate keys, no lone surrogates), the one classified.
      const asSent = upstream.body === rewritten && req === parsed && !inspection.redacted && sameMembers(rewritten, parsed.json);
      const newBody = asSent ? null : Buffer.from(JSON.stringify(upstream.body), 'utf8');
      const headers: HeaderEdits = {
        set: [
          ...upstream.set,
          ['x-gateway-model', ctx.route.id],
          ...(soft === null ? [] : [['x-gateway-degraded', fallback !== undefined ? 'fallback' : 'max_tokens_capped'] as const]),
          ['x-gateway-snapshot-version', ctx.snapshot.version],
          ['x-gateway-data-classes', formatCounts(inspection.counts)],
          ['x-gateway-policy-decision', inspection.decision.action],
          ['x-gateway-policy-version', inspection.decision.version],
          ...(newBody === null ? [] : [['content-length', String(newBody.length)] as const]),
        ],
        remove: upstream.remove,
      };
      state.sentHr = this.#clock();
      return newBody === null ? { kind: 'continue', headers, clearRouteCache: true } : { kind: 'continue', headers, body: newBody, clearRouteCache: true };
    } catch (err) {
      return this.#fail(state, err);
    }
  }

  /** Phase 3: the model server's (or Envoy's) response head. */
  async responseHeaders(state: RequestState, headers: HeaderView, endOfStream: boolean): Promise<PhaseResult> {
    const { ctx } = state;
    ctx.firstByteHr = this.#clock();
    const status = Number(headers.get(':status') ?? '0');
    ctx.status = Number.isInteger(status) && status > 0 ? status : null;
    state.upstreamStatus = ctx.status;
    state.upstreamRetryAfter = headers.get('retry-after') ?? null;
    const set: Array<readonly [string, string]> = [['x-request-id', ctx.requestId], ...(state.quota?.headers ?? [])];
    const remove: string[] = [];
    if (state.fallback !== null) {
      this.#attemptsAnswered(state, state.fallback, headers);
      remove.push(ATTEMPT_HEADER);
    }
    if (endOfStream) {
      if (state.endpoint?.kind === 'inference' && ctx.status !== null && ctx.errorCode === null) {
        // No body at all: an empty error is put in the gateway's envelope, an empty success is no answer.
        const empty = ctx.status >= 300 ? this.#upstreamError(state, ctx.status, Buffer.alloc(0)) : notAnAnswer();
        if (empty !== null) return this.#fail(state, empty);
      }
      await this.#finish(state, responseOutcome(ctx.status));
      return { kind: 'continue', headers: { set, remove } };
    }
    if (ctx.stream && state.family.isStream(headers.get('content-type') ?? '')) {
      const alias = responseModel(state) ?? ctx.deployment?.upstreamModel ?? '';
      // A translated stream is re-framed (and metered) by its translator; the client's family redacts the result.
      state.meter =
        state.translator === null
          ? state.family.streamMeter({ stripUsageChunk: !ctx.clientWantsStreamUsage, responseModel: responseModel(state) })
          : state.translator.stream({ clientModel: alias, includeUsage: ctx.clientWantsStreamUsage });
      state.redactor = this.#streamRedactor(state);
      // A stale content-length would truncate the re-framed stream.
      return { kind: 'continue', headers: { set, remove: [...remove, 'content-length'] }, streamResponseBody: true };
    }
    return { kind: 'continue', headers: { set, remove } };
  }

  /** Phase 4: the whole response body (BUFFERED) or one chunk of a stream. */
  async responseBody(state: RequestState, chunk: Buffer, endOfStream: boolean): Promise<PhaseResult> {
    const meter = state.meter;
    if (meter === null) return endOfStream ? this.#bufferedResponse(state, chunk) : CONTINUE;
    const { ctx } = state;
    const charsBefore = meter.contentChars;
    const replaced = meter.push(chunk, endOfStream);
    if (meter.contentChars > charsBefore) {
      // A chunk that carried generated text: the first one is the first token; the gaps between them, the inter-token latency.
      const now = this.#clock();
      if (ctx.firstTokenHr === null) ctx.firstTokenHr = now;
      state.contentChunks++;
      state.lastContentHr = now;
    }
    // Generated text is redacted across chunk boundaries (a bounded hold-back), after the meter has read it.
    const out = state.redactor === null ? replaced : state.redactor.push(replaced ?? chunk, endOfStream);
    const result: PhaseResult = out === null ? CONTINUE : { kind: 'continue', body: out };
    if (!endOfStream) return result;
    ctx.usage = streamUsage(state, meter, 'ended') ?? ctx.usage;
    // A stream that ended without its end marker was cut by the model server: the client got a broken answer.
    if (!meter.complete && ctx.errorCode === null) ctx.errorCode = 'upstream_response_invalid';
    // Headers already went out: if the audit cannot be committed the stream must be reset, not completed.
    await this.#finish(state, meter.complete ? responseOutcome(ctx.status) : 'failed');
    return result;
  }

  /** The stream ended before the request did (client gone, Envoy reset, shutdown). */
  async abort(state: RequestState, reason: string): Promise<void> {
    if (state.finished) return;
    this.#d.metrics.streamErrors.inc({ reason });
    // Charge what was produced before the stream broke.
    if (state.ctx.usage === null && state.meter !== null) state.ctx.usage = streamUsage(state, state.meter, 'aborted');
    // Ended before any answer came back: the attempts made so far, none of which answered the client.
    if (state.fallback !== null && state.ctx.attempts?.length === 0) {
      this.#takeAttempts(state.ctx, 0);
      state.ctx.deployment = null;
    }
    try {
      await this.#finish(state, 'aborted');
    } catch (err) {
      this.#d.log.error({ requestId: state.ctx.requestId, err: errorMessage(err) }, 'audit commit failed for an aborted request');
    }
  }

  /**
   * ext_authz only: the request was allowed and will not be seen again (no
   * response phases), so its record is committed now, without status or usage.
   */
  async authorized(state: RequestState): Promise<void> {
    await this.#finish(state, 'completed');
  }

  /** Turns any error into the request's local reply, audited first. */
  async fail(state: RequestState, err: unknown): Promise<PhaseResult> {
    return this.#fail(state, err);
  }

  /**
   * Per deployment: every attempt of a fallback chain (an attempt another
   * sidecar process saw has no deployment here and is left out), otherwise the
   * picked deployment once the request left for it (no response headers: status
   * class none). An Envoy local reply (e.g. 503 when the cluster has no healthy
   * host) arrives as response headers and counts under its status.
   */
  #upstreamMetrics(state: RequestState, model: string): void {
    const { ctx } = state;
    const m = this.#d.metrics;
    if (ctx.attempts !== null) {
      for (const a of ctx.attempts) {
        if (a.deployment === null) continue;
        m.countUpstreamResponse(model, a.deployment.cluster, a.deployment.provider, a.status);
        if (a.latencyMs !== null) m.observeUpstreamLatency(a.deployment.cluster, a.latencyMs / 1000);
      }
      return;
    }
    const target = ctx.deployment;
    if (target === null || state.sentHr === null) return;
    m.countUpstreamResponse(model, target.cluster, target.provider, ctx.firstByteHr === null ? null : state.upstreamStatus);
    if (ctx.firstByteHr !== null) m.observeUpstreamLatency(target.cluster, elapsedMs(state.sentHr, ctx.firstByteHr) / 1000);
  }

  /**
   * The route the request takes and what the destination rules authorize of it. Without an applicable rule: the
   * tenant's route (the soft threshold's cheaper model when crossed), as before. With rules, the first of these with
   * an authorized target: the cheaper model's route for the tenant, its route for everyone, the model's route for the
   * tenant, its route for everyone — the data policy outranks a tenant override and a degradation, never the reverse.
   * None: 403 no_authorized_deployment; authorized targets that are all drained (weight 0): 503
   * authorized_deployment_unavailable. Both name the rules, never a deployment.
   */
  #authorizedRoute(
    state: RequestState,
    identity: Identity,
    route: ModelRoute,
    degradable: ModelRoute | null,
    subject: PolicySubject,
  ): { route: ModelRoute; auth: RouteAuthorization | null } {
    const { ctx } = state;
    const sent = new Set(ctx.content?.classes.sent ?? []);
    const rules = this.#d.destinations?.rulesFor(subject, sent) ?? [];
    const preferred = this.#d.routes.forTenant(degradable ?? route, identity.tenant);
    if (rules.length === 0) return { route: preferred, auth: null };
    const candidates: ModelRoute[] = [];
    for (const r of degradable === null ? [route] : [degradable, route])
      for (const c of [this.#d.routes.forTenant(r, identity.tenant), r]) if (!candidates.includes(c)) candidates.push(c);
    const names = rules.map((r) => r.name);
    let drained: RouteAuthorization | null = null;
    const constraining = new Set<string>();
    for (const c of candidates) {
      const auth = authorizeRoute(c, rules);
      for (const n of auth.constraining) constraining.add(n);
      if (auth.targets.size === 0) continue;
      let weighted = false;
      for (const t of auth.targets) weighted ||= t.weight > 0;
      if (!weighted) {
        drained ??= auth;
        continue;
      }
      state.authorization = auth;
      ctx.destinations = { rules: names, constraining: auth.constraining, authorized: auth.deployments.map((d) => d.id) };
      for (const n of auth.constraining) this.#d.metrics.countDestinationRouting(n, 'constrained');
      return { route: c, auth };
    }
    const blamed = constraining.size > 0 ? [...constraining] : names;
    ctx.destinations = { rules: names, constraining: blamed, authorized: drained?.deployments.map((d) => d.id) ?? [] };
    const list = blamed.join(', ');
    if (drained !== null) {
      for (const n of blamed) this.#d.metrics.countDestinationRouting(n, 'unavailable');
      throw new GatewayError(
        'authorized_deployment_unavailable',
        `No deployment of '${route.id}' that the data policy authorizes for this request is in service (destination rules: ${list}).`,
      );
    }
    for (const n of blamed) this.#d.metrics.countDestinationRouting(n, 'refused');
    throw new GatewayError(
      'no_authorized_deployment',
      `The data policy authorizes no deployment of '${route.id}' for this request (destination rules: ${list}).`,
    );
  }

  /** A deployment without fallbacks: its API (translated when it is another provider's), its path, its credential. */
  #forDeployment(state: RequestState, target: Deployment, rewritten: Record<string, unknown>, defaultMaxTokens: number): UpstreamRequest {
    const translator = this.#d.translators.between(state.family.name, target.provider);
    state.translator = translator;
    const upstream = translator?.request(rewritten, target.upstreamModel, { defaultMaxTokens }) ?? null;
    return {
      body: upstream === null ? rewritten : upstream.body,
      set: [
        ...(upstream === null ? [] : [[':path', upstream.path] as const, ...upstream.headers]),
        ['x-gateway-target-cluster', target.cluster],
        ['x-gateway-deployment-model', target.upstreamModel],
        // The deployment's own credential (the client's authorization was removed with the request head).
        ...(target.credential === null ? [] : this.#d.credentials.headers(target.credential, target.provider)),
      ],
      remove: upstream === null ? [] : [...upstream.removeHeaders],
    };
  }

  /**
   * A deployment with fallbacks: to Envoy's aggregate cluster, in the client's
   * API, with the ticket every attempt rebuilds its own request from. Each
   * member must be able to take the request, so what one of them could not
   * (a parameter its provider lacks, a missing credential) is refused now,
   * before any model ran, rather than in the middle of a failover.
   */
  #forChain(state: RequestState, fallback: Fallback, rewritten: Record<string, unknown>, cap: number | null, defaultMaxTokens: number): UpstreamRequest {
    const { ctx } = state;
    const auth = state.authorization;
    const allowed = auth === null ? null : fallback.chain.filter((d) => auth.deployments.includes(d));
    for (const member of allowed ?? fallback.chain) {
      this.#d.translators.between(state.family.name, member.provider)?.request(rewritten, member.upstreamModel, { defaultMaxTokens });
      if (member.credential !== null) this.#d.credentials.headers(member.credential, member.provider);
    }
    state.fallback = fallback;
    ctx.attempts = [];
    const route = ctx.route;
    const target = route === null ? -1 : route.targets.indexOf(ctx.deployment as Deployment);
    if (route === null || target < 0 || state.endpoint === null || ctx.identity === null) throw new Error('fallback chain without a picked target');
    // The ticket's tenant finds the route again upstream: none when the rules sent a tenant with an override elsewhere.
    const model = ctx.snapshot.models.get(route.id);
    const tenant = model !== undefined && this.#d.routes.forTenant(model, ctx.identity.tenant) === route ? ctx.identity.tenant : '';
    const ticket = encodeTicket({
      family: state.family.name,
      endpoint: state.endpoint.name,
      model: route.id,
      tenant,
      target,
      cap,
      allowed: allowed === null ? null : allowed.map((d) => d.cluster),
      rules: ctx.destinations?.constraining ?? [],
    });
    // Envoy need not try past the last authorized member (one after it would only be vetoed).
    const last = allowed === null ? fallback.chain.length - 1 : Math.max(0, ...allowed.map((d) => fallback.chain.indexOf(d)));
    return {
      body: rewritten,
      set: [
        ['x-gateway-target-cluster', fallback.cluster],
        [FALLBACK_HEADER, ticket],
        // One attempt per member: Envoy's route default is a single retry, and a retry past the last member would go back to the first.
        ['x-envoy-max-retries', String(last)],
      ],
      remove: [],
    };
  }

  /** With fallbacks: which member's attempt answered, and every attempt before it. */
  #attemptsAnswered(state: RequestState, fallback: Fallback, headers: HeaderView): void {
    const { ctx } = state;
    const mark = decodeMark(headers.get(ATTEMPT_HEADER));
    const attempts = this.#takeAttempts(ctx, mark?.n ?? 0);
    const model = ctx.route?.id ?? 'none';
    // Every attempt but the answering one failed over to the next member.
    for (const a of attempts) {
      if (mark !== null && a.n >= mark.n) break;
      this.#d.metrics.fallbacks.inc({ model, provider: a.deployment?.provider ?? 'unknown', reason: fallbackReason(a.status, a.deployment !== null) });
    }
    const member = mark === null ? null : (fallback.chain.find((d) => d.cluster === mark.cluster) ?? null);
    // No mark: no member answered (Envoy's own reply, e.g. every member unreachable).
    ctx.deployment = member;
    if (mark?.error != null) {
      // The sidecar refused the attempt itself; its reply is already in the client's envelope. The member never got
      // the request, so no deployment served it.
      ctx.deployment = null;
      ctx.errorCode = mark.error;
      state.translator = null;
      return;
    }
    state.translator = member === null ? null : this.#d.translators.between(state.family.name, member.provider);
  }

  /** The request's attempts as the upstream phase noted them, numbered 1..n without gaps (an attempt another process saw has no details). */
  #takeAttempts(ctx: RequestContext, atLeast: number): AttemptSummary[] {
    const seen = this.#d.attempts.take(ctx.requestId);
    const last = Math.max(atLeast, ...seen.map((a) => a.n));
    const attempts: AttemptSummary[] = [];
    for (let n = 1; n <= last; n++) {
      const a = seen.find((x) => x.n === n);
      const latencyMs = a?.answeredHr == null ? null : elapsedMs(a.startedHr, a.answeredHr);
      attempts.push({ n, deployment: a?.deployment ?? null, status: a?.status ?? null, latencyMs, refused: a?.refused ?? false });
    }
    ctx.attempts = attempts;
    return attempts;
  }

  #match(method: string, path: string, headers: HeaderView): { family: ApiFamily; match: EndpointMatch } {
    for (const family of this.#d.families) {
      const match = family.match(method, path, headers);
      if (match !== null) return { family, match };
    }
    const family = this.#d.families.find((f) => f.isClient(headers)) ?? this.#d.defaultFamily;
    return { family, match: { ok: false, reason: 'unknown_url' } };
  }

  /**
   * The request with its model's transforms applied (src/pipeline/snapshot.ts RequestTransforms), or as it was when
   * none applies. They are applied in the client's API, before translation: the parameters are named as the client
   * names them, the transformed body is parsed again by the client's family (validated, measured for the quota,
   * every text classified by the data policy, the system prompt prefix included), and a fallback chain's attempts
   * are each translated from that one body. The body limit holds for the transformed body too. ext_authz cannot
   * rewrite a body, so a request a transform would change is refused there rather than sent without it.
   */
  #transformed(state: RequestState, endpoint: EndpointSpec, req: ParsedRequest, route: ModelRoute): ParsedRequest {
    if (route.transforms === null) return req;
    const out = req.transform(route.transforms);
    if (out === null) return req;
    if (state.protocol === 'ext_authz') {
      throw new GatewayError(
        'transforms_unsupported',
        `The model '${route.id}' has request transforms, which cannot be applied on this path (ext_authz cannot rewrite a body); the request is refused.`,
      );
    }
    const { maxBodyBytes, maxJsonDepth } = this.#d.options;
    const body = Buffer.from(JSON.stringify(out.json), 'utf8');
    if (body.length > maxBodyBytes) {
      throw new GatewayError(
        'request_too_large',
        `With the model's request transforms the request body is ${body.length} bytes; the limit is ${maxBodyBytes}.`,
      );
    }
    const next = state.family.parseRequest(endpoint, body, { maxJsonDepth });
    state.ctx.transforms = out.applied;
    return next;
  }

  /** The model named in the body: in the snapshot, allowed for this caller, served on this endpoint. */
  #routableModel(ctx: RequestContext, identity: Identity, endpoint: EndpointSpec, model: string): ModelRoute {
    const route = ctx.snapshot.models.get(model);
    if (route === undefined) throw modelNotFound(model);
    if (!allows(identity.models, route.id))
      throw new GatewayError('model_not_allowed', `You are not allowed to use the model '${route.id}'.`, { param: 'model' });
    if (!route.endpoints.has(endpoint.name))
      throw new GatewayError('model_not_found', `The model '${route.id}' does not serve ${endpoint.path}.`, { param: 'model' });
    return route;
  }

  #visibleModel(ctx: RequestContext, identity: Identity, id: string): ModelRoute {
    const route = ctx.snapshot.models.get(id);
    if (route === undefined || !allows(identity.models, id)) throw modelNotFound(id);
    return route;
  }

  #streamRedactor(state: RequestState): StreamRedactor | null {
    const { ctx } = state;
    const content = ctx.content;
    if (ctx.identity === null || ctx.route === null || state.endpoint === null || content === null) return null;
    const redact = this.#d.content.streamRedaction(policySubject(ctx.identity, ctx.route.id, state.endpoint), (found) => {
      for (const f of found) content.response[f.detector] = (content.response[f.detector] ?? 0) + 1;
      if (content.action === 'permit') content.action = 'redact';
    });
    return redact === null ? null : state.family.streamRedactor(redact, this.#d.options.streamHoldBackChars);
  }

  /** A buffered response: usage, then the data policy over the generated text; the record is committed before it goes out. */
  async #bufferedResponse(state: RequestState, upstreamBody: Buffer): Promise<PhaseResult> {
    const { ctx } = state;
    const constrained = ctx.destinations?.constraining ?? [];
    if (constrained.length > 0 && ctx.status === 503 && ctx.errorCode === null && isEnvoyUnavailable(upstreamBody)) {
      // Envoy could reach no authorized deployment (and, the rules being what they are, tried no other): say so.
      for (const n of constrained) this.#d.metrics.countDestinationRouting(n, 'unavailable');
      return this.#fail(
        state,
        new GatewayError(
          'authorized_deployment_unavailable',
          `No deployment of '${ctx.route?.id ?? ''}' that the data policy authorizes for this request is available (destination rules: ${constrained.join(', ')}).`,
        ),
      );
    }
    let result: PhaseResult = CONTINUE;
    let body = upstreamBody;
    if (state.translator !== null) {
      // The provider's answer in the client's API: a success translated, an error in the client's envelope.
      try {
        const translated = this.#translateBuffered(state, state.translator, upstreamBody);
        if (translated !== null) {
          body = translated;
          result = {
            kind: 'continue',
            body,
            headers: {
              set: [
                ['content-length', String(body.length)],
                ['content-type', 'application/json'],
              ],
              remove: [],
            },
          };
        }
      } catch (err) {
        return this.#fail(state, err);
      }
    }
    if (state.translator === null && ctx.status !== null && ctx.status >= 300 && state.endpoint?.kind === 'inference') {
      // One error shape for every failure: a model server's error that is not already one of this family's is put in it.
      const shaped = this.#upstreamError(state, ctx.status, body);
      if (shaped !== null) return this.#fail(state, shaped);
    }
    if (ctx.status !== null && ctx.status < 300 && state.endpoint !== null) {
      try {
        const parsed = state.family.parseResponse(state.endpoint, body);
        // A success whose body is not the endpoint's JSON is no answer: the client gets our 502, not a broken 200.
        if (parsed === null && state.endpoint.kind === 'inference') {
          throw notAnAnswer();
        }
        if (parsed?.usage != null) ctx.usage = { ...parsed.usage, source: 'counted' };
        let changed = false;
        // The model the client asked for, not the deployment's internal name.
        const alias = responseModel(state);
        if (parsed !== null && alias !== null && parsed.model !== null && parsed.model !== alias) {
          parsed.setModel(alias);
          changed = true;
        }
        const subject = ctx.identity === null || ctx.route === null ? null : policySubject(ctx.identity, ctx.route.id, state.endpoint);
        if (parsed !== null && subject !== null && ctx.content !== null && this.#d.content.inspectsResponses(subject)) {
          const inspection = await this.#d.content.inspectResponse(parsed.texts(), subject);
          ctx.content.response = { ...inspection.counts };
          if (inspection.redacted) {
            if (ctx.content.action === 'permit') ctx.content.action = 'redact';
            changed = true;
          }
        }
        if (parsed !== null && changed) {
          const out = parsed.serialize();
          result = { kind: 'continue', body: out, headers: { set: [['content-length', String(out.length)]], remove: [] } };
        }
      } catch (err) {
        return this.#fail(state, err);
      }
    }
    return this.#finishOrFail(state, result, responseOutcome(ctx.status));
  }

  /**
   * A model server's error body that is not already an error of the
   * client's family (an HTML page, plain text, an empty body), as the
   * gateway's error: its 429 stays a 429 with its retry-after, its 503 and
   * 504 are kept, anything else is a 502. The message quotes the start of the
   * body (whitespace folded, 200 characters at most). Null when the body is
   * already in the client's envelope: it passes as it is.
   */
  #upstreamError(state: RequestState, status: number, body: Buffer): GatewayError | null {
    let json: unknown;
    try {
      json = body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    if (state.family.isErrorBody(json)) return null;
    const excerpt = body.subarray(0, 600).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
    const said = excerpt === '' ? 'an empty body' : `"${excerpt}${body.length > 200 ? '…' : ''}"`;
    if (status === 429) {
      const retry = state.upstreamRetryAfter;
      return new GatewayError('upstream_rate_limited', `The model server is rate limiting requests (429: ${said}).`, {
        headers: retry === null ? {} : { 'retry-after': retry },
      });
    }
    return new GatewayError('upstream_error', `The model server failed (${status}: ${said}).`, status === 503 || status === 504 ? { status } : {});
  }

  /** The provider's buffered body in the client's API; null when there is nothing to translate (an empty body). */
  #translateBuffered(state: RequestState, translator: ProviderTranslator, body: Buffer): Buffer | null {
    if (body.length === 0) return null;
    const status = state.ctx.status ?? 0;
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    if (status >= 300) return Buffer.from(JSON.stringify(translator.error(status, json === undefined ? body.toString('utf8') : json)));
    if (typeof json !== 'object' || json === null) {
      throw new GatewayError('upstream_response_invalid', "The model server's answer could not be read in its API.");
    }
    return Buffer.from(JSON.stringify(translator.response(json, responseModel(state) ?? state.ctx.deployment?.upstreamModel ?? '')));
  }

  async #fail(state: RequestState, err: unknown): Promise<PhaseResult> {
    const { ctx } = state;
    let gw: GatewayError;
    if (err instanceof GatewayError) {
      gw = err;
    } else {
      this.#d.log.error({ requestId: ctx.requestId, err: errorMessage(err), stack: (err as Error).stack }, 'request failed inside the sidecar');
      gw = new GatewayError('internal_error', 'The gateway failed while handling this request.');
    }
    ctx.status = gw.status;
    ctx.errorCode = gw.code;
    try {
      await this.#finish(state, gw.status < 500 ? 'denied' : 'failed');
    } catch {
      gw = new GatewayError('audit_unavailable', 'The request could not be recorded and was refused.');
      ctx.status = gw.status;
    }
    return {
      kind: 'respond',
      status: gw.status,
      headers: [...JSON_HEADERS, ['x-request-id', ctx.requestId], ...Object.entries(gw.headers)],
      body: Buffer.from(JSON.stringify(state.family.errorBody(gw))),
      details: `inference_gateway_${gw.code}`,
    };
  }

  async #finishOrFail(state: RequestState, ok: PhaseResult, outcome: 'completed' | 'failed' = 'completed'): Promise<PhaseResult> {
    try {
      await this.#finish(state, outcome);
      return ok;
    } catch {
      return this.#fail(state, new GatewayError('audit_unavailable', 'The response could not be recorded and was withheld.'));
    }
  }

  async #respondOk(state: RequestState, body: object): Promise<PhaseResult> {
    state.ctx.status = 200;
    return this.#finishOrFail(state, {
      kind: 'respond',
      status: 200,
      headers: [...JSON_HEADERS, ['x-request-id', state.ctx.requestId]],
      body: Buffer.from(JSON.stringify(body)),
      details: 'inference_gateway_ok',
    });
  }

  /** Metrics, then the audit record; throws if the record could not be committed. */
  async #finish(state: RequestState, outcome: Outcome): Promise<void> {
    if (state.finished) return;
    state.finished = true;
    const { ctx } = state;
    ctx.outcome = outcome;
    const m = this.#d.metrics;
    const model = ctx.route?.id ?? 'none';
    if (ctx.usage === null && outcome !== 'denied' && ctx.route !== null && ctx.status !== null && ctx.status < 300 && state.endpoint?.kind === 'inference') {
      ctx.usage = { promptTokens: estimateTokens(state.request?.promptChars ?? 0), completionTokens: 0, cachedPromptTokens: 0, source: 'estimated' };
    }
    const price = ctx.deployment?.price ?? null;
    if (price !== null && ctx.usage !== null)
      ctx.cost = { units: costUnits(price, ctx.usage), currency: price.currency, estimated: ctx.usage.source === 'estimated' };
    if (ctx.usage !== null && ctx.identity !== null) {
      const { org, tenant } = ctx.identity;
      m.countTokens(org, tenant, model, 'prompt', ctx.usage.source, ctx.usage.promptTokens);
      if (ctx.usage.completionTokens > 0) m.countTokens(org, tenant, model, 'completion', ctx.usage.source, ctx.usage.completionTokens);
      if (ctx.cost !== null && ctx.cost.units > 0n) m.countCost(org, tenant, model, ctx.cost.currency, ctx.cost.units);
    }
    if (ctx.firstTokenHr !== null) {
      m.timeToFirstToken.observe({ model }, elapsedMs(ctx.startedHr, ctx.firstTokenHr) / 1000);
      if (state.contentChunks >= 2 && state.lastContentHr !== null) {
        m.observeInterTokenLatency(model, elapsedMs(ctx.firstTokenHr, state.lastContentHr) / 1000 / (state.contentChunks - 1));
        const completion = ctx.usage?.source === 'counted' ? ctx.usage.completionTokens : 0;
        const generating = elapsedMs(ctx.firstTokenHr, this.#clock()) / 1000;
        if (completion > 0 && generating > 0) m.observeOutputTokensPerSecond(model, completion / generating);
      }
    }
    if (state.protocol === 'ext_proc' && ctx.route !== null) this.#upstreamMetrics(state, model);
    m.countRequest(ctx.endpoint ?? 'unknown', model, outcome === 'denied' ? 'deny' : 'permit', ctx.status === null ? 'none' : String(ctx.status));
    const record = buildAuditRecord(ctx, this.#d.content.policyVersion);
    const t0 = process.hrtime.bigint();
    // Settle the reservation with what was really used (leases released). Not awaited: it never fails the request
    // (a failed settlement is logged and its leases expire by TTL), and the Redis store sends it with its next
    // admission (docs/quotas.md), so the response does not wait for a round trip of its own.
    const ticket = state.quota;
    if (ticket !== null) void this.#d.quota.settle(ticket, ctx.usage === null ? 0 : ctx.usage.promptTokens + ctx.usage.completionTokens, ctx.cost);
    try {
      await this.#d.audit.append(record);
      m.observeAuditCommit(elapsedMs(t0) / 1000);
    } catch (err) {
      m.auditFailures.inc();
      this.#d.log.error({ requestId: ctx.requestId, err: errorMessage(err) }, 'audit record could not be committed');
      throw err;
    } finally {
      // The span ends with the audit record (committed or not); it only queues the span, never waits on an export.
      state.span?.end(ctx);
    }
  }
}

/** The request for the upstream: its body (as an object) and the request headers it sets and removes. */
interface UpstreamRequest {
  readonly body: object;
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

/** The endpoint of an accepted head, or the 404/405 for a path or method the gateway does not serve. */
function acceptedEndpoint(match: EndpointMatch, method: string, path: string): EndpointSpec {
  if (match.ok) return match.endpoint;
  const bare = path.split('?')[0] ?? '';
  throw match.reason === 'unknown_url'
    ? new GatewayError('unknown_url', `Invalid URL (${method} ${bare}).`)
    : new GatewayError('method_not_allowed', `Method ${method} is not allowed on ${bare}.`);
}

function requestHeaderEdits(headers: HeaderView, ctx: RequestContext, id: Identity): HeaderEdits {
  // Only what is there is removed: each mutation costs Envoy work on every request (issue #15), and a header absent
  // here cannot appear before the request leaves (Envoy adds its own, x-forwarded-for included, before filters run).
  const remove: string[] = [];
  for (const name of headers.keys()) {
    if (STRIPPED.has(name) || name.startsWith(TRUSTED_PREFIX) || (name.startsWith(FORWARDED_PREFIX) && name !== FORWARDED_PROTO)) remove.push(name);
  }
  return {
    remove,
    set: [
      // The path without its query (ctx.path): a translated request or a fallback attempt sets its own later.
      [':path', ctx.path],
      ['x-request-id', ctx.requestId],
      ['traceparent', ctx.trace.traceparent],
      ['x-gateway-principal', id.principal],
      ['x-gateway-auth-method', id.methods.join(',')],
      ...(id.keyId === null ? [] : [['x-gateway-key-id', id.keyId] as const]),
      ...(id.mtls?.spiffeId == null ? [] : [['x-gateway-workload', id.mtls.spiffeId] as const]),
      ['x-gateway-roles', id.roles.join(',')],
      ['x-gateway-org', id.org],
      ['x-gateway-tenant', id.tenant],
      ['x-gateway-tier', id.tier],
      ['x-gateway-endpoint', ctx.endpoint ?? 'unknown'],
    ],
  };
}

/**
 * What a stream produced: the server's usage when it sent one, else an
 * estimate from the text seen — at the end only if text was seen (else the
 * request's own estimate applies), on an abort always (it is charged).
 */
function streamUsage(state: RequestState, meter: StreamMeter, when: 'ended' | 'aborted'): Usage | null {
  const counted = meter.usage;
  if (counted !== null) return { ...counted, source: 'counted' };
  if (when === 'ended' && meter.contentChars === 0) return null;
  return {
    promptTokens: estimateTokens(state.request?.promptChars ?? 0),
    completionTokens: estimateTokens(meter.contentChars),
    cachedPromptTokens: 0,
    source: 'estimated',
  };
}

/** The model name responses should carry: the one the client asked for, unless its route keeps the deployment's. */
function responseModel(state: RequestState): string | null {
  const route = state.ctx.route;
  if (route === null || state.request === null || route.responseModel === 'upstream') return null;
  return state.request.model;
}

function policySubject(identity: Identity, model: string, endpoint: EndpointSpec): PolicySubject {
  return { endpoint: endpoint.name, model, tenant: identity.tenant, org: identity.org, roles: identity.roles };
}

/** `credit_card=1,email=2` (detector names are ours; values never appear). */
function formatCounts(counts: Readonly<Record<string, number>>): string {
  const parts = Object.entries(counts).map(([k, v]) => `${k}=${v}`);
  return parts.length === 0 ? 'none' : parts.join(',');
}

/**
 * Envoy's own reply for an upstream it could not use (no healthy host, connection failure, reset): its raw text, or
 * the envelope local_reply_config (envoy/gateway.yaml) puts it in — code upstream_unavailable, or Anthropic's message.
 */
function isEnvoyUnavailable(body: Buffer): boolean {
  if (body.length > 1024) return false;
  const text = body.toString('utf8');
  if (text.startsWith('no healthy upstream') || text.startsWith('upstream connect error')) return true;
  try {
    const err = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    return err?.code === 'upstream_unavailable' || err?.message === 'The upstream service is unavailable.';
  } catch {
    return false;
  }
}

/** A response the model server (or Envoy's router) failed counts as failed, not completed. */
function responseOutcome(status: number | null): 'completed' | 'failed' {
  return status !== null && status >= 500 ? 'failed' : 'completed';
}

/** A success that is no answer: no body, or a body that is not the endpoint's JSON. */
function notAnAnswer(): GatewayError {
  return new GatewayError('upstream_response_invalid', "The model server's answer is not a valid response for this endpoint.");
}

function modelNotFound(model: string): GatewayError {
  return new GatewayError('model_not_found', `The model '${clip(model)}' does not exist or you do not have access to it.`, { param: 'model' });
}

/** User-supplied text echoed in an error is bounded. */
function clip(s: string): string {
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}

/**
 * Whether a rewrite left every top-level member as the client sent it (same names, the very same values): a rewrite
 * copies the client's object and replaces what it changes (model, a capped max_tokens, a new stream_options object).
 */
function sameMembers(rewritten: Record<string, unknown>, sent: Record<string, unknown>): boolean {
  let n = 0;
  for (const k in rewritten) {
    if (!Object.hasOwn(sent, k) || rewritten[k] !== sent[k]) return false;
    n++;
  }
  return n === Object.keys(sent).length;
}

function minOrNull(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
