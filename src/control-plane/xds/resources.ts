/**
 * XdsCluster → the xDS resources Envoy receives: an EDS `Cluster` (CDS) and
 * its `ClusterLoadAssignment` (EDS) when every endpoint is an IP address, or
 * a STRICT_DNS `Cluster` with its endpoints inline when one is a DNS name
 * (EDS hands Envoy addresses, never names: Envoy resolves a STRICT_DNS
 * cluster's names itself and follows their changes), each encoded with
 * protobufjs from our own declarations in protos/ and packed in a
 * google.protobuf.Any.
 *
 * `validateClusters` refuses what cannot be encoded, naming the field: names
 * (Envoy cluster names, unique), hosts (an IP address or a DNS name),
 * ports, and integers in the range of their wire fields (uint32). Envoy's own
 * rules on values are left to Envoy, the one authority on them: a duration of
 * 0, a percentage over 100, a weight of 0, an empty health-check path. Envoy
 * rejects such a state with a NACK and keeps running its previous version;
 * the server logs and counts it (XdsServer.status()). The control plane's API
 * validates operator input before it gets here.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import protobuf from 'protobufjs';
import { isDnsName } from '../../shared/hosts.ts';
import type { XdsCluster, XdsEndpoint } from './types.ts';

export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const HTTP_OPTIONS_NAME = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_OPTIONS_TYPE_URL = `type.googleapis.com/${HTTP_OPTIONS_NAME}`;

/** Our .proto declarations (repository root protos/). */
export const XDS_PROTOS_DIR: string = path.resolve(import.meta.dirname, '../../../protos');

/** The resource files; their imports come along. */
export const XDS_RESOURCE_PROTOS: readonly string[] = Object.freeze([
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
]);

/** Connect timeout of every served cluster (as the static upstream clusters in envoy/gateway.yaml). */
const CONNECT_TIMEOUT_MS = 2000;
/**
 * Idle upstream connections are closed after 4 s, before a model server does
 * (Node's and many Python servers' keep-alive is 5 s): a request sent on a
 * connection the server is closing fails. Same as envoy/gateway.yaml.
 */
const IDLE_TIMEOUT_MS = 4000;
const NAME = /^[A-Za-z0-9_.:-]+$/;
const UINT32_MAX = 0xffff_ffff;
/** Durations in ms: the largest a JS number holds exactly (Envoy's Duration goes further). */
const MAX_MS = Number.MAX_SAFE_INTEGER;

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    const candidate = path.join(XDS_PROTOS_DIR, target);
    if (!fs.existsSync(candidate)) throw new Error(`${target} not found in ${XDS_PROTOS_DIR}`);
    return candidate;
  };
  root.loadSync([...XDS_RESOURCE_PROTOS], { keepCase: true });
  root.resolveAll();
  return root;
}

const root = loadRoot();
const ClusterType = root.lookupType('envoy.config.cluster.v3.Cluster');
const AssignmentType = root.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment');
const HttpOptionsType = root.lookupType(HTTP_OPTIONS_NAME);

/** A google.protobuf.Any as proto-loader (keepCase) writes it. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

function pack(type: protobuf.Type, typeUrl: string, object: Record<string, unknown>): AnyMessage {
  return { type_url: typeUrl, value: Buffer.from(type.encode(type.fromObject(object)).finish()) };
}

/** A google.protobuf.Duration; zero parts are left out (protobufjs would write an explicit 0). */
function duration(ms: number): { seconds?: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return { ...(seconds === 0 ? {} : { seconds }), ...(nanos === 0 ? {} : { nanos }) };
}

function fail(field: string, problem: string): never {
  throw new TypeError(`${field} ${problem}`);
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer from ${min} to ${max}`);
  return value;
}

/** Throws a TypeError naming the first invalid field, e.g. `clusters[1].endpoints[0].port must be …`. */
export function validateClusters(clusters: readonly XdsCluster[]): void {
  const names = new Set<string>();
  clusters.forEach((c, i) => {
    const at = `clusters[${i}]`;
    if (typeof c.name !== 'string' || !NAME.test(c.name)) fail(`${at}.name`, 'must be letters, digits and _ . : - only');
    if (names.has(c.name)) fail(`${at}.name`, `"${c.name}" is used twice`);
    names.add(c.name);
    if (!Array.isArray(c.endpoints)) fail(`${at}.endpoints`, 'must be a list');
    const addresses = new Set<string>();
    c.endpoints.forEach((e, j) => {
      const ep = `${at}.endpoints[${j}]`;
      if (typeof e.host !== 'string' || (isIP(e.host) === 0 && !isDnsName(e.host))) fail(`${ep}.host`, 'must be an IP address or a DNS name');
      integer(e.port, `${ep}.port`, 1, 65535);
      if (e.weight !== undefined) integer(e.weight, `${ep}.weight`, 0, UINT32_MAX);
      // A uint32 on the wire, but Envoy keeps one host set per level up to the highest: a guard, not Envoy's rule.
      if (e.priority !== undefined) integer(e.priority, `${ep}.priority`, 0, 127);
      const key = `${e.host}|${e.port}`;
      if (addresses.has(key)) fail(`${ep}`, `${e.host} port ${e.port} is listed twice`);
      addresses.add(key);
    });
    const hc = c.healthCheck;
    if (hc !== undefined) {
      if (typeof hc.path !== 'string') fail(`${at}.healthCheck.path`, 'must be a string');
      integer(hc.intervalMs, `${at}.healthCheck.intervalMs`, 0, MAX_MS);
      integer(hc.timeoutMs, `${at}.healthCheck.timeoutMs`, 0, MAX_MS);
      integer(hc.unhealthyThreshold, `${at}.healthCheck.unhealthyThreshold`, 0, UINT32_MAX);
      integer(hc.healthyThreshold, `${at}.healthCheck.healthyThreshold`, 0, UINT32_MAX);
    }
    const od = c.outlierDetection;
    if (od !== undefined) {
      integer(od.consecutive5xx, `${at}.outlierDetection.consecutive5xx`, 0, UINT32_MAX);
      integer(od.baseEjectionMs, `${at}.outlierDetection.baseEjectionMs`, 0, MAX_MS);
      integer(od.maxEjectionPercent, `${at}.outlierDetection.maxEjectionPercent`, 0, UINT32_MAX);
    }
  });
}

/** How Envoy learns a cluster's hosts: over EDS when every endpoint is an IP address, else by resolving the names itself. */
export function discoveryOf(c: XdsCluster): 'EDS' | 'STRICT_DNS' {
  return c.endpoints.every((e) => isIP(e.host) !== 0) ? 'EDS' : 'STRICT_DNS';
}

/**
 * The CDS resource, HTTP/1.1 upstream: an EDS cluster fed over ADS, or a STRICT_DNS cluster carrying its endpoints
 * (an IP address among the names resolves to itself). Each name's IPv4 addresses are used when it has any (Envoy
 * resolves every name again each 5 s by default, and a name's addresses are all hosts of its priority level).
 */
export function clusterResource(c: XdsCluster): AnyMessage {
  const discovery =
    discoveryOf(c) === 'EDS'
      ? { type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: c.name } }
      : { type: 'STRICT_DNS', dns_lookup_family: 'V4_PREFERRED', load_assignment: loadAssignment(c) };
  const cluster: Record<string, unknown> = {
    name: c.name,
    ...discovery,
    connect_timeout: duration(CONNECT_TIMEOUT_MS),
    lb_policy: 'ROUND_ROBIN',
    // A backend removed from the desired state stops taking traffic now: by default Envoy keeps a removed host for
    // as long as it passes its active health checks (test/e2e/control-plane-xds.test.ts found it).
    ignore_health_on_host_removal: true,
    typed_extension_protocol_options: {
      [HTTP_OPTIONS_NAME]: pack(HttpOptionsType, HTTP_OPTIONS_TYPE_URL, {
        common_http_protocol_options: { idle_timeout: duration(IDLE_TIMEOUT_MS) },
        explicit_http_config: { http_protocol_options: {} },
      }),
    },
  };
  if (c.healthCheck !== undefined) {
    const hc = c.healthCheck;
    cluster.health_checks = [
      {
        timeout: duration(hc.timeoutMs),
        interval: duration(hc.intervalMs),
        // Envoy checks a cluster that has had no traffic yet only every 60 s by default: a backend added
        // and not yet used would be taken out (or brought back) a minute late.
        no_traffic_interval: duration(hc.intervalMs),
        unhealthy_threshold: { value: hc.unhealthyThreshold },
        healthy_threshold: { value: hc.healthyThreshold },
        http_health_check: { path: hc.path },
      },
    ];
  }
  if (c.outlierDetection !== undefined) {
    const od = c.outlierDetection;
    cluster.outlier_detection = {
      consecutive_5xx: { value: od.consecutive5xx },
      base_ejection_time: duration(od.baseEjectionMs),
      max_ejection_percent: { value: od.maxEjectionPercent },
    };
  }
  return pack(ClusterType, CLUSTER_TYPE_URL, cluster);
}

/** The EDS resource of an EDS cluster (discoveryOf): its load assignment. */
export function assignmentResource(c: XdsCluster): AnyMessage {
  return pack(AssignmentType, ENDPOINT_TYPE_URL, loadAssignment(c));
}

/** One LocalityLbEndpoints per priority, in priority order. */
function loadAssignment(c: XdsCluster): Record<string, unknown> {
  const byPriority = new Map<number, XdsEndpoint[]>();
  for (const e of c.endpoints) {
    const p = e.priority ?? 0;
    byPriority.set(p, [...(byPriority.get(p) ?? []), e]);
  }
  const endpoints = [...byPriority.entries()]
    .sort(([a], [b]) => a - b)
    .map(([priority, list]) => ({
      ...(priority === 0 ? {} : { priority }),
      lb_endpoints: list.map((e) => ({
        endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
        ...(e.weight === undefined ? {} : { load_balancing_weight: { value: e.weight } }),
      })),
    }));
  return { cluster_name: c.name, endpoints };
}

/** Decodes a packed resource with our declarations (for logs and tests). */
export function decodeResource(any: AnyMessage): Record<string, unknown> {
  const type = any.type_url === CLUSTER_TYPE_URL ? ClusterType : any.type_url === ENDPOINT_TYPE_URL ? AssignmentType : undefined;
  if (type === undefined) throw new Error(`unknown resource type ${any.type_url}`);
  return type.toObject(type.decode(any.value), { longs: String, enums: String, defaults: false, oneofs: true });
}
