/**
 * The desired state's backends as Envoy sees them: one cluster per
 * deployment `cluster` name, its endpoints (every deployment naming that
 * cluster), each with its weight and priority, and an optional active health
 * check. The control plane calls `onBackends` with the whole list after every
 * committed change (and once at start); an xDS server (CDS/EDS) is meant to
 * be wired to it. Deployments that share a cluster should agree on its health
 * check: the first one (by priority, then id) that sets one is used.
 */
import type { DesiredState } from './store.ts';

export interface BackendEndpoint {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** 0 is tried first; higher priorities take traffic when lower ones are unhealthy. */
  readonly priority: number;
  /** The deployment this endpoint comes from. */
  readonly deployment: string;
}

export interface ActiveHealthCheck {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
}

export interface Backend {
  /** The Envoy cluster name (what routing snapshots target). */
  readonly cluster: string;
  readonly endpoints: readonly BackendEndpoint[];
  readonly healthCheck: ActiveHealthCheck | null;
}

/** Called with every backend after each committed change (revision = the desired state's revision). */
export type OnBackends = (backends: readonly Backend[], revision: number) => void | Promise<void>;

export function backendsOf(state: DesiredState): Backend[] {
  const byCluster = new Map<string, { endpoints: BackendEndpoint[]; healthCheck: ActiveHealthCheck | null }>();
  const sorted = [...state.deployments].sort((a, b) => a.spec.priority - b.spec.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const d of sorted) {
    const s = d.spec;
    const colon = s.address.lastIndexOf(':');
    const entry = byCluster.get(s.cluster) ?? { endpoints: [], healthCheck: null };
    entry.endpoints.push({
      host: s.address.slice(0, colon),
      port: Number(s.address.slice(colon + 1)),
      weight: s.weight,
      priority: s.priority,
      deployment: d.id,
    });
    if (entry.healthCheck === null && s.healthCheck !== undefined) entry.healthCheck = { ...s.healthCheck };
    byCluster.set(s.cluster, entry);
  }
  return [...byCluster.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([cluster, e]) => ({ cluster, endpoints: e.endpoints, healthCheck: e.healthCheck }));
}
