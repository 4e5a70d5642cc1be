/**
 * What the control plane tells the xDS server: the upstream clusters Envoy
 * should have, in plain terms. The server turns each into an EDS cluster
 * (CDS) and its ClusterLoadAssignment (EDS).
 */

export interface XdsEndpoint {
  /**
   * An IP address, or a DNS name: a cluster with a name among its hosts is a STRICT_DNS cluster (Envoy resolves the
   * names itself), one with addresses only an EDS cluster.
   */
  host: string;
  port: number;
  /** Share of traffic within its priority, an integer >= 1 (default 1). */
  weight?: number;
  /** 0 (default) is used first; 1, 2, … only as the levels before it lose their healthy hosts. */
  priority?: number;
}

/** Active HTTP health check: a GET of `path` on every endpoint; any 2xx is healthy. */
export interface XdsHealthCheck {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failed checks in a row that take an endpoint out of rotation. */
  unhealthyThreshold: number;
  /** Passed checks in a row that bring it back. */
  healthyThreshold: number;
}

/** Passive health: endpoints that answer 5xx (or fail to connect) in a row are ejected for a while. */
export interface XdsOutlierDetection {
  consecutive5xx: number;
  /** Ejection time is this × how many times the endpoint has been ejected. */
  baseEjectionMs: number;
  /** At most this percentage (0-100) of the cluster's endpoints is ejected at once. */
  maxEjectionPercent: number;
}

export interface XdsCluster {
  /** The Envoy cluster name: what the sidecar puts in x-gateway-target-cluster. */
  name: string;
  endpoints: XdsEndpoint[];
  healthCheck?: XdsHealthCheck;
  outlierDetection?: XdsOutlierDetection;
}

/** Structured logging as pino's Logger offers it (fields first, then the message). */
export interface XdsLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
}
