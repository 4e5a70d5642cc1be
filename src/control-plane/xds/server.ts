/**
 * The control plane's xDS server: Envoy's Aggregated Discovery Service
 * (state of the world) over @grpc/grpc-js, serving CDS (EDS clusters, and
 * STRICT_DNS clusters for backends known by name) and EDS (the EDS clusters'
 * endpoints) on one stream per Envoy.
 *
 * Protocol, per stream and resource type:
 * - every response carries the type's current version_info and a fresh nonce;
 * - a request whose response_nonce is not the last nonce sent for that type
 *   is stale (Envoy had not seen the newer response yet) and is ignored: the
 *   request answering the newer response follows;
 * - a request with error_detail is a NACK: Envoy keeps its previous version
 *   (named in version_info). It is logged and counted; the rejected state is
 *   not sent again, the next update() sends a new version;
 * - otherwise it is an ACK of the response it names, or a first subscription;
 * - a response is sent when Envoy has not been sent the current version yet,
 *   or when it asks for a different set of resources (EDS: a cluster added).
 * update() bumps the version of each type whose resources changed and pushes
 * it to every connected Envoy.
 *
 * Until the first update() the server answers nothing: a control plane that
 * has just (re)started and not yet loaded its desired state must not tell a
 * connected Envoy that there are no clusters. Envoy keeps what it has and
 * gets the real state with the first update().
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isIP } from 'node:net';
import {
  assignmentResource,
  clusterResource,
  CLUSTER_TYPE_URL,
  discoveryOf,
  ENDPOINT_TYPE_URL,
  validateClusters,
  XDS_PROTOS_DIR,
  type AnyMessage,
} from './resources.ts';
import type { XdsCluster, XdsLog } from './types.ts';

export { CLUSTER_TYPE_URL, ENDPOINT_TYPE_URL } from './resources.ts';

const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

interface DiscoveryRequest {
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

const packageDefinition = protoLoader.loadSync(['envoy/service/discovery/v3/ads.proto'], {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [XDS_PROTOS_DIR],
});
const adsService = packageDefinition[ADS_SERVICE] as unknown as grpc.ServiceDefinition;

/** One resource type's current state: a version and its resources by name. */
interface TypeState {
  version: string;
  resources: Map<string, AnyMessage>;
}

interface Subscription {
  /** The names Envoy asked for; empty means all (wildcard). */
  names: readonly string[];
  /** What was last sent: version, names and nonce. */
  sentVersion: string | undefined;
  sentNames: readonly string[] | undefined;
  nonce: string | undefined;
  /** The version Envoy says it runs (its last request's version_info). */
  appliedVersion: string;
}

interface Stream {
  readonly id: number;
  readonly peer: string;
  readonly call: AdsCall;
  readonly subs: Map<string, Subscription>;
}

export interface XdsNack {
  typeUrl: string;
  /** The version Envoy rejected. */
  rejectedVersion: string | undefined;
  /** The version Envoy keeps running. */
  keptVersion: string;
  message: string;
  at: Date;
}

export interface XdsStatus {
  /** Connected Envoys (ADS streams). */
  streams: number;
  versions: { clusters: string; endpoints: string };
  acks: number;
  nacks: number;
  lastNack: XdsNack | null;
  /** Per stream and type, the version that Envoy reports running (its last ACK, or NACK's kept version). */
  applied: Array<{ peer: string; typeUrl: string; version: string }>;
}

export interface XdsServerOptions {
  host: string;
  /** 0: any free port (the bound one is XdsServer.port). */
  port: number;
  log: XdsLog;
}

export interface XdsServer {
  readonly port: number;
  /**
   * Replaces the clusters Envoy should have. Throws a TypeError naming the
   * field when one is invalid (nothing changes then); otherwise pushes the new
   * version of every changed type to every connected Envoy.
   */
  update(backends: readonly XdsCluster[]): void;
  status(): XdsStatus;
  /** Stops at once: every ADS stream is cancelled. Envoy keeps the last state it accepted. */
  close(): Promise<void>;
}

const sameNames = (a: readonly string[] | undefined, b: readonly string[]): boolean =>
  a !== undefined && a.length === b.length && [...a].sort().every((n, i) => n === [...b].sort()[i]);

function sameResources(a: Map<string, AnyMessage>, b: Map<string, AnyMessage>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, r] of a) {
    const other = b.get(name);
    if (other === undefined || !other.value.equals(r.value)) return false;
  }
  return true;
}

export async function startXdsServer(opts: XdsServerOptions): Promise<XdsServer> {
  const { log } = opts;
  const server = new grpc.Server();
  const streams = new Set<Stream>();
  let versionSeq = 0;
  let nonceSeq = 0;
  let streamSeq = 0;
  let acks = 0;
  let nacks = 0;
  let lastNack: XdsNack | null = null;
  /** Whether update() has been called: before that there is no state to serve. */
  let loaded = false;
  const state = new Map<string, TypeState>([
    [CLUSTER_TYPE_URL, { version: '0', resources: new Map() }],
    [ENDPOINT_TYPE_URL, { version: '0', resources: new Map() }],
  ]);

  const send = (s: Stream, typeUrl: string, sub: Subscription): void => {
    const current = state.get(typeUrl);
    if (current === undefined) return;
    const resources =
      sub.names.length === 0
        ? [...current.resources.values()]
        : sub.names.flatMap((n) => {
            const r = current.resources.get(n);
            return r === undefined ? [] : [r];
          });
    const nonce = String(++nonceSeq);
    sub.sentVersion = current.version;
    sub.sentNames = [...sub.names];
    sub.nonce = nonce;
    log.debug({ stream: s.id, typeUrl, version: current.version, nonce, resources: resources.length }, 'xds response');
    s.call.write({ version_info: current.version, resources, type_url: typeUrl, nonce });
  };

  const onRequest = (s: Stream, req: DiscoveryRequest): void => {
    const typeUrl = req.type_url ?? '';
    if (!state.has(typeUrl)) {
      log.warn({ stream: s.id, typeUrl }, 'xds request for a type this server does not serve; ignored');
      return;
    }
    const nonce = req.response_nonce ?? '';
    let sub = s.subs.get(typeUrl);
    if (sub !== undefined && nonce !== '' && nonce !== sub.nonce) {
      log.debug({ stream: s.id, typeUrl, nonce, latest: sub.nonce }, 'xds stale request ignored');
      return;
    }
    if (sub === undefined) {
      sub = { names: [], sentVersion: undefined, sentNames: undefined, nonce: undefined, appliedVersion: '' };
      s.subs.set(typeUrl, sub);
    }
    sub.appliedVersion = req.version_info ?? '';
    if (req.error_detail !== undefined && req.error_detail !== null) {
      nacks++;
      lastNack = {
        typeUrl,
        rejectedVersion: sub.sentVersion,
        keptVersion: sub.appliedVersion,
        message: req.error_detail.message ?? '',
        at: new Date(),
      };
      log.warn(
        { stream: s.id, peer: s.peer, typeUrl, rejected: sub.sentVersion, kept: sub.appliedVersion, error: req.error_detail.message },
        'xds NACK: Envoy rejected the configuration and keeps its previous version',
      );
    } else if (nonce !== '') {
      acks++;
      log.debug({ stream: s.id, typeUrl, version: sub.appliedVersion }, 'xds ACK');
    }
    sub.names = [...(req.resource_names ?? [])];
    const current = state.get(typeUrl);
    if (loaded && current !== undefined && (sub.sentVersion !== current.version || !sameNames(sub.sentNames, sub.names))) send(s, typeUrl, sub);
  };

  server.addService(adsService, {
    StreamAggregatedResources: (call: AdsCall) => {
      const s: Stream = { id: ++streamSeq, peer: call.getPeer(), call, subs: new Map() };
      streams.add(s);
      log.info({ stream: s.id, peer: s.peer }, 'xds stream opened');
      const done = (why: string): void => {
        if (!streams.delete(s)) return;
        log.info({ stream: s.id, peer: s.peer, why }, 'xds stream closed');
      };
      call.on('data', (req: DiscoveryRequest) => {
        try {
          onRequest(s, req);
        } catch (err) {
          log.warn({ stream: s.id, err: String(err) }, 'xds request failed; stream ended');
          call.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      });
      call.on('end', () => {
        done('end');
        call.end();
      });
      call.on('cancelled', () => done('cancelled'));
      call.on('error', (err) => done(`error: ${err.message}`));
      call.on('close', () => done('close'));
    },
  });

  const bindHost = isIP(opts.host) === 6 ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${bindHost}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)));
  });
  log.info({ host: opts.host, port }, 'xds server listening');

  const update = (backends: readonly XdsCluster[]): void => {
    validateClusters(backends);
    const first = !loaded;
    loaded = true;
    const next = new Map<string, Map<string, AnyMessage>>([
      [CLUSTER_TYPE_URL, new Map(backends.map((c) => [c.name, clusterResource(c)]))],
      // A STRICT_DNS cluster carries its endpoints: only EDS clusters have an EDS resource.
      [ENDPOINT_TYPE_URL, new Map(backends.filter((c) => discoveryOf(c) === 'EDS').map((c) => [c.name, assignmentResource(c)]))],
    ]);
    // Clusters first: a new cluster makes Envoy ask for its endpoints.
    for (const typeUrl of [CLUSTER_TYPE_URL, ENDPOINT_TYPE_URL]) {
      const current = state.get(typeUrl);
      const resources = next.get(typeUrl);
      if (current === undefined || resources === undefined) continue;
      if (sameResources(current.resources, resources)) {
        if (!first) continue;
      } else {
        current.resources = resources;
        current.version = String(++versionSeq);
      }
      log.info({ typeUrl, version: current.version, resources: resources.size, streams: streams.size }, 'xds push');
      for (const s of streams) {
        const sub = s.subs.get(typeUrl);
        if (sub !== undefined) send(s, typeUrl, sub);
      }
    }
  };

  return {
    port,
    update,
    status: () => ({
      streams: streams.size,
      versions: { clusters: state.get(CLUSTER_TYPE_URL)?.version ?? '0', endpoints: state.get(ENDPOINT_TYPE_URL)?.version ?? '0' },
      acks,
      nacks,
      lastNack,
      applied: [...streams].flatMap((s) => [...s.subs].map(([typeUrl, sub]) => ({ peer: s.peer, typeUrl, version: sub.appliedVersion }))),
    }),
    close: async () => {
      server.forceShutdown();
      streams.clear();
    },
  };
}
