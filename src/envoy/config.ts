// Renders Envoy bootstrap configs from the committed template envoy/gateway.yaml.
//
// The template is edited structurally (listener and clusters found by name),
// never by string replacement, so comments and formatting of the committed
// file can change freely. Rendered output is YAML for Envoy's -c flag.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from './binary.ts';

/** The committed gateway config (template and default config). */
export const GATEWAY_YAML_PATH = join(PROJECT_ROOT, 'envoy', 'gateway.yaml');

/** Names the template uses; renderers look things up by these. */
export const LISTENER_NAME = 'gateway';
export const SIDECAR_CLUSTER = 'inference-gateway-sidecar';
export const DEMO_CLUSTER = 'demo-upstream';
/** The template's aggregate cluster: every aggregate copies its upstream filter chain (the per-attempt ext_proc). */
export const DEMO_AGGREGATE = 'demo-failover';
/** The static cluster through which Envoy reaches the control plane's ADS server (renderGatewayConfig's `xds`). */
export const XDS_CLUSTER = 'xds-control-plane';
/** Request header through which the sidecar picks the upstream cluster. */
export const TARGET_CLUSTER_HEADER = 'x-gateway-target-cluster';
const EXT_PROC_FILTER = 'envoy.filters.http.ext_proc';
const HCM_FILTER = 'envoy.filters.network.http_connection_manager';

export interface UpstreamCluster {
  name: string;
  /** IP literal (STATIC cluster) or DNS name (STRICT_DNS cluster). */
  host: string;
  port: number;
  /**
   * Deployments Envoy fails over to, in order: endpoints at priority 1, 2, ….
   * Envoy sends traffic to the next priority when outlier detection has
   * ejected the hosts before it, and the route's retry policy moves a request
   * whose connection failed to the next priority at once.
   */
  fallbacks?: Array<{ host: string; port: number }>;
}

/**
 * A cluster made of other clusters, tried in order (Envoy's aggregate
 * cluster): traffic goes to the first while it has healthy hosts, then to the
 * next, and a failed attempt is retried on the next member. The routing
 * snapshot's `fallback` of a target names it; the sidecar, in the cluster's
 * upstream filter chain, rewrites each attempt for its member's provider.
 */
export interface AggregateCluster {
  name: string;
  /** Names of upstream clusters given in the same list, primary first. */
  aggregate: string[];
}

export interface GatewayConfigOptions {
  listenerPort: number;
  adminPort: number;
  /**
   * Path of the sidecar's ext_proc Unix socket, or several: one per sidecar
   * process (a Node process uses one core; Envoy spreads the gRPC streams, one
   * per request, over them round robin).
   */
  sidecarSocket: string | readonly string[];
  /** Upstream clusters; they replace the template's demo cluster and copy its settings. */
  clusters: Array<UpstreamCluster | AggregateCluster>;
  /** ext_proc per-message timeout (template default: 1s). */
  messageTimeoutMs?: number;
  /** Adds a JSON-lines access log at this path (with response flags and code details). */
  accessLogPath?: string;
  /** Terminates TLS (1.2+) on the gateway listener, optionally requiring client certificates (mTLS). */
  tls?: ListenerTlsOptions;
  /**
   * Upstream clusters also come from a control plane over ADS (CDS + EDS):
   * Envoy gets a static `xds-control-plane` cluster (HTTP/2) at this address
   * and `dynamic_resources` naming it. `clusters` may then be empty; the
   * sidecar's cluster stays static.
   */
  xds?: XdsSourceOptions;
}

/** Where Envoy finds the control plane's ADS server. */
export interface XdsSourceOptions {
  /** IP literal (STATIC cluster) or DNS name (STRICT_DNS cluster), e.g. the control plane's Service. */
  host: string;
  port: number;
  /** Envoy's node id, as the control plane sees it (default "inference-gateway"). */
  nodeId?: string;
  /** ADS over mutual TLS (the control plane's `xds.tls`); unset: plaintext. */
  tls?: XdsClientTlsOptions;
}

/** Envoy's side of mTLS to the control plane (paths as Envoy sees them). */
export interface XdsClientTlsOptions {
  /** PEM certificate chain Envoy presents: its identity, listed in the control plane's xds.tls.allowedClients. */
  certChainFile: string;
  /** PEM private key of that certificate. */
  privateKeyFile: string;
  /** PEM CA bundle the control plane's server certificate must chain to. */
  caFile: string;
  /** When set: sent as SNI, and the control plane's certificate must carry this DNS SAN. */
  serverName?: string;
}

/** Files for the gateway listener's DownstreamTlsContext (paths as Envoy sees them). */
export interface ListenerTlsOptions {
  /** PEM server certificate chain. */
  certChainFile: string;
  /** PEM private key of the server certificate. */
  privateKeyFile: string;
  /** PEM CA bundle that client certificates must chain to. */
  clientCaFile: string;
  /**
   * true: a connection without a valid client certificate fails the TLS
   * handshake. false: a client certificate is optional, but one that is
   * presented must still chain to clientCaFile.
   */
  requireClientCertificate: boolean;
}

export interface PlainConfigOptions {
  listenerPort: number;
  adminPort: number;
  /** The one cluster every request is routed to. */
  cluster: UpstreamCluster;
  accessLogPath?: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

let template: Obj | undefined;

/** Parsed envoy/gateway.yaml (read once; callers get a deep copy). */
export function loadGatewayTemplate(): Obj {
  if (template === undefined) {
    const parsed: unknown = YAML.parse(readFileSync(GATEWAY_YAML_PATH, 'utf8'));
    if (!isObj(parsed)) throw new Error(`${GATEWAY_YAML_PATH}: not a YAML mapping`);
    template = parsed;
  }
  return structuredClone(template);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: Json | undefined, what: string): Obj {
  if (!isObj(v)) throw new Error(`gateway template: ${what} is missing or not a mapping`);
  return v;
}

function arr(v: Json | undefined, what: string): Json[] {
  if (!Array.isArray(v)) throw new Error(`gateway template: ${what} is missing or not a list`);
  return v;
}

function byName(list: Json[], name: string, what: string): Obj {
  const found = list.find((x) => isObj(x) && x.name === name);
  if (!isObj(found)) throw new Error(`gateway template: no ${what} named "${name}"`);
  return found;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${what} must be an integer port 0-65535, got ${port}`);
  }
}

function setSocketPort(holder: Obj, port: number, what: string): void {
  const sa = obj(obj(holder.address, `${what}.address`).socket_address, `${what}.address.socket_address`);
  sa.port_value = port;
}

function listenerOf(doc: Obj): Obj {
  const listeners = arr(obj(doc.static_resources, 'static_resources').listeners, 'static_resources.listeners');
  return byName(listeners, LISTENER_NAME, 'listener');
}

function clustersOf(doc: Obj): Json[] {
  return arr(obj(doc.static_resources, 'static_resources').clusters, 'static_resources.clusters');
}

function hcmOf(listener: Obj): Obj {
  for (const chain of arr(listener.filter_chains, 'listener.filter_chains')) {
    for (const f of arr(obj(chain, 'filter chain').filters, 'filter_chains[].filters')) {
      if (isObj(f) && f.name === HCM_FILTER) return obj(f.typed_config, 'http_connection_manager.typed_config');
    }
  }
  throw new Error('gateway template: listener has no http_connection_manager');
}

function routesOf(hcm: Obj): Json[] {
  const rc = obj(hcm.route_config, 'route_config');
  const vhost = obj(arr(rc.virtual_hosts, 'route_config.virtual_hosts')[0], 'virtual_hosts[0]');
  return arr(vhost.routes, 'virtual_hosts[0].routes');
}

/** Whether a route matches on a request header (the fallback route), not on the path alone. */
function matchesHeader(route: Json): boolean {
  return isObj(route) && isObj(route.match) && route.match.headers !== undefined;
}

/** The catch-all route of the gateway's virtual host (the one without a header match). */
function routeActionOf(hcm: Obj): Obj {
  const route = routesOf(hcm).find((r) => !matchesHeader(r));
  return obj(obj(route, 'the catch-all route').route, 'catch-all route.route');
}

function durationMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`messageTimeoutMs must be >= 0, got ${ms}`);
  return `${(Math.round(ms) / 1000).toString()}s`;
}

/** One upstream cluster, built from the template's demo cluster. */
function upstreamCluster(demo: Obj, c: UpstreamCluster): Obj {
  if (!/^[A-Za-z0-9_.:-]+$/.test(c.name)) throw new Error(`invalid cluster name "${c.name}"`);
  const levels = [{ host: c.host, port: c.port }, ...(c.fallbacks ?? [])];
  for (const l of levels) {
    if (l.host === '') throw new Error(`cluster "${c.name}": empty host`);
    checkPort(l.port, `cluster "${c.name}" port`);
  }
  const cluster = structuredClone(demo);
  cluster.name = c.name;
  cluster.type = levels.every((l) => isIP(l.host) !== 0) ? 'STATIC' : 'STRICT_DNS';
  if (cluster.type === 'STRICT_DNS' && cluster.dns_lookup_family === undefined) cluster.dns_lookup_family = 'V4_PREFERRED';
  cluster.load_assignment = {
    cluster_name: c.name,
    endpoints: levels.map((l, priority) => ({
      ...(priority === 0 ? {} : { priority }),
      // The member an attempt of an aggregate cluster went to, as the sidecar reads it (xds.upstream_host_metadata).
      lb_endpoints: [{ endpoint: { address: { socket_address: { address: l.host, port_value: l.port } } }, metadata: memberMetadata(c.name) }],
    })),
  };
  return cluster;
}

function memberMetadata(cluster: string): Obj {
  return { filter_metadata: { gateway: { member: cluster } } };
}

/** An aggregate cluster: the template's (its per-attempt ext_proc included) over the given members. */
function aggregateCluster(template: Obj, c: AggregateCluster, hosts: ReadonlySet<string>): Obj {
  if (!/^[A-Za-z0-9_.:-]+$/.test(c.name)) throw new Error(`invalid cluster name "${c.name}"`);
  if (c.aggregate.length < 2) throw new Error(`aggregate cluster "${c.name}" needs at least two clusters`);
  if (new Set(c.aggregate).size !== c.aggregate.length) throw new Error(`aggregate cluster "${c.name}" lists a cluster twice`);
  for (const member of c.aggregate) {
    if (!hosts.has(member)) throw new Error(`aggregate cluster "${c.name}": "${member}" is not an upstream cluster in the same list`);
  }
  const cluster = structuredClone(template);
  cluster.name = c.name;
  // The member clusters' priorities, concatenated in order, decide where traffic goes.
  const type = obj(obj(cluster.cluster_type, 'aggregate cluster_type').typed_config, 'aggregate cluster_type.typed_config');
  type.clusters = [...c.aggregate];
  return cluster;
}

function withUpstreams(doc: Obj, upstreams: Array<UpstreamCluster | AggregateCluster>): Json[] {
  const clusters = clustersOf(doc);
  const demo = byName(clusters, DEMO_CLUSTER, 'cluster');
  const demoAggregate = byName(clusters, DEMO_AGGREGATE, 'cluster');
  const names = new Set<string>();
  for (const c of upstreams) {
    if (c.name === SIDECAR_CLUSTER) throw new Error(`cluster name "${c.name}" is reserved for the sidecar`);
    if (c.name === XDS_CLUSTER) throw new Error(`cluster name "${c.name}" is reserved for the control plane`);
    if (names.has(c.name)) throw new Error(`duplicate cluster name "${c.name}"`);
    names.add(c.name);
  }
  const hosts = new Set(upstreams.filter((c) => !('aggregate' in c)).map((c) => c.name));
  const built = upstreams.map((c) => ('aggregate' in c ? aggregateCluster(demoAggregate, c, hosts) : upstreamCluster(demo, c)));
  const idx = clusters.indexOf(demo);
  const rest = (list: Json[]): Json[] => list.filter((c) => c !== demoAggregate);
  return [...rest(clusters.slice(0, idx)), ...built, ...rest(clusters.slice(idx + 1))];
}

function addAccessLog(hcm: Obj, path: string): void {
  hcm.access_log = [
    {
      name: 'envoy.access_loggers.file',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
        path,
        log_format: {
          json_format: {
            time: '%START_TIME%',
            request_id: '%REQ(X-REQUEST-ID)%',
            method: '%REQ(:METHOD)%',
            // The path the upstream got, without any query: the sidecar strips it from requests it passes, but a
            // refused request keeps the client's, and a query may hold a credential (refused, never logged).
            path: '%PATH(NQ:PATH)%',
            protocol: '%PROTOCOL%',
            status: '%RESPONSE_CODE%',
            response_flags: '%RESPONSE_FLAGS%',
            response_code_details: '%RESPONSE_CODE_DETAILS%',
            upstream_cluster: '%UPSTREAM_CLUSTER%',
            upstream_host: '%UPSTREAM_HOST%',
            bytes_received: '%BYTES_RECEIVED%',
            bytes_sent: '%BYTES_SENT%',
            duration_ms: '%DURATION%',
          },
        },
      },
    },
  ];
}

const TLS_SOCKET = 'envoy.transport_sockets.tls';

function nonEmptyPath(path: string, what: string): string {
  if (path === '') throw new Error(`tls.${what} must not be empty`);
  return path;
}

/**
 * The listener's TLS transport socket. TLS 1.2 is the floor (Envoy's own
 * default for downstream is 1.2 too; it is explicit here so it cannot drift).
 * ALPN offers h2 and http/1.1 to match the HCM's codec_type AUTO. The client
 * CA validates every client certificate that is presented; with
 * require_client_certificate a connection without one fails the handshake,
 * so ext_proc's `connection.mtls` is then true for every request.
 */
export function downstreamTlsSocket(tls: ListenerTlsOptions): Obj {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: tls.requireClientCertificate,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        alpn_protocols: ['h2', 'http/1.1'],
        tls_certificates: [
          {
            certificate_chain: { filename: nonEmptyPath(tls.certChainFile, 'certChainFile') },
            private_key: { filename: nonEmptyPath(tls.privateKeyFile, 'privateKeyFile') },
          },
        ],
        validation_context: {
          trusted_ca: { filename: nonEmptyPath(tls.clientCaFile, 'clientCaFile') },
        },
      },
    },
  };
}

function addListenerTls(listener: Obj, hcm: Obj, tls: ListenerTlsOptions): void {
  for (const chain of arr(listener.filter_chains, 'listener.filter_chains')) {
    const c = obj(chain, 'filter chain');
    if (c.transport_socket !== undefined) throw new Error('gateway template: the listener already has a transport_socket');
    c.transport_socket = downstreamTlsSocket(tls);
  }
  // SANITIZE is Envoy's default; it is spelled out where client certificates
  // exist: a client-sent x-forwarded-client-cert is removed before any
  // filter runs, never trusted and never forwarded. The sidecar learns the
  // client certificate only from ext_proc's connection attributes.
  hcm.forward_client_cert_details = 'SANITIZE';
}

function applyCommon(doc: Obj, listenerPort: number, adminPort: number, accessLogPath: string | undefined): Obj {
  checkPort(listenerPort, 'listenerPort');
  checkPort(adminPort, 'adminPort');
  setSocketPort(obj(doc.admin, 'admin'), adminPort, 'admin');
  const listener = listenerOf(doc);
  setSocketPort(listener, listenerPort, 'listener');
  const hcm = hcmOf(listener);
  if (accessLogPath !== undefined) addAccessLog(hcm, accessLogPath);
  return hcm;
}

/** The gateway config: envoy/gateway.yaml with the given ports, socket and upstream clusters. */
export function renderGatewayConfig(opts: GatewayConfigOptions): string {
  const doc = loadGatewayTemplate();
  const hcm = applyCommon(doc, opts.listenerPort, opts.adminPort, opts.accessLogPath);
  if (opts.tls !== undefined) addListenerTls(listenerOf(doc), hcm, opts.tls);

  if (opts.messageTimeoutMs !== undefined) {
    const filters = arr(hcm.http_filters, 'http_filters');
    const extProc = obj(byName(filters, EXT_PROC_FILTER, 'http filter').typed_config, 'ext_proc.typed_config');
    extProc.message_timeout = durationMs(opts.messageTimeoutMs);
  }

  const sockets = typeof opts.sidecarSocket === 'string' ? [opts.sidecarSocket] : [...opts.sidecarSocket];
  if (sockets.length === 0 || sockets.some((s) => s === '')) throw new Error('sidecarSocket must not be empty');
  if (new Set(sockets).size !== sockets.length) throw new Error('sidecarSocket lists a socket twice');
  const clusters = withUpstreams(doc, opts.clusters);
  const sidecar = byName(clusters, SIDECAR_CLUSTER, 'cluster');
  sidecar.load_assignment = {
    cluster_name: SIDECAR_CLUSTER,
    endpoints: [{ lb_endpoints: sockets.map((path) => ({ endpoint: { address: { pipe: { path } } } })) }],
  };
  if (opts.xds !== undefined) addAds(doc, clusters, opts.xds);
  obj(doc.static_resources, 'static_resources').clusters = clusters;
  return YAML.stringify(doc);
}

/**
 * Dynamic clusters over ADS: a static cluster for the control plane (gRPC,
 * so HTTP/2), `dynamic_resources` with one ADS stream and CDS over it (the
 * clusters it serves are EDS clusters whose endpoints come over the same
 * stream), and the node identity the control plane sees. When the control
 * plane is unreachable Envoy keeps the clusters it last accepted and retries
 * the stream with backoff.
 */
function addAds(doc: Obj, clusters: Json[], xds: XdsSourceOptions): void {
  const ads = adsBootstrap(xds);
  clusters.unshift(ads.cluster);
  doc.node = ads.node;
  doc.dynamic_resources = ads.dynamic_resources;
}

/** The bootstrap pieces of an ADS client: the control plane's static cluster, the node, `dynamic_resources`. */
export function adsBootstrap(xds: XdsSourceOptions): { cluster: Obj; node: Obj; dynamic_resources: Obj } {
  if (xds.host === '') throw new Error('xds.host must not be empty');
  checkPort(xds.port, 'xds.port');
  const isStatic = isIP(xds.host) !== 0;
  return {
    cluster: {
      name: XDS_CLUSTER,
      type: isStatic ? 'STATIC' : 'STRICT_DNS',
      ...(isStatic ? {} : { dns_lookup_family: 'V4_PREFERRED' }),
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: XDS_CLUSTER,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: xds.host, port_value: xds.port } } } }] }],
      },
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          explicit_http_config: { http2_protocol_options: {} },
        },
      },
      // The ADS stream is long-lived and mostly idle: TCP keepalive notices a control plane that vanished without a FIN.
      upstream_connection_options: { tcp_keepalive: {} },
      ...(xds.tls === undefined ? {} : { transport_socket: xdsTlsSocket(xds.tls) }),
    },
    node: { id: xds.nodeId ?? 'inference-gateway', cluster: 'inference-gateway' },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
    },
  };
}

/**
 * Envoy's client side of mTLS to the control plane: its own certificate, the CA the control plane's must chain to
 * (and, with serverName, the DNS SAN it must carry), and ALPN h2 — a gRPC server over TLS (Node's HTTP/2) drops a
 * connection that does not negotiate h2.
 */
function xdsTlsSocket(tls: XdsClientTlsOptions): Obj {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      ...(tls.serverName === undefined ? {} : { sni: tls.serverName }),
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        alpn_protocols: ['h2'],
        tls_certificates: [
          {
            certificate_chain: { filename: nonEmptyPath(tls.certChainFile, 'certChainFile') },
            private_key: { filename: nonEmptyPath(tls.privateKeyFile, 'privateKeyFile') },
          },
        ],
        validation_context: {
          trusted_ca: { filename: nonEmptyPath(tls.caFile, 'caFile') },
          ...(tls.serverName === undefined ? {} : { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: tls.serverName } }] }),
        },
      },
    },
  };
}

/**
 * The benchmark's "plain Envoy" baseline: the gateway's listener, HCM settings
 * and local-reply mapping, but without the ext_proc filter (and without the
 * sidecar cluster), routing every request to one cluster.
 */
export function renderPlainConfig(opts: PlainConfigOptions): string {
  const doc = loadGatewayTemplate();
  const hcm = applyCommon(doc, opts.listenerPort, opts.adminPort, opts.accessLogPath);

  hcm.http_filters = arr(hcm.http_filters, 'http_filters').filter((f) => !(isObj(f) && f.name === EXT_PROC_FILTER));
  // Without the sidecar no request carries a fallback ticket: only the catch-all route stays.
  const routes = routesOf(hcm);
  routes.splice(0, routes.length, ...routes.filter((r) => !matchesHeader(r)));
  const action = routeActionOf(hcm);
  delete action.cluster_header;
  action.cluster = opts.cluster.name;

  const clusters = withUpstreams(doc, [opts.cluster]).filter((c) => !(isObj(c) && c.name === SIDECAR_CLUSTER));
  obj(doc.static_resources, 'static_resources').clusters = clusters;
  return YAML.stringify(doc);
}
