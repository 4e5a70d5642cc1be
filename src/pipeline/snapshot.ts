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

/**
 * What a deployment can be trusted with, as the signed snapshot states it: the
 * data policy's destination rules (src/pipeline/destinations.ts) decide on
 * these alone. null (or an empty list): not stated, which satisfies no rule.
 */
export interface TrustAttributes {
  /** Where it runs (e.g. eu-west-1). */
  readonly region: string | null;
  /** Where the data stays (e.g. eu). */
  readonly residency: string | null;
  readonly hosting: 'on-prem' | 'private' | 'hosted' | null;
  /** Compliance attestations (e.g. hipaa, pci). */
  readonly attestations: readonly string[];
  /** What the operator keeps of a request (e.g. zero). */
  readonly retention: string | null;
  /** Who operates it (e.g. a cloud or the deployer itself); not the API it speaks. */
  readonly provider: string | null;
}

/** One deployment a request can be sent to. */
export interface Deployment {
  /** Names the deployment in audit records and metrics; unique in the snapshot. */
  readonly id: string;
  readonly cluster: string;
  readonly upstreamModel: string;
  /** The API the deployment speaks (an API family's name): its credential goes in that API's header. */
  readonly provider: string;
  /** Name of the upstream credential to inject, or null. */
  readonly credential: string | null;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Its trust attributes (its cluster's first priority). */
  readonly trust: TrustAttributes;
  /**
   * The trust of every priority of its Envoy cluster, the first being `trust`: Envoy fails over between them
   * without the sidecar, so a rule must hold at each.
   */
  readonly priorities: readonly TrustAttributes[];
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
