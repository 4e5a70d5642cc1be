/**
 * What a request span says, read from the request's context the way its
 * audit record is (pipeline/audit-record.ts): the GenAI semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/ — `gen_ai.*` now lives
 * in the semantic-conventions-genai repository, so its names are written out
 * here rather than imported as deprecated constants), the stable HTTP and
 * error attributes, and the gateway's own `gateway.*` attributes.
 *
 * Never a prompt, a completion, a credential or a token of any kind: only
 * names, counts, codes and identifiers the audit record also holds. Plain
 * code over plain types: no OpenTelemetry package is imported here.
 */
import type { RequestContext } from '../pipeline/context.ts';
import { elapsedMs } from '../pipeline/context.ts';

export type SpanAttributes = Record<string, string | number | boolean>;

/** GenAI attribute names (semantic conventions, GenAI spans). */
export const GEN_AI = {
  operation: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
} as const;

/** Endpoint name → `gen_ai.operation.name` (the spec's well-known values; an endpoint not listed has its own name). */
const OPERATIONS: Readonly<Record<string, string>> = {
  chat: 'chat',
  messages: 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
};

/** The request's GenAI operation, or null for what is not one (the model catalogue, an unknown path). */
export function operationName(ctx: RequestContext): string | null {
  if (ctx.endpoint === null || ctx.route === null) return OPERATIONS[ctx.endpoint ?? ''] ?? null;
  return OPERATIONS[ctx.endpoint] ?? ctx.endpoint;
}

/** `{operation} {model}` as the GenAI conventions name spans; else `{method} {endpoint}`. */
export function spanName(ctx: RequestContext): string {
  const op = operationName(ctx);
  if (op !== null && ctx.route !== null) return `${op} ${ctx.route.id}`;
  return `${ctx.method === '' ? 'HTTP' : ctx.method} ${ctx.endpoint ?? 'unknown'}`;
}

export function spanAttributes(ctx: RequestContext): SpanAttributes {
  const a: SpanAttributes = {
    'http.request.method': ctx.method === '' ? '_OTHER' : ctx.method,
    'url.path': ctx.path.length > 256 ? ctx.path.slice(0, 256) : ctx.path,
    'gateway.request_id': ctx.requestId,
    'gateway.endpoint': ctx.endpoint ?? 'unknown',
    'gateway.outcome': ctx.outcome ?? 'aborted',
    'gateway.snapshot_version': ctx.snapshot.version,
    'gateway.stream': ctx.stream,
    'gateway.decision.action': ctx.outcome === 'denied' ? 'deny' : (ctx.content?.action ?? 'permit'),
  };
  const op = operationName(ctx);
  if (op !== null) a[GEN_AI.operation] = op;
  if (ctx.route !== null) a[GEN_AI.requestModel] = ctx.route.id;
  const d = ctx.deployment;
  if (d !== null) {
    a[GEN_AI.provider] = d.provider;
    a[GEN_AI.responseModel] = d.upstreamModel;
    a['gateway.deployment.cluster'] = d.cluster;
    a['gateway.deployment.provider'] = d.provider;
  }
  if (ctx.usage !== null) {
    a[GEN_AI.inputTokens] = ctx.usage.promptTokens;
    a[GEN_AI.outputTokens] = ctx.usage.completionTokens;
    a['gateway.usage.source'] = ctx.usage.source;
  }
  if (ctx.status !== null) {
    a['http.response.status_code'] = ctx.status;
    a['gateway.status'] = ctx.status;
  }
  if (ctx.errorCode !== null) {
    a['error.type'] = ctx.errorCode;
    a['gateway.error.code'] = ctx.errorCode;
  }
  if (ctx.quota !== null) {
    a['gateway.quota.plan'] = ctx.quota.plan;
    a['gateway.quota.mode'] = ctx.quota.mode;
  }
  if (ctx.attempts !== null) a['gateway.attempts'] = ctx.attempts.length;
  const id = ctx.identity;
  if (id !== null) {
    a['gateway.org'] = id.org;
    a['gateway.tenant'] = id.tenant;
  }
  if (ctx.firstTokenHr !== null) a['gateway.time_to_first_token_ms'] = Math.round(elapsedMs(ctx.startedHr, ctx.firstTokenHr) * 1000) / 1000;
  return a;
}

/** The span failed when the request did (a 5xx, or the gateway failed it); a denial is the gateway working. */
export function spanFailed(ctx: RequestContext): boolean {
  return ctx.outcome === 'failed' || ctx.outcome === 'aborted' || (ctx.status !== null && ctx.status >= 500);
}
