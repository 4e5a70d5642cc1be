/**
 * One audit record per request, denied and failed ones included. It holds
 * the resolved facts about the request, never the prompt, the completion or
 * a credential (only the key's public id).
 */
import type { RequestContext } from './context.ts';
import { elapsedMs } from './context.ts';
import { formatUnits } from './cost.ts';

export interface AuditRecord {
  readonly type: 'request';
  readonly v: 1;
  /**
   * Where the record sits in the audit chain (chain id, sequence number, hash of the previous record): null until
   * the chain writes it, which fills it in place (src/stores/audit/chain.ts).
   */
  chain: { readonly id: string; readonly prev: string; readonly seq: number } | null;
  readonly requestId: string;
  readonly traceId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly method: string;
  /** The request path without its query string (RequestContext.path), at most 256 characters. */
  readonly path: string;
  readonly endpoint: string | null;
  readonly identity: {
    readonly methods: readonly string[];
    readonly principal: string;
    readonly keyId: string | null;
    readonly jwt: { readonly issuer: string; readonly subject: string } | null;
    /** The introspected token's issuer and subject; the token itself is never recorded. */
    readonly introspection: { readonly issuer: string; readonly subject: string } | null;
    readonly mtls: { readonly spiffeId: string | null; readonly subject: string | null; readonly certDigest: string } | null;
  } | null;
  readonly authorization: { readonly org: string; readonly tenant: string; readonly tier: string; readonly roles: readonly string[] } | null;
  /**
   * Findings by detector (counts only), and the data classes found in the request and those sent on after redaction
   * (`classes` is null when the request was refused before classification).
   */
  readonly classification: {
    readonly classes: { readonly found: readonly string[]; readonly sent: readonly string[] } | null;
    readonly request: Readonly<Record<string, number>>;
    readonly response: Readonly<Record<string, number>>;
  };
  /**
   * Where the data policy let the request go (docs/content-policy.md "Destination rules"): the destination rules that
   * applied, those that excluded a deployment of the route, and the ids of every deployment they authorized. null when
   * no rule applied (any deployment of the route could serve).
   */
  readonly destinations: { readonly authorized: readonly string[]; readonly constraining: readonly string[]; readonly rules: readonly string[] } | null;
  /** `unredacted`: the policy said redact but the request reached the model as sent (ext_authz, by the deployer's choice). */
  readonly decision: {
    readonly action: 'permit' | 'redact' | 'deny';
    readonly code: string | null;
    readonly policyVersion: string;
    readonly unredacted: boolean;
  };
  readonly model: string | null;
  readonly deployment: {
    readonly cluster: string;
    readonly id: string;
    readonly model: string;
    readonly provider: string;
    readonly labels: Readonly<Record<string, string>>;
  } | null;
  /**
   * A target with fallbacks: every attempt Envoy made, in order (deployment,
   * status, latency); `deployment` above is the one that answered. null
   * otherwise.
   */
  readonly attempts: ReadonlyArray<{
    readonly n: number;
    readonly id: string | null;
    readonly cluster: string | null;
    readonly model: string | null;
    readonly provider: string | null;
    readonly status: number | null;
    readonly latencyMs: number | null;
    /** The sidecar vetoed the attempt: its deployment is not authorized for the request (it never received it). */
    readonly refused: boolean;
  }> | null;
  readonly snapshotVersion: string;
  readonly status: number | null;
  readonly outcome: string;
  readonly latencyMs: { readonly total: number; readonly firstByte: number | null; readonly firstToken: number | null };
  readonly usage: {
    readonly promptTokens: number;
    readonly completionTokens: number;
    /** Of promptTokens, those read from the provider's prompt cache. */
    readonly cachedPromptTokens: number;
    readonly source: string;
  } | null;
  /**
   * What the request cost at the answering deployment's price (docs/cost.md): an exact decimal string, its currency,
   * and whether the usage behind it was estimated. null when that deployment has no price or nothing was used.
   */
  readonly cost: { readonly amount: string; readonly currency: string; readonly estimated: boolean } | null;
  /** Quota plan and how the decision was made; mode other than `store` flags a degraded decision. */
  readonly quota: { readonly plan: string; readonly mode: string; readonly reservedTokens: number } | null;
  /**
   * The model's request transforms that changed the body: parameter names set as defaults and as forced values
   * (sorted), and whether the system prompt was prefixed. Names only, never a value or the prefix's text. null when
   * none did (the model has none, none applies to the endpoint, or the request was refused before).
   */
  readonly transforms: { readonly defaults: readonly string[]; readonly forced: readonly string[]; readonly systemPrefix: boolean } | null;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * Every object here is written with its keys in canonical (code-unit) order, so the chain can serialize the record
 * with the native JSON.stringify (see canonicalJson); a key out of order only costs speed, never correctness.
 */
export function buildAuditRecord(ctx: RequestContext, policyVersion: string, now: bigint = process.hrtime.bigint()): AuditRecord {
  const id = ctx.identity;
  const totalMs = elapsedMs(ctx.startedHr, now);
  const usage = ctx.usage;
  const quota = ctx.quota;
  return {
    attempts:
      ctx.attempts?.map((a) => ({
        cluster: a.deployment?.cluster ?? null,
        id: a.deployment?.id ?? null,
        latencyMs: a.latencyMs === null ? null : round(a.latencyMs),
        model: a.deployment?.upstreamModel ?? null,
        n: a.n,
        provider: a.deployment?.provider ?? null,
        refused: a.refused,
        status: a.status,
      })) ?? null,
    authorization: id === null ? null : { org: id.org, roles: id.roles, tenant: id.tenant, tier: id.tier },
    chain: null,
    classification: {
      classes: ctx.content === null ? null : { found: ctx.content.classes.found, sent: ctx.content.classes.sent },
      request: ctx.content?.request ?? {},
      response: ctx.content?.response ?? {},
    },
    cost: ctx.cost === null ? null : { amount: formatUnits(ctx.cost.units), currency: ctx.cost.currency, estimated: ctx.cost.estimated },
    decision: {
      action: ctx.outcome === 'denied' ? 'deny' : (ctx.content?.action ?? 'permit'),
      code: ctx.errorCode,
      policyVersion,
      unredacted: ctx.content?.unredacted ?? false,
    },
    deployment:
      ctx.deployment === null
        ? null
        : {
            cluster: ctx.deployment.cluster,
            id: ctx.deployment.id,
            labels: ctx.deployment.labels,
            model: ctx.deployment.upstreamModel,
            provider: ctx.deployment.provider,
          },
    destinations:
      ctx.destinations === null
        ? null
        : { authorized: ctx.destinations.authorized, constraining: ctx.destinations.constraining, rules: ctx.destinations.rules },
    endedAt: new Date(ctx.startedAt + totalMs).toISOString(),
    endpoint: ctx.endpoint,
    identity:
      id === null ? null : { introspection: id.introspection, jwt: id.jwt, keyId: id.keyId, methods: id.methods, mtls: id.mtls, principal: id.principal },
    latencyMs: {
      firstByte: ctx.firstByteHr === null ? null : round(elapsedMs(ctx.startedHr, ctx.firstByteHr)),
      firstToken: ctx.firstTokenHr === null ? null : round(elapsedMs(ctx.startedHr, ctx.firstTokenHr)),
      total: round(totalMs),
    },
    method: ctx.method,
    model: ctx.route?.id ?? null,
    outcome: ctx.outcome ?? 'aborted',
    path: ctx.path.length > 256 ? ctx.path.slice(0, 256) : ctx.path,
    quota: quota === null ? null : { mode: quota.mode, plan: quota.plan, reservedTokens: quota.reservedTokens },
    requestId: ctx.requestId,
    snapshotVersion: ctx.snapshot.version,
    startedAt: new Date(ctx.startedAt).toISOString(),
    status: ctx.status,
    traceId: ctx.trace.traceId,
    transforms:
      ctx.transforms === null
        ? null
        : { defaults: [...ctx.transforms.defaults], forced: [...ctx.transforms.forced], systemPrefix: ctx.transforms.systemPrefix },
    type: 'request',
    usage:
      usage === null
        ? null
        : { cachedPromptTokens: usage.cachedPromptTokens, completionTokens: usage.completionTokens, promptTokens: usage.promptTokens, source: usage.source },
    v: 1,
  };
}
