/**
 * Harness for the xDS tests: the ADS server (src/control-plane/xds/) on a
 * free port, a real Envoy whose only upstream clusters come from it, and demo
 * model servers as backends. The Envoy here is the xDS mechanics alone: one
 * listener that routes by a client header `x-target-cluster` straight to the
 * named cluster (the gateway routes the same way, with the sidecar setting
 * the header; test/e2e/xds-gateway.test.ts goes through the whole gateway).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { adsBootstrap, type XdsClientTlsOptions } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { startXdsServer, type XdsServer } from '../../src/control-plane/xds/server.ts';
import type { XdsLog } from '../../src/control-plane/xds/types.ts';

export const TARGET_HEADER = 'x-target-cluster';

/** A logger that keeps what it was told (tests look for the NACK warning). */
export function recordingLog(): XdsLog & { lines: Array<{ level: string; msg: string; fields: object }> } {
  const lines: Array<{ level: string; msg: string; fields: object }> = [];
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields });
    };
  return { lines, info: at('info'), warn: at('warn'), debug: at('debug') };
}

/**
 * A bootstrap with one header-routed listener and the ADS client pieces of the gateway's own render (`tls`: ADS over
 * mTLS; `initialFetchTimeout`: how long Envoy waits for its first clusters before opening the listener, 15 s by default).
 */
export function probeEnvoyConfig(xdsPort: number, opts: { tls?: XdsClientTlsOptions; initialFetchTimeout?: string } = {}): string {
  const ads = adsBootstrap({ host: '127.0.0.1', port: xdsPort, nodeId: 'xds-test', ...(opts.tls === undefined ? {} : { tls: opts.tls }) });
  if (opts.initialFetchTimeout !== undefined)
    (ads.dynamic_resources['cds_config'] as Record<string, unknown>)['initial_fetch_timeout'] = opts.initialFetchTimeout;
  return YAML.stringify({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    node: ads.node,
    dynamic_resources: ads.dynamic_resources,
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'probe',
                    codec_type: 'AUTO',
                    route_config: {
                      virtual_hosts: [
                        { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster_header: TARGET_HEADER, timeout: '5s' } }] },
                      ],
                    },
                    http_filters: [
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [ads.cluster],
    },
  });
}

export interface XdsRig {
  readonly xds: XdsServer;
  readonly log: ReturnType<typeof recordingLog>;
  readonly envoy: EnvoyProcess;
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts the ADS server (with `initial` clusters already set, so Envoy's
 * first CDS answer has them) and an Envoy connected to it.
 */
export async function startXdsRig(bin: string, initial: Parameters<XdsServer['update']>[0] = []): Promise<XdsRig> {
  const log = recordingLog();
  const xds = await startXdsServer({ host: '127.0.0.1', port: 0, log });
  xds.update(initial);
  const dir = await mkdtemp(join(tmpdir(), 'xds-test-'));
  let envoy: EnvoyProcess;
  try {
    envoy = await startEnvoy({ bin, workDir: dir, configYaml: probeEnvoyConfig(xds.port) });
  } catch (err) {
    await xds.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${await envoy.listenerPort()}`;
  return {
    xds,
    log,
    envoy,
    url,
    stop: async () => {
      await envoy.stop();
      await xds.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** GET `path` through Envoy to the cluster named by the routing header; the status (0 when the request failed outright). */
export async function hit(url: string, cluster: string, path = '/v1/models'): Promise<number> {
  try {
    const res = await fetch(`${url}${path}`, { headers: { [TARGET_HEADER]: cluster }, signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

interface HostStatus {
  address?: { socket_address?: { address?: string; port_value?: number } };
  health_status?: { eds_health_status?: string; failed_active_health_check?: boolean; failed_outlier_check?: boolean };
  weight?: number;
  priority?: number;
}

/** Envoy's view of a cluster's hosts (admin /clusters), or null when Envoy has no such cluster. */
export async function clusterHosts(
  adminUrl: string,
  name: string,
): Promise<Array<{ port: number; weight: number; priority: number; healthy: boolean }> | null> {
  const res = await fetch(`${adminUrl}/clusters?format=json`);
  const body = (await res.json()) as { cluster_statuses?: Array<{ name: string; host_statuses?: HostStatus[] }> };
  const c = body.cluster_statuses?.find((s) => s.name === name);
  if (c === undefined) return null;
  return (c.host_statuses ?? []).map((h) => ({
    port: h.address?.socket_address?.port_value ?? 0,
    weight: h.weight ?? 1,
    priority: h.priority ?? 0,
    healthy: h.health_status?.failed_active_health_check !== true && h.health_status?.failed_outlier_check !== true,
  }));
}

/** The CDS version Envoy runs and its dynamic clusters with their versions (admin /config_dump). */
export async function cdsState(adminUrl: string): Promise<{ version: string; clusters: Map<string, { version: string; cluster: Record<string, unknown> }> }> {
  const res = await fetch(`${adminUrl}/config_dump?resource=dynamic_active_clusters`);
  const body = (await res.json()) as { configs?: Array<{ version_info?: string; cluster?: Record<string, unknown> & { name?: string } }> };
  const clusters = new Map<string, { version: string; cluster: Record<string, unknown> }>();
  for (const c of body.configs ?? []) {
    if (c.cluster?.name !== undefined) clusters.set(c.cluster.name, { version: c.version_info ?? '', cluster: c.cluster });
  }
  const all = (await (await fetch(`${adminUrl}/config_dump`)).json()) as { configs?: Array<{ '@type'?: string; version_info?: string }> };
  const dump = all.configs?.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump');
  return { version: dump?.version_info ?? '', clusters };
}

/** Envoy's stat value (admin /stats), or undefined when it has no such stat. */
export async function stat(adminUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(`^${name.replaceAll('.', '\\.')}$`)}`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}: `));
  return line === undefined ? undefined : Number(line.slice(name.length + 2));
}
