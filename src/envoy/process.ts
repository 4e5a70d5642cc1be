// Runs real Envoy processes: start with a rendered config, wait for readiness,
// stop reliably; and `--mode validate` for configs.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEnvoy } from './binary.ts';

export interface StartEnvoyOptions {
  /** Full bootstrap config (YAML), e.g. from renderGatewayConfig(). */
  configYaml: string;
  /** Directory for the config file and admin-address file (created if missing). */
  workDir: string;
  /** Receives Envoy's log lines (stderr/stdout). Default: collected only. */
  log?: (line: string) => void;
  /** Worker threads (--concurrency). Default 1. */
  concurrency?: number;
  /** How often file access logs are written out (--file-flush-interval-msec; Envoy's default is 10 s). */
  fileFlushIntervalMs?: number;
  /** Envoy --log-level. Default "warn". */
  logLevel?: string;
  /** Envoy executable. Default: findEnvoy(). */
  bin?: string;
  /** How long to wait for /ready to say LIVE. Default 30s. */
  readyTimeoutMs?: number;
}

export interface EnvoyProcess {
  pid: number;
  /** Admin interface, e.g. http://127.0.0.1:9901 (actual port, also when 0 was configured). */
  adminUrl: string;
  adminPort: number;
  configPath: string;
  /** Resolves when admin /ready answers LIVE; rejects if Envoy exits first or on timeout. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** The bound port of a listener (by name; default the gateway listener "gateway"). */
  listenerPort(name?: string): Promise<number>;
  /** Envoy's collected log output (last ~256 KiB). */
  output(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5s). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const MAX_OUTPUT = 256 * 1024;

// Every Envoy we start, so none outlives this process (tests must not leak).
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** Starts Envoy with `configYaml` and resolves once its admin /ready says LIVE. */
export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyProcess> {
  const bin = opts.bin ?? (await findEnvoy());
  await mkdir(opts.workDir, { recursive: true });
  const configPath = join(opts.workDir, 'envoy.yaml');
  const adminAddressPath = join(opts.workDir, 'envoy-admin-address.txt');
  await writeFile(configPath, opts.configYaml);
  await rm(adminAddressPath, { force: true });

  const args = [
    '-c',
    configPath,
    '--concurrency',
    String(opts.concurrency ?? 1),
    '--log-level',
    opts.logLevel ?? 'warn',
    // No shared-memory hot-restart region: any number of Envoys can run at
    // once without base-id clashes.
    '--disable-hot-restart',
    '--admin-address-path',
    adminAddressPath,
    ...(opts.fileFlushIntervalMs === undefined ? [] : ['--file-flush-interval-msec', String(opts.fileFlushIntervalMs)]),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`failed to start ${bin}: ${err.message}`);
  }
  const pid = child.pid;
  trackChild(child);

  let output = '';
  let partial = '';
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output += text;
    if (output.length > MAX_OUTPUT) output = output.slice(-MAX_OUTPUT);
    if (opts.log !== undefined) {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line !== '') opts.log(line);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  let exitInfo: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
      resolve();
    });
  });
  child.once('error', (err) => {
    output += `\n[spawn error] ${err.message}\n`;
  });

  let adminUrl = '';
  let adminPort = 0;

  const describeFailure = (what: string): Error => new Error(`${what}\n--- envoy output (${configPath}) ---\n${output.slice(-8000)}`);

  const waitReady = async (timeoutMs = opts.readyTimeoutMs ?? 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exitInfo !== undefined) throw describeFailure(`envoy exited (${exitInfo}) before becoming ready`);
      if (adminUrl === '') {
        const addr = (await readFile(adminAddressPath, 'utf8').catch(() => '')).trim();
        if (addr !== '') {
          adminUrl = `http://${addr}`;
          adminPort = Number(addr.slice(addr.lastIndexOf(':') + 1));
        }
      }
      if (adminUrl !== '') {
        try {
          const r = await httpGet(`${adminUrl}/ready`, 1000);
          if (r.status === 200 && r.body.trim() === 'LIVE') return;
        } catch {
          // not up yet
        }
      }
      await sleep(50);
    }
    throw describeFailure(`envoy not ready after ${timeoutMs} ms`);
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo !== undefined) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exitedPromise.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut && exitInfo === undefined) {
        child.kill('SIGKILL');
        await exitedPromise;
      }
    })();
    return stopping;
  };

  const listenerPort = async (name = 'gateway'): Promise<number> => {
    if (adminUrl === '') await waitReady();
    const r = await httpGet(`${adminUrl}/listeners?format=json`, 5000);
    const parsed = JSON.parse(r.body) as {
      listener_statuses?: Array<{ name?: string; local_address?: { socket_address?: { port_value?: number } } }>;
    };
    const found = parsed.listener_statuses?.find((l) => l.name === name);
    const port = found?.local_address?.socket_address?.port_value;
    if (port === undefined) throw new Error(`envoy has no listener named "${name}"`);
    return port;
  };

  const proc: EnvoyProcess = {
    pid,
    get adminUrl() {
      return adminUrl;
    },
    get adminPort() {
      return adminPort;
    },
    configPath,
    waitReady,
    listenerPort,
    output: () => output,
    exited: () => exitInfo !== undefined,
    stop,
  };

  try {
    await waitReady();
  } catch (err) {
    await stop(1000);
    throw err;
  }
  return proc;
}

export interface ValidateResult {
  ok: boolean;
  /** Envoy's output (its error message when !ok). */
  output: string;
}

/** Runs `envoy --mode validate` on a config given as YAML text or as a file path. */
export async function validateEnvoyConfig(opts: { configYaml?: string; configPath?: string; bin?: string }): Promise<ValidateResult> {
  const bin = opts.bin ?? (await findEnvoy());
  let dir: string | undefined;
  let path = opts.configPath;
  if (path === undefined) {
    if (opts.configYaml === undefined) throw new Error('validateEnvoyConfig needs configYaml or configPath');
    dir = await mkdtemp(join(tmpdir(), 'envoy-validate-'));
    path = join(dir, 'envoy.yaml');
    await writeFile(path, opts.configYaml);
  }
  try {
    const child = spawn(bin, ['--mode', 'validate', '-c', path, '--log-level', 'warn', '--disable-hot-restart'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    return { ok: code === 0, output: output.trim() };
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}
