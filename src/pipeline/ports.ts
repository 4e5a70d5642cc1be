/**
 * The ports: the small interfaces the request processor depends on. Stages
 * (src/stages), stores (src/stores) and API families (src/families)
 * implement them; the composition root (src/app.ts) plugs them in; tests
 * hand the processor plain fakes (test/pipeline/processor.test.ts).
 *
 * Nothing here knows a wire protocol, a store or an API family by name.
 */
import type { AuditRecord } from './audit-record.ts';
import type { Endpoint, EndpointMatch, EndpointSpec } from './endpoint.ts';
import type { GatewayError } from './errors.ts';
import type { ConnectionInfo, Identity } from './identity.ts';
import type { Deployment, ModelRoute, RequestTransforms, Snapshot } from './snapshot.ts';
import type { AppliedTransforms, RequestContext } from './context.ts';
import type { TraceContext } from './trace.ts';
import type { ReportedUsage } from './usage.ts';
import type { Price } from './cost.ts';
import type { DestinationRule } from './destinations.ts';

/** What a request cost: 10⁻¹² units of `currency` (src/pipeline/cost.ts). */
export interface RequestCost {
  readonly units: bigint;
  readonly currency: string;
}

// ── Authentication ──────────────────────────────────────────────────────────

/** The credential headers; the only request headers authentication reads. */
export interface CredentialHeaders {
  readonly authorization: string | undefined;
  readonly xApiKey: string | undefined;
}

export interface Authenticate {
  /** The caller's one Identity, or a 401/403/503 GatewayError. Never an anonymous identity. */
  authenticate(headers: CredentialHeaders, conn: ConnectionInfo, endpoint: Endpoint | null): Promise<Identity>;
}

// ── Quotas ─────────────────────────────────────────────────────────────────

export type QuotaMode = 'store' | 'fail_open' | 'local';

/** What the plan's soft threshold asks for once crossed. */
export interface SoftAction {
  readonly fallbackModel: string | null;
  readonly maxTokens: number | null;
}

export interface QuotaSubject {
  readonly principal: string;
  readonly keyId: string | null;
  readonly org: string;
  readonly tenant: string;
  readonly model: string;
}

export interface QuotaRequest {
  readonly requestId: string;
  readonly subject: QuotaSubject;
  readonly tier: string;
  readonly endpoint: Endpoint;
  /** The endpoint generates tokens: a completion is reserved (and capped) only then. */
  readonly generates: boolean;
  readonly promptTokens: number;
  readonly maxTokens: number | null;
  /** ext_authz never sees the response: request counts only. */
  readonly kinds: 'all' | 'requests_only';
  /** Prices of every deployment that may answer (targets and fallbacks); spend budgets reserve the dearest. */
  readonly prices: readonly Price[];
}

/** An admitted request's reservation; settled once when the request ends. */
export interface QuotaTicket {
  readonly plan: string;
  /** Set when a limit is used beyond the plan's soft threshold. */
  readonly soft: SoftAction | null;
  readonly mode: QuotaMode;
  readonly reservedTokens: number;
  /**
   * max_tokens to send upstream for a request that set none, so the model
   * stays within the reservation (plans with token limits); null: leave as is.
   */
  readonly completionCap: number | null;
  /** x-ratelimit-* for the client. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export interface QuotaGate<T extends QuotaTicket = QuotaTicket> {
  /** Reserves every limit of the caller's plan at once; a refusal is a 429/503 GatewayError; null: no plan applies. */
  admit(req: QuotaRequest): Promise<T | null>;
  /** Real usage and cost (null: none) against the reservation; leases released. Never throws. */
  settle(ticket: T, usedTokens: number, cost: RequestCost | null): Promise<void>;
}

// ── Content: classification and the data policy ───────────────────────────

export type PolicyAction = 'permit' | 'redact' | 'deny';

/** Who asks for what: the facts the data policy's rules match on. */
export interface PolicySubject {
  readonly endpoint: Endpoint;
  readonly model: string;
  readonly tenant: string;
  readonly org: string;
  readonly roles: readonly string[];
}

/** One text a model reads or writes, in a body the gateway owns; `set` replaces it in place. */
export interface TextRef {
  readonly text: string;
  /** Where the text is, for a refusal that names it (`messages[2].content`); never the text itself. */
  readonly where: string;
  /**
   * Whether `set` can replace it: not an object key, a JSON schema's text or
   * a data URL's decoded text. A finding the policy would redact there
   * refuses the request instead.
   */
  readonly redactable: boolean;
  /** Not read together with the texts around it (an object's key): a value is never looked for across it. */
  readonly separate?: boolean;
  set(text: string): void;
}

export interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * Finds what to redact in one text: the redacted text and the spans replaced
 * (in the input's coordinates). `released` says whether this text now goes
 * to the client: a stream redactor also looks at text it still holds back
 * (to find where a match starts), and only released text counts as found.
 */
export type RedactFn = (text: string, released: boolean) => { readonly text: string; readonly spans: readonly Span[] };

export interface Finding {
  readonly detector: string;
}

export interface Inspection {
  readonly decision: { readonly action: PolicyAction; readonly version: string };
  /** Findings per detector (names and counts only, never values). */
  readonly counts: Readonly<Record<string, number>>;
  /** Spans were replaced in the texts. */
  readonly redacted: boolean;
  /**
   * Data classes found, and those still in the texts once redaction replaced its classes (the ones destination
   * rules decide on). Sorted.
   */
  readonly classes: DataClasses;
}

export interface DataClasses {
  readonly found: readonly string[];
  readonly sent: readonly string[];
}

// ── Destinations ───────────────────────────────────────────────────────────

/** The data policy's destination rules (src/pipeline/destinations.ts evaluates them against deployments). */
export interface DestinationGuard {
  /** Whether any rule is configured: only then may a request leave its tenant's route for the model's own. */
  readonly configured: boolean;
  /** The rules that apply to this request, given the classes it sends; empty when none does. */
  rulesFor(subject: PolicySubject, sent: ReadonlySet<string>): readonly DestinationRule[];
}

export interface ContentInspector {
  readonly policyVersion: string;
  /** Classifies and applies the policy to a request's texts (redacting in place); throws 403 data_policy_denied. */
  inspectRequest(texts: readonly TextRef[], subject: PolicySubject): Promise<Inspection>;
  /** Whether anything in a response could be redacted or refused for this caller; if not, responses are not inspected. */
  inspectsResponses(subject: PolicySubject): boolean;
  /** A buffered response's texts (redacting in place); throws 403 data_policy_denied. */
  inspectResponse(texts: readonly TextRef[], subject: PolicySubject): Promise<Inspection>;
  /** Redaction of generated text in a stream, or null when nothing could apply to this caller. */
  streamRedaction(subject: PolicySubject, onFindings: (found: readonly Finding[]) => void): RedactFn | null;
}

// ── Routing ────────────────────────────────────────────────────────────────

export interface RouteResolver {
  /** The snapshot in force now; a request takes it once and keeps it to the end. */
  current(): Snapshot;
  /** The tenant's own deployment of the model when the snapshot has one. */
  forTenant(route: ModelRoute, tenant: string): ModelRoute;
  /**
   * One of the route's weighted targets; with `among`, one of those only (non-empty, at least one with a weight
   * above 0: the destination rules' authorized targets).
   */
  pick(route: ModelRoute, among?: ReadonlySet<Deployment>): Deployment;
  /** The models this caller may use. */
  visibleModels(snapshot: Snapshot, identity: Identity): readonly ModelRoute[];
}

export interface UpstreamCredentials {
  /**
   * The headers carrying a deployment's own credential, in its provider's
   * style (`authorization: Bearer …`, Anthropic's `x-api-key`); throws 503
   * upstream_credential_unavailable.
   */
  headers(name: string, provider: string): ReadonlyArray<readonly [string, string]>;
}

// ── Attempts (cross-provider fallback) ──────────────────────────────────────

/** One attempt of a request with fallbacks, as the upstream phase saw it. */
export interface AttemptEntry {
  /** 1-based, Envoy's attempt count. */
  readonly n: number;
  readonly deployment: Deployment;
  readonly startedHr: bigint;
  /** The member's response status; null while none came (a refused connection never gets one). */
  status: number | null;
  answeredHr: bigint | null;
  /** The sidecar vetoed the attempt (its member is not authorized for the request). */
  refused: boolean;
}

/**
 * Where the upstream phase notes each attempt and the downstream phase reads
 * them back for the audit record (same process; bounded, entries expire).
 */
export interface AttemptLedger {
  /** Notes attempt `n` (null: Envoy sent no attempt count, the next number this process has seen); returns its number. */
  started(requestId: string, n: number | null, deployment: Deployment, refused?: boolean): number;
  answered(requestId: string, n: number, status: number): void;
  /** The request's attempts seen in this process, by number; forgets them. */
  take(requestId: string): AttemptEntry[];
}

// ── Audit ──────────────────────────────────────────────────────────────────

/** Where the pipeline hands a finished request's record; resolves once the record is committed. */
export interface AuditSink {
  append(record: AuditRecord): Promise<void>;
  close(): Promise<void>;
}

// ── API families ───────────────────────────────────────────────────────────

/** A request body the family parsed and validated. */
export interface ParsedRequest {
  /** The body as the gateway now holds it (redactions applied in place): what a translator reads. */
  readonly json: Record<string, unknown>;
  readonly model: string;
  readonly stream: boolean;
  /** The client asked for stream usage itself; if not, the family adds it and strips it again. */
  readonly clientWantsStreamUsage: boolean;
  /** Characters of prompt text, for a token estimate when the server reports none. */
  readonly promptChars: number;
  /** The completion allowance the client set, if any. */
  readonly maxTokens: number | null;
  /** Every text the model reads (the data policy's input; `set` redacts in the body to send). */
  texts(): TextRef[];
  /**
   * A copy of the body with a model's transforms applied in this family's terms (defaults where the client sent
   * nothing, forced values over the client's, the system prompt prefixed), and which of them applied; null when none
   * applies to this endpoint. The processor parses the result again, so it is validated, measured, reserved and
   * classified like a body the client sent.
   */
  transform(t: RequestTransforms): { readonly json: Record<string, unknown>; readonly applied: AppliedTransforms } | null;
  /** The body for the chosen deployment, as an object: its model name, a completion cap, what metering needs. */
  rewrite(upstreamModel: string, maxTokensCap: number | null): Record<string, unknown>;
}

/** A buffered response body the family could read. */
export interface ParsedResponse {
  readonly usage: ReportedUsage | null;
  /** The `model` the response names (the deployment's own name, usually), or null when it names none. */
  readonly model: string | null;
  /** Names another model in the response (the alias the client asked for). */
  setModel(model: string): void;
  /** Every generated text. */
  texts(): TextRef[];
  /** The body as it now stands (after redaction). */
  serialize(): Buffer;
}

/** Reads a streamed response chunk by chunk (any split); may re-frame what the client receives. */
export interface StreamMeter {
  /** Replacement bytes for this chunk, or null to pass it on unchanged. */
  push(chunk: Buffer, endOfStream: boolean): Buffer | null;
  readonly usage: ReportedUsage | null;
  /** Characters of generated text seen, for an estimate when no usage came. */
  readonly contentChars: number;
  readonly sawContent: boolean;
  /** The provider's stream reached its own end marker (`[DONE]`, `message_stop`); a stream that ends without it was cut. */
  readonly complete: boolean;
}

/** Redacts generated text in a stream across chunk boundaries; returns the bytes to send on now. */
export interface StreamRedactor {
  push(chunk: Buffer, endOfStream: boolean): Buffer;
}

export interface BodyLimits {
  readonly maxJsonDepth: number;
}

/**
 * One API family (OpenAI, later Anthropic…): its paths, its body formats,
 * where its texts are, how its usage is reported and how its errors look.
 * The processor never reads a family's JSON itself.
 */
export interface ApiFamily {
  readonly name: string;
  readonly endpoints: readonly EndpointSpec[];
  /**
   * The endpoint for a method and path; null when the request is not this
   * family's. Headers decide where two families share a path (`GET /v1/models`:
   * Anthropic's clients send `anthropic-version`).
   */
  match(method: string, path: string, headers: ReadonlyMap<string, string>): EndpointMatch | null;
  /** Whether the request comes from this family's clients (their SDK's headers): errors for paths no family serves take its shape. */
  isClient(headers: ReadonlyMap<string, string>): boolean;
  /** Strict parse + schema; throws 400 invalid_request_body naming the param. */
  parseRequest(endpoint: EndpointSpec, body: Buffer, limits: BodyLimits): ParsedRequest;
  /** A successful buffered response, or null when it is not a body this family reads. */
  parseResponse(endpoint: EndpointSpec, body: Buffer): ParsedResponse | null;
  /** Whether a response with this content type is a stream this family meters chunk by chunk. */
  isStream(contentType: string): boolean;
  /** `responseModel`: set every event's model to it (the client's alias); null leaves them as the server sent them. */
  streamMeter(opts: { readonly stripUsageChunk: boolean; readonly responseModel: string | null }): StreamMeter;
  streamRedactor(redact: RedactFn, holdBackChars: number): StreamRedactor;
  /** The error body clients of this family parse. */
  errorBody(err: GatewayError): object;
  /** Whether a parsed body is already an error in this family's envelope (a model server's own error passes as it is). */
  isErrorBody(json: unknown): boolean;
  modelList(routes: readonly ModelRoute[], snapshot: Snapshot): object;
  modelObject(route: ModelRoute, snapshot: Snapshot): object;
}

// ── Translation between API families ───────────────────────────────────────

/** Re-frames a provider's stream for the client, chunk by chunk, and meters it. */
export interface StreamTranslator {
  /** The bytes to send to the client now (possibly empty). */
  push(chunk: Buffer, endOfStream: boolean): Buffer;
  readonly usage: ReportedUsage | null;
  readonly contentChars: number;
  readonly sawContent: boolean;
  /** The provider's stream reached its own end marker (`[DONE]`, `message_stop`); a stream that ends without it was cut. */
  readonly complete: boolean;
}

/**
 * Serves a client of one family from a deployment that speaks another
 * provider's API. Every method throws a GatewayError when the body cannot be
 * translated (400 for a request, 502 for a response).
 */
export interface ProviderTranslator {
  /**
   * The client's (redacted, capped) request as the provider's body, the path to send it to, the headers its
   * API requires and the client's headers it has no use for.
   */
  request(
    json: Record<string, unknown>,
    upstreamModel: string,
    opts: { readonly defaultMaxTokens: number },
  ): {
    readonly body: object;
    readonly path: string;
    readonly headers: ReadonlyArray<readonly [string, string]>;
    readonly removeHeaders: readonly string[];
  };
  /** A successful buffered response in the client's shape, naming `clientModel`. */
  response(json: object, clientModel: string): object;
  stream(opts: { readonly clientModel: string; readonly includeUsage: boolean }): StreamTranslator;
  /** An error body from the provider (parsed JSON, or its text) in the client's envelope. */
  error(status: number, body: unknown): object;
}

export interface Translators {
  /** The translator from a client family to a provider; null when they are the same API. */
  between(clientFamily: string, provider: string): ProviderTranslator | null;
}

// ── Request spans ──────────────────────────────────────────────────────────

/**
 * Spans of requests (OpenTelemetry, src/tracing, when `tracing.enabled`).
 * Without one, the processor continues the client's trace itself
 * (pipeline/trace.ts) and records nothing.
 */
export interface RequestTracer {
  /**
   * Starts the request's span under the client's `traceparent` (or a new trace): its ids are the request's
   * trace context, so the traceparent sent upstream names this span as the parent. `span` is null when the
   * request is not sampled (nothing to end). Must not throw (a failure there answers a context of its own).
   */
  start(incomingTraceparent: string | undefined, startedAt: number): { readonly trace: TraceContext; readonly span: RequestSpan | null };
}

/** A started request span; ended once, when the request's audit record has been written (or failed to be). */
export interface RequestSpan {
  /** Reads the attributes from the request's context (never a prompt, completion or credential). Must not throw. */
  end(ctx: RequestContext): void;
}
