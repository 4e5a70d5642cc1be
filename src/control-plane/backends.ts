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
import { parseHostPort } from '../shared/hosts.ts';

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

/**
 * A deployment's fallback chain as Envoy sees it: an aggregate cluster over the deployment's cluster and then each
 * fallback deployment's, in order.
 */
export interface FallbackCluster {
  readonly name: string;
  readonly members: readonly string[];
}

/** Called with every backend and fallback chain after each committed change (revision = the desired state's revision). */
export type OnBackends = (backends: readonly Backend[], revision: number, fallbacks: readonly FallbackCluster[]) => void | Promise<void>;

/** The aggregate cluster of a deployment's fallback chain (a valid Envoy cluster name: deployment ids may hold ':'). */
export function fallbackClusterName(deploymentId: string): string {
  return `fallback.${deploymentId.replace(/[^A-Za-z0-9._-]/g, '-')}`;
}

/** Every deployment's fallback chain whose deployments all exist (the state check refuses one that names a missing one). */
export function fallbacksOf(state: DesiredState): FallbackCluster[] {
  const byId = new Map(state.deployments.map((d) => [d.id, d]));
  const out = new Map<string, FallbackCluster>();
  for (const d of state.deployments) {
    const chain = d.spec.fallback?.map((id) => byId.get(id));
    if (chain === undefined || chain.some((x) => x === undefined)) continue;
    const name = fallbackClusterName(d.id);
    out.set(name, { name, members: [d.spec.cluster, ...chain.map((x) => x?.spec.cluster ?? '')] });
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function backendsOf(state: DesiredState): Backend[] {
  const byCluster = new Map<string, { endpoints: BackendEndpoint[]; healthCheck: ActiveHealthCheck | null }>();
  const sorted = [...state.deployments].sort((a, b) => a.spec.priority - b.spec.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const d of sorted) {
    const s = d.spec;
    // Validated when the deployment was written (resources.ts), so it parses.
    const at = parseHostPort(s.address);
    if (at === null) throw new Error(`deployment ${d.id}: address ${s.address} is not host:port`);
    const entry = byCluster.get(s.cluster) ?? { endpoints: [], healthCheck: null };
    entry.endpoints.push({
      host: at.host,
      port: at.port,
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
