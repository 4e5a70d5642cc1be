/**
 * What a routing snapshot is, as the request sees it: an immutable, versioned
 * map from the logical model ids clients use to the deployments that serve
 * them. Parsing, signatures and delivery are the control plane's side
 * (src/control); choosing among the targets is the route stage's.
 */
import type { Price } from './cost.ts';
import type { Endpoint } from './endpoint.ts';

/** The distinct prices of the deployments that may answer a request for these targets (fallback chains included). */
export function pricesOf(targets: readonly Deployment[]): readonly Price[] {
  const out = new Set<Price>();
  for (const t of targets) for (const d of t.fallback?.chain ?? [t]) if (d.price !== null) out.add(d.price);
  return Object.freeze([...out]);
}

/** One deployment a request can be sent to. */
export interface Deployment {
  readonly cluster: string;
  readonly upstreamModel: string;
  /** The API the deployment speaks (an API family's name): its credential goes in that API's header. */
  readonly provider: string;
  /** Name of the upstream credential to inject, or null. */
  readonly credential: string | null;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** What the deployment charges, or null (its requests have no cost). */
  readonly price: Price | null;
  /** Where Envoy retries this deployment's failed attempts (another provider's, possibly), or null. */
  readonly fallback: Fallback | null;
}

/**
 * A deployment with fallbacks: the request goes to an Envoy aggregate cluster
 * whose members are the chain's clusters, in order. Envoy retries a failed
 * attempt on the next member; each attempt is rewritten for its own member
 * (model name, provider API, credential) by the sidecar in the aggregate's
 * upstream filter chain.
 */
export interface Fallback {
  /** The Envoy aggregate cluster. */
  readonly cluster: string;
  /** The deployments tried in order: the primary first, then its fallbacks (their own `fallback` is null). One per member cluster. */
  readonly chain: readonly Deployment[];
}

export interface ModelRoute {
  readonly id: string;
  readonly endpoints: ReadonlySet<Endpoint>;
  readonly ownedBy: string;
  /** Which model name responses carry: the alias the client asked for (default), or the deployment's own. */
  readonly responseModel: 'alias' | 'upstream';
  /** Non-empty; weights sum above 0 (the snapshot schema guarantees both). */
  readonly targets: readonly Deployment[];
  /** Running sums of the targets' weights, for the weighted pick. */
  readonly cumulativeWeights: readonly number[];
  /** The prices of every deployment that may answer (targets and their fallbacks), for spend budgets to reserve. */
  readonly prices: readonly Price[];
  /** tenant → that tenant's own deployment(s) of this model. */
  readonly overrides: ReadonlyMap<string, ModelRoute>;
  /** What the sidecar changes in every request for this model (a tenant's override has the model's), or null. */
  readonly transforms: RequestTransforms | null;
}

/**
 * A model's request transforms, applied by the client's family to the
 * client's body before anything reads it (quota, data policy, translation):
 * parameters by their name in the client's API, from the allowlist in
 * src/families/common/transform-params.ts; one that does not apply to the endpoint
 * is left out.
 */
export interface RequestTransforms {
  /** Set only when the client did not send the parameter (absent or null). */
  readonly defaults: Readonly<Record<string, number | string>>;
  /** Always set, replacing the client's value. */
  readonly forced: Readonly<Record<string, number | string>>;
  /** Put before the system prompt (chat and messages); null: none. */
  readonly systemPrefix: string | null;
}

export interface Snapshot {
  readonly version: string;
  readonly loadedAt: number;
  /** The control plane's issue time (epoch ms), when the snapshot carries one. */
  readonly issuedAt: number | null;
  /** Key id of the verified signature; null for an unsigned snapshot (accepted only when no keys are configured). */
  readonly signedBy: string | null;
  readonly models: ReadonlyMap<string, ModelRoute>;
}
