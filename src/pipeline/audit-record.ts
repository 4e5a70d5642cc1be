/**
 * One audit record per request, denied and failed ones included. It holds
 * the resolved facts about the request, never the prompt, the completion or
 * a credential (only the key's public id).
 */
import type { RequestContext } from './context.ts';
import { elapsedMs } from './context.ts';

export interface AuditRecord {
  readonly v: 1;
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
    readonly mtls: { readonly spiffeId: string | null; readonly subject: string | null; readonly certDigest: string } | null;
  } | null;
  readonly authorization: { readonly org: string; readonly tenant: string; readonly tier: string; readonly roles: readonly string[] } | null;
  readonly classification: { readonly request: Readonly<Record<string, number>>; readonly response: Readonly<Record<string, number>> };
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
    readonly cluster: string | null;
    readonly model: string | null;
    readonly provider: string | null;
    readonly status: number | null;
    readonly latencyMs: number | null;
  }> | null;
  readonly snapshotVersion: string;
  readonly status: number | null;
  readonly outcome: string;
  readonly latencyMs: { readonly total: number; readonly firstByte: number | null; readonly firstToken: number | null };
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number; readonly source: string } | null;
  /** Quota plan and how the decision was made; mode other than `store` flags a degraded decision. */
  readonly quota: { readonly plan: string; readonly mode: string; readonly reservedTokens: number } | null;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

export function buildAuditRecord(ctx: RequestContext, policyVersion: string, now: bigint = process.hrtime.bigint()): AuditRecord {
  const id = ctx.identity;
  const totalMs = elapsedMs(ctx.startedHr, now);
  return {
    v: 1,
    requestId: ctx.requestId,
    traceId: ctx.trace.traceId,
    startedAt: new Date(ctx.startedAt).toISOString(),
    endedAt: new Date(ctx.startedAt + totalMs).toISOString(),
    method: ctx.method,
    path: ctx.path.length > 256 ? ctx.path.slice(0, 256) : ctx.path,
    endpoint: ctx.endpoint,
    identity: id === null ? null : { methods: id.methods, principal: id.principal, keyId: id.keyId, jwt: id.jwt, mtls: id.mtls },
    authorization: id === null ? null : { org: id.org, tenant: id.tenant, tier: id.tier, roles: id.roles },
    classification: { request: ctx.content?.request ?? {}, response: ctx.content?.response ?? {} },
    decision: {
      action: ctx.outcome === 'denied' ? 'deny' : (ctx.content?.action ?? 'permit'),
      code: ctx.errorCode,
      policyVersion,
      unredacted: ctx.content?.unredacted ?? false,
    },
    model: ctx.route?.id ?? null,
    deployment:
      ctx.deployment === null
        ? null
        : { cluster: ctx.deployment.cluster, model: ctx.deployment.upstreamModel, provider: ctx.deployment.provider, labels: ctx.deployment.labels },
    attempts:
      ctx.attempts?.map((a) => ({
        n: a.n,
        cluster: a.deployment?.cluster ?? null,
        model: a.deployment?.upstreamModel ?? null,
        provider: a.deployment?.provider ?? null,
        status: a.status,
        latencyMs: a.latencyMs === null ? null : round(a.latencyMs),
      })) ?? null,
    snapshotVersion: ctx.snapshot.version,
    status: ctx.status,
    outcome: ctx.outcome ?? 'aborted',
    latencyMs: {
      total: round(totalMs),
      firstByte: ctx.firstByteHr === null ? null : round(elapsedMs(ctx.startedHr, ctx.firstByteHr)),
      firstToken: ctx.firstTokenHr === null ? null : round(elapsedMs(ctx.startedHr, ctx.firstTokenHr)),
    },
    usage: ctx.usage,
    quota: ctx.quota,
  };
}
