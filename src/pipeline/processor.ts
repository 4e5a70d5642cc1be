/**
 * The request's path through the gateway, phase by phase:
 *
 *   request headers  → sanitize, request id + trace, authenticate, endpoint
 *   request body     → parse, resolve the model through the snapshot, authorize,
 *                      rewrite the body, pick the cluster
 *   response headers → status, time to first byte, SSE → streamed body
 *   response body    → usage (buffered JSON or SSE line by line)
 *   end              → metrics, then the audit record is committed before
 *                      the last answer goes back to Envoy
 *
 * Any GatewayError ends the request with our JSON error, audited first.
 * This module knows nothing of gRPC; src/server owns the protocol.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { BODY_ENDPOINTS, matchEndpoint, type Endpoint } from '../families/openai/endpoints.ts';
import { GatewayError } from './errors.ts';
import { estimateTokens, parseRequestBody, rewriteRequestBody } from '../families/openai/request.ts';
import { SseStreamMeter } from '../families/openai/sse.ts';
import { usageFromJsonBody } from '../families/openai/usage.ts';
import type { Authenticator } from '../stages/auth/authenticate.ts';
import type { ConnectionInfo } from './identity.ts';
import { allows } from '../stages/auth/identity.ts';
import { buildAuditRecord } from './audit-record.ts';
import type { AuditSink } from '../stores/audit/file-sink.ts';
import { pickDeployment, routeForTenant, type SnapshotHolder } from '../control/snapshot.ts';
import type { UpstreamCredentials } from '../stages/route/credentials.ts';
import { modelListBody, modelObjectBody, visibleModels } from '../stages/route/models.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { QuotaStage, QuotaTicket } from '../stages/quota/stage.ts';
import type { ContentGuard } from '../stages/policy/content.ts';
import type { PolicySubject } from '../stages/policy/policy.ts';
import type { SseRedactor } from '../families/openai/sse-redact.ts';
import { elapsedMs, type Identity, type RequestContext } from './context.ts';
import { CONTINUE, type HeaderEdits, type PhaseResult } from './phase-result.ts';
import { continueTrace } from './trace.ts';

/** Request headers as Envoy delivers them: lower-case names, pseudo-headers included. */
export type HeaderView = ReadonlyMap<string, string>;

/** Headers only the gateway may set; a client's copies are removed before anything else. */
export const TRUSTED_PREFIX = 'x-gateway-';
/**
 * Headers that never reach a model server: credentials, and identity claims a
 * client might send (the client certificate is only ever read from Envoy's
 * connection attributes).
 */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'x-forwarded-client-cert'] as const;
const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

export interface ProcessorDeps {
  readonly config: GatewayConfig;
  readonly auth: Authenticator;
  readonly snapshots: SnapshotHolder;
  readonly audit: AuditSink;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly quota: QuotaStage;
  readonly content: ContentGuard;
  readonly credentials: UpstreamCredentials;
}

/** Which Envoy protocol carries the request: ext_authz sees no body rewrite and no response. */
export type Protocol = 'ext_proc' | 'ext_authz';

/** Per-request state the processor keeps beyond the shared context. */
export interface RequestState {
  readonly ctx: RequestContext;
  readonly protocol: Protocol;
  meter: SseStreamMeter | null;
  promptChars: number;
  /** The quota reservation to settle when the request ends. */
  quota: QuotaTicket | null;
  /** Redacts generated text of an SSE response (after the usage meter). */
  redactor: SseRedactor | null;
  finished: boolean;
}

const JSON_HEADERS: ReadonlyArray<readonly [string, string]> = [['content-type', 'application/json']];

export class RequestProcessor {
  readonly #d: ProcessorDeps;

  constructor(deps: ProcessorDeps) {
    this.#d = deps;
  }

  /** Phase 1. Always returns a state, so a denial is audited like any request. */
  async requestHeaders(headers: HeaderView, endOfStream: boolean, conn: ConnectionInfo, protocol: Protocol = 'ext_proc'): Promise<{ state: RequestState; result: PhaseResult }> {
    const incomingId = headers.get('x-request-id');
    const method = headers.get(':method') ?? '';
    const path = headers.get(':path') ?? '';
    const match = matchEndpoint(method, path);
    const ctx: RequestContext = {
      requestId: incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
      trace: continueTrace(headers.get('traceparent')),
      startedAt: Date.now(),
      startedHr: process.hrtime.bigint(),
      method,
      path,
      endpoint: match.ok ? match.endpoint : null,
      snapshot: this.#d.snapshots.current(),
      identity: null,
      route: null,
      deployment: null,
      stream: false,
      clientWantsStreamUsage: false,
      usage: null,
      status: null,
      errorCode: null,
      firstByteHr: null,
      firstTokenHr: null,
      outcome: null,
      quota: null,
      content: null,
    };
    const state: RequestState = { ctx, protocol, meter: null, promptChars: 0, quota: null, redactor: null, finished: false };
    try {
      // Authenticate before anything else: an anonymous caller learns nothing, not even which paths exist.
      ctx.identity = await this.#d.auth.authenticate({ authorization: headers.get('authorization'), xApiKey: headers.get('x-api-key') }, conn, ctx.endpoint);

      if (!match.ok) {
        throw match.reason === 'unknown_url'
          ? new GatewayError('unknown_url', `Invalid URL (${method} ${path.split('?')[0] ?? ''}).`)
          : new GatewayError('method_not_allowed', `Method ${method} is not allowed on ${path.split('?')[0] ?? ''}.`);
      }
      if (!allows(ctx.identity.endpoints, match.endpoint)) {
        throw new GatewayError('endpoint_not_allowed', `You are not allowed to call ${endpointPath(match.endpoint)}.`);
      }
      if (match.endpoint === 'models') return { state, result: await this.#respondOk(state, modelListBody(visibleModels(ctx.snapshot, ctx.identity), ctx.snapshot)) };
      if (match.endpoint === 'model') return { state, result: await this.#respondOk(state, this.#modelObject(ctx, ctx.identity, match.modelId ?? '')) };
      if (BODY_ENDPOINTS.has(match.endpoint)) {
        if (endOfStream) throw new GatewayError('invalid_request_body', 'The request body is empty; a JSON object is required.');
        const type = headers.get('content-type');
        if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
          throw new GatewayError('unsupported_content_type', 'The request body must be sent with content-type: application/json.');
        }
      }
      return { state, result: { kind: 'continue', headers: this.#requestHeaderEdits(headers, ctx, ctx.identity) } };
    } catch (err) {
      return { state, result: await this.#fail(state, err) };
    }
  }

  /** Phase 2: the whole request body (BUFFERED). */
  async requestBody(state: RequestState, body: Buffer): Promise<PhaseResult> {
    const { ctx } = state;
    try {
      const endpoint = ctx.endpoint;
      const identity = ctx.identity;
      if (endpoint === null || identity === null) throw new Error('request body before an accepted request head');
      if (body.length > this.#d.config.limits.maxBodyBytes) {
        throw new GatewayError('request_too_large', `The request body is ${body.length} bytes; the limit is ${this.#d.config.limits.maxBodyBytes}.`);
      }
      const req = parseRequestBody(endpoint, body, this.#d.config.policy.maxJsonDepth);
      const route = ctx.snapshot.models.get(req.model);
      if (route === undefined || !mayUse(identity, route.id)) {
        throw route === undefined
          ? new GatewayError('model_not_found', `The model '${clip(req.model)}' does not exist or you do not have access to it.`, { param: 'model' })
          : new GatewayError('model_not_allowed', `You are not allowed to use the model '${route.id}'.`, { param: 'model' });
      }
      if (!route.endpoints.has(endpoint)) {
        throw new GatewayError('model_not_found', `The model '${route.id}' does not serve ${endpointPath(endpoint)}.`, { param: 'model' });
      }
      // A tenant with its own deployment of this model goes there.
      ctx.route = routeForTenant(route, identity.tenant);
      ctx.stream = req.stream;
      ctx.clientWantsStreamUsage = req.clientWantsStreamUsage;
      state.promptChars = req.promptChars;
      // Classify every prompt text; the data policy permits, redacts (in the body sent upstream) or refuses.
      const inspection = this.#d.content.inspectRequest(endpoint, req.json, policySubject(ctx, identity, route.id, endpoint));
      ctx.content = { request: inspection.counts, response: {}, action: inspection.decision.action };
      // One atomic decision over every limit of the caller's plan; a refusal is a 429 with retry-after.
      state.quota = await this.#d.quota.admit({
        requestId: ctx.requestId,
        subject: { principal: identity.principal, keyId: identity.keyId, org: identity.org, tenant: identity.tenant, model: route.id },
        tier: identity.tier,
        endpoint,
        promptTokens: estimateTokens(req.promptChars),
        maxTokens: req.maxTokens,
        kinds: state.protocol === 'ext_authz' ? 'requests_only' : 'all',
      });
      if (state.quota !== null) ctx.quota = { plan: state.quota.plan, mode: state.quota.mode, reservedTokens: state.quota.reservedTokens };
      // Past the plan's soft threshold: a cheaper deployment and/or a smaller completion, before the hard limit refuses.
      const soft = state.quota?.soft ?? null;
      const fallback = soft?.fallbackModel == null ? undefined : ctx.snapshot.models.get(soft.fallbackModel);
      if (fallback !== undefined && fallback.endpoints.has(endpoint)) ctx.route = routeForTenant(fallback, identity.tenant);
      // The weighted split (canary) happens here; failing over to another deployment is Envoy's job.
      const target = pickDeployment(ctx.route);
      ctx.deployment = target;
      // The tighter of the soft threshold's cap and the reservation's own (a request without max_tokens).
      const cap = minOrNull(soft?.maxTokens ?? null, state.quota?.completionCap ?? null);
      const newBody = rewriteRequestBody(req, target.upstreamModel, endpoint === 'embeddings' ? null : cap);
      const headers: HeaderEdits = {
        set: [
          ['x-gateway-target-cluster', target.cluster],
          ['x-gateway-model', ctx.route.id],
          ['x-gateway-deployment-model', target.upstreamModel],
          ...(soft === null ? [] : [['x-gateway-degraded', fallback !== undefined ? 'fallback' : 'max_tokens_capped'] as const]),
          ['x-gateway-snapshot-version', ctx.snapshot.version],
          ['x-gateway-data-classes', formatCounts(inspection.counts)],
          ['x-gateway-policy-decision', inspection.decision.action],
          ['x-gateway-policy-version', inspection.decision.version],
          ['content-length', String(newBody.length)],
          // The deployment's own credential (the client's authorization was removed with the request head).
          ...(target.credential === null ? [] : [this.#d.credentials.header(target.credential)]),
        ],
        remove: [],
      };
      return { kind: 'continue', headers, body: newBody, clearRouteCache: true };
    } catch (err) {
      return this.#fail(state, err);
    }
  }

  /** Phase 3: the model server's (or Envoy's) response head. */
  async responseHeaders(state: RequestState, headers: HeaderView, endOfStream: boolean): Promise<PhaseResult> {
    const { ctx } = state;
    ctx.firstByteHr = process.hrtime.bigint();
    const status = Number(headers.get(':status') ?? '0');
    ctx.status = Number.isInteger(status) && status > 0 ? status : null;
    const set: Array<readonly [string, string]> = [['x-request-id', ctx.requestId], ...(state.quota?.headers ?? [])];
    if (endOfStream) {
      await this.#finish(state, responseOutcome(ctx.status));
      return { kind: 'continue', headers: { set, remove: [] } };
    }
    const type = headers.get('content-type') ?? '';
    if (ctx.stream && type.toLowerCase().startsWith('text/event-stream')) {
      state.meter = new SseStreamMeter({ stripUsageChunk: !ctx.clientWantsStreamUsage });
      const content = ctx.content;
      if (ctx.identity !== null && ctx.route !== null && ctx.endpoint !== null && content !== null) {
        state.redactor = this.#d.content.streamRedactor(policySubject(ctx, ctx.identity, ctx.route.id, ctx.endpoint), (found) => {
          for (const f of found) content.response[f.detector] = (content.response[f.detector] ?? 0) + 1;
          if (content.action === 'permit') content.action = 'redact';
        });
      }
      // A stale content-length would truncate the re-framed stream.
      return { kind: 'continue', headers: { set, remove: ['content-length'] }, streamResponseBody: true };
    }
    return { kind: 'continue', headers: { set, remove: [] } };
  }

  /** Phase 4: the whole response body (BUFFERED) or one chunk of an SSE stream. */
  async responseBody(state: RequestState, chunk: Buffer, endOfStream: boolean): Promise<PhaseResult> {
    const { ctx } = state;
    const meter = state.meter;
    if (meter === null) {
      if (endOfStream) {
        const ok = ctx.status !== null && ctx.status < 300;
        const reported = ok ? usageFromJsonBody(chunk) : null;
        if (reported !== null) ctx.usage = { ...reported, source: 'counted' };
        let result: PhaseResult = CONTINUE;
        if (ok) {
          try {
            result = this.#inspectResponse(state, chunk);
          } catch (err) {
            return this.#fail(state, err);
          }
        }
        return this.#finishOrFail(state, result, responseOutcome(ctx.status));
      }
      return CONTINUE;
    }
    const hadContent = meter.sawContent;
    const { replace } = meter.push(chunk, endOfStream);
    if (!hadContent && meter.sawContent) ctx.firstTokenHr = process.hrtime.bigint();
    const metered = replace ?? chunk;
    // Generated text is redacted across chunk boundaries (a bounded hold-back), after the meter has read it.
    const out = state.redactor === null ? replace : state.redactor.push(metered, endOfStream);
    const result: PhaseResult = out === null ? CONTINUE : { kind: 'continue', body: out };
    if (!endOfStream) return result;
    const usage = meter.usage;
    if (usage !== null) ctx.usage = { ...usage, source: 'counted' };
    else if (meter.contentChars > 0) {
      ctx.usage = { promptTokens: estimateTokens(state.promptChars), completionTokens: estimateTokens(meter.contentChars), source: 'estimated' };
    }
    // Headers already went out: if the audit cannot be committed the stream must be reset, not completed.
    await this.#finish(state, responseOutcome(ctx.status));
    return result;
  }

  /** The stream ended before the request did (client gone, Envoy reset, shutdown). */
  async abort(state: RequestState, reason: string): Promise<void> {
    if (state.finished) return;
    this.#d.metrics.streamErrors.inc({ reason });
    // Charge what was produced before the stream broke.
    const meter = state.meter;
    if (state.ctx.usage === null && meter !== null) {
      const counted = meter.usage;
      state.ctx.usage = counted !== null
        ? { ...counted, source: 'counted' }
        : { promptTokens: estimateTokens(state.promptChars), completionTokens: estimateTokens(meter.contentChars), source: 'estimated' };
    }
    try {
      await this.#finish(state, 'aborted');
    } catch (err) {
      this.#d.log.error({ requestId: state.ctx.requestId, err: errMessage(err) }, 'audit commit failed for an aborted request');
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

  async #fail(state: RequestState, err: unknown): Promise<PhaseResult> {
    const { ctx } = state;
    let gw: GatewayError;
    if (err instanceof GatewayError) {
      gw = err;
    } else {
      this.#d.log.error({ requestId: ctx.requestId, err: errMessage(err), stack: (err as Error).stack }, 'request failed inside the sidecar');
      gw = new GatewayError('internal_error', 'The gateway failed while handling this request.');
    }
    ctx.status = gw.status;
    ctx.errorCode = gw.code;
    const outcome = gw.status < 500 ? 'denied' : 'failed';
    try {
      await this.#finish(state, outcome);
    } catch {
      gw = new GatewayError('audit_unavailable', 'The request could not be recorded and was refused.');
      ctx.status = gw.status;
    }
    return {
      kind: 'respond',
      status: gw.status,
      headers: [...JSON_HEADERS, ['x-request-id', ctx.requestId], ...Object.entries(gw.headers)],
      body: Buffer.from(JSON.stringify(gw.toBody())),
      details: `inference_gateway_${gw.code}`,
    };
  }

  /** A buffered response: classify the generated text and redact or refuse per the data policy. */
  #inspectResponse(state: RequestState, body: Buffer): PhaseResult {
    const { ctx } = state;
    if (ctx.identity === null || ctx.route === null || ctx.endpoint === null || ctx.content === null) return CONTINUE;
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return CONTINUE; // not JSON: nothing we know how to read
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return CONTINUE;
    const inspection = this.#d.content.inspectResponse(json as Record<string, unknown>, policySubject(ctx, ctx.identity, ctx.route.id, ctx.endpoint));
    if (inspection === null) return CONTINUE;
    ctx.content.response = { ...inspection.counts };
    if (!inspection.redacted) return CONTINUE;
    if (ctx.content.action === 'permit') ctx.content.action = 'redact';
    const redacted = Buffer.from(JSON.stringify(json));
    return { kind: 'continue', body: redacted, headers: { set: [['content-length', String(redacted.length)]], remove: [] } };
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

  #modelObject(ctx: RequestContext, identity: Identity, id: string): object {
    const route = ctx.snapshot.models.get(id);
    if (route === undefined || !mayUse(identity, id)) {
      throw new GatewayError('model_not_found', `The model '${clip(id)}' does not exist or you do not have access to it.`, { param: 'model' });
    }
    return modelObjectBody(route, ctx.snapshot);
  }

  #requestHeaderEdits(headers: HeaderView, ctx: RequestContext, id: Identity): HeaderEdits {
    const remove: string[] = [...CREDENTIAL_HEADERS];
    for (const name of headers.keys()) if (name.startsWith(TRUSTED_PREFIX)) remove.push(name);
    return {
      remove,
      set: [
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

  /** Metrics, then the audit record; throws if the record could not be committed. */
  async #finish(state: RequestState, outcome: 'completed' | 'denied' | 'failed' | 'aborted'): Promise<void> {
    if (state.finished) return;
    state.finished = true;
    const { ctx } = state;
    ctx.outcome = outcome;
    const m = this.#d.metrics;
    const model = ctx.route?.id ?? 'none';
    if (ctx.usage === null && outcome !== 'denied' && ctx.route !== null && ctx.status !== null && ctx.status < 300 && ctx.endpoint !== null && BODY_ENDPOINTS.has(ctx.endpoint)) {
      ctx.usage = { promptTokens: estimateTokens(state.promptChars), completionTokens: 0, source: 'estimated' };
    }
    if (ctx.usage !== null && ctx.identity !== null) {
      const base = { org: ctx.identity.org, tenant: ctx.identity.tenant, model, source: ctx.usage.source };
      m.tokens.inc({ ...base, kind: 'prompt' }, ctx.usage.promptTokens);
      if (ctx.usage.completionTokens > 0) m.tokens.inc({ ...base, kind: 'completion' }, ctx.usage.completionTokens);
    }
    if (ctx.firstTokenHr !== null) m.timeToFirstToken.observe({ model }, elapsedMs(ctx.startedHr, ctx.firstTokenHr) / 1000);
    m.requests.inc({
      endpoint: ctx.endpoint ?? 'unknown',
      model,
      decision: outcome === 'denied' ? 'deny' : 'permit',
      status: ctx.status === null ? 'none' : String(ctx.status),
    });
    const record = buildAuditRecord(ctx, this.#d.content.policyVersion);
    const t0 = process.hrtime.bigint();
    // Settle the reservation with what was really used (leases released) alongside the audit commit.
    const ticket = state.quota;
    const settled = ticket === null ? null : this.#d.quota.settle(ticket, ctx.usage === null ? 0 : ctx.usage.promptTokens + ctx.usage.completionTokens);
    try {
      await this.#d.audit.append(record);
      await settled;
      m.auditCommitSeconds.observe(elapsedMs(t0) / 1000);
    } catch (err) {
      m.auditFailures.inc();
      this.#d.log.error({ requestId: ctx.requestId, err: errMessage(err) }, 'audit record could not be committed');
      throw err;
    }
  }
}

function policySubject(ctx: RequestContext, identity: Identity, model: string, endpoint: Endpoint): PolicySubject {
  return { endpoint, model, tenant: identity.tenant, org: identity.org, roles: identity.roles };
}

/** `credit_card=1,email=2` (detector names are ours; values never appear). */
function formatCounts(counts: Readonly<Record<string, number>>): string {
  const parts = Object.entries(counts).map(([k, v]) => `${k}=${v}`);
  return parts.length === 0 ? 'none' : parts.join(',');
}

/** A response the model server (or Envoy's router) failed counts as failed, not completed. */
function responseOutcome(status: number | null): 'completed' | 'failed' {
  return status !== null && status >= 500 ? 'failed' : 'completed';
}

function mayUse(identity: Identity, modelId: string): boolean {
  return allows(identity.models, modelId);
}

function endpointPath(e: Endpoint): string {
  return e === 'chat' ? '/v1/chat/completions' : e === 'completions' ? '/v1/completions' : e === 'embeddings' ? '/v1/embeddings' : e === 'models' ? '/v1/models' : '/v1/models/{model}';
}

/** User-supplied text echoed in an error is bounded. */
function clip(s: string): string {
  return s.length > 128 ? `${s.slice(0, 128)}…` : s;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function minOrNull(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
