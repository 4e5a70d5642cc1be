/**
 * The desired state's backends (backends.ts) as the clusters the xDS server
 * serves (xds/types.ts): every cluster Envoy does not have statically, its
 * endpoints with their weights and priorities, its active health check, and
 * the same passive health as the static clusters of envoy/gateway.yaml.
 *
 * An endpoint of weight 0 is left out: Envoy refuses a load-balancing weight
 * of 0 (it NACKs the whole update and keeps the previous endpoints, as
 * test/control-plane/xds-envoy.test.ts shows), while for a deployment it
 * means "drained, no traffic". A cluster whose every endpoint is drained is
 * served without endpoints.
 */
import type { Backend } from './backends.ts';
import type { XdsCluster } from './xds/types.ts';

/**
 * Endpoints that fail 5 times in a row leave rotation for 10 s × the times they were ejected, at most half of a
 * cluster at once (the static clusters' outlier detection in envoy/gateway.yaml).
 */
export const OUTLIER_DETECTION = { consecutive5xx: 5, baseEjectionMs: 10_000, maxEjectionPercent: 50 } as const;

export function xdsClustersOf(backends: readonly Backend[], staticClusters: ReadonlySet<string>): XdsCluster[] {
  return backends
    .filter((b) => !staticClusters.has(b.cluster))
    .map((b) => ({
      name: b.cluster,
      endpoints: b.endpoints.filter((e) => e.weight > 0).map((e) => ({ host: e.host, port: e.port, weight: e.weight, priority: e.priority })),
      ...(b.healthCheck === null ? {} : { healthCheck: { ...b.healthCheck } }),
      outlierDetection: { ...OUTLIER_DETECTION },
    }));
}
