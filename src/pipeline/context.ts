/**
 * The typed state of one request as it moves through the phases. The
 * protocol layer (src/server) owns the wire; stages read and fill this.
 */
import type { Endpoint } from './endpoint.ts';
import type { Identity } from './identity.ts';
import type { DataClasses, PolicyAction, QuotaMode } from './ports.ts';
import type { Deployment, ModelRoute, Snapshot } from './snapshot.ts';
import type { TraceContext } from './trace.ts';
import type { Usage } from './usage.ts';

export type { Identity, Usage };

export type Outcome = 'completed' | 'denied' | 'failed' | 'aborted';

export interface RequestContext {
  readonly requestId: string;
  readonly trace: TraceContext;
  readonly startedAt: number; // epoch ms
  readonly startedHr: bigint;
  readonly method: string;
  /** The request path without its query string: the query goes nowhere (src/pipeline/query.ts). */
  readonly path: string;
  readonly endpoint: Endpoint | null;
  /** Taken once at the first phase; the request sees this snapshot to the end. */
  readonly snapshot: Snapshot;
  identity: Identity | null;
  /** The logical model the client asked for (only once it is known to be in the snapshot). */
  route: ModelRoute | null;
  /**
   * The deployment that serves the request: the one picked from the route's
   * weighted targets; with fallbacks, the chain member whose attempt answered
   * (null when none did: Envoy replied itself).
   */
  deployment: Deployment | null;
  /** Every attempt of a request with fallbacks, in order; null for a target without fallbacks. */
  attempts: AttemptSummary[] | null;
  stream: boolean;
  /** The client asked for stream usage itself; if not, we add it and strip it again. */
  clientWantsStreamUsage: boolean;
  usage: Usage | null;
  /**
   * What the request cost, in 10⁻¹² units of the currency (src/pipeline/cost.ts): set when it ends, from the usage and
   * the price of the deployment that answered; null when that deployment has no price or nothing was used.
   */
  cost: { readonly units: bigint; readonly currency: string; readonly estimated: boolean } | null;
  status: number | null;
  /** Error code when the gateway refused or failed the request. */
  errorCode: string | null;
  firstByteHr: bigint | null;
  firstTokenHr: bigint | null;
  outcome: Outcome | null;
  /** The quota plan applied and how it was decided (store, or a store-down policy). */
  quota: { readonly plan: string; readonly mode: QuotaMode; readonly reservedTokens: number } | null;
  /** The model's request transforms that changed the body (names only), or null when none did. */
  transforms: AppliedTransforms | null;
  /** Data found (detector names → counts, never values) and what the data policy decided. */
  content: {
    request: Record<string, number>;
    response: Record<string, number>;
    action: PolicyAction;
    /** The policy said redact, but the request went on as sent (ext_authz with policy.extAuthzRedact: permit). */
    unredacted: boolean;
    /** Data classes found in the request, and those sent on (after redaction): destination rules decide on the latter. */
    classes: DataClasses;
  } | null;
  /**
   * Where the data policy let the request go (src/pipeline/destinations.ts): the destination rules that applied and
   * the ids of every deployment of the route they authorize. null before the decision, or when no rule applied.
   */
  destinations: { readonly rules: readonly string[]; readonly constraining: readonly string[]; readonly authorized: readonly string[] } | null;
}

/** Which of a model's request transforms a request's body took: parameter names (sorted), and whether the system prompt was prefixed. */
export interface AppliedTransforms {
  readonly defaults: readonly string[];
  readonly forced: readonly string[];
  readonly systemPrefix: boolean;
}

/** One attempt of a request with fallbacks, for the audit record. */
export interface AttemptSummary {
  readonly n: number;
  /** null: the attempt ran in another sidecar process, which alone saw it. */
  readonly deployment: Deployment | null;
  /** The member's status; null when none came (connection refused or reset) or the attempt was not seen. */
  readonly status: number | null;
  readonly latencyMs: number | null;
  /** The sidecar vetoed the attempt: its member is not authorized by the data policy's destination rules. */
  readonly refused: boolean;
}

export function elapsedMs(from: bigint, to: bigint = process.hrtime.bigint()): number {
  return Number(to - from) / 1e6;
}
