/**
 * Child processes of the benchmark: the demo upstream, the sidecar and the
 * load generator each run as their own process (so their CPU time can be
 * read separately). Every child is tracked and killed when the benchmark
 * exits, whatever the reason.
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { COMPILE_CACHE_DIR } from '../../bin/compile-cache.js';
import type { FromChild, PhaseResult, PhaseSpec, ToChild } from './protocol.ts';

/** The CLI's launcher, as `inference-gateway` runs it: with Node's compile cache on (bin/compile-cache.js). */
const CLI = fileURLToPath(new URL('../../bin/inference-gateway.js', import.meta.url));
const LOADGEN = fileURLToPath(new URL('../loadgen.ts', import.meta.url));
const FLOOR = fileURLToPath(new URL('../floor-server.ts', import.meta.url));

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Kills every tracked child at once (SIGKILL); for emergencies. */
export function killAllChildren(): void {
  for (const c of live) c.kill('SIGKILL');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface Child {
  pid: number;
  /** Last ~64 KiB of its stdout+stderr. */
  output(): string;
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

function spawnNode(
  args: string[],
  log?: (line: string) => void,
  stdin: 'ignore' | 'pipe' = 'ignore',
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; handle: Child } {
  // process.execPath is the real node binary (no wrapper process), so the
  // pid we read /proc for is the process doing the work.
  const child = spawn(process.execPath, args, { stdio: [stdin, 'pipe', 'pipe'], env });
  if (child.pid === undefined) throw new Error(`could not start ${process.execPath} ${args.join(' ')}`);
  track(child);
  let out = '';
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
      resolve();
    });
  });
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    out = (out + text).slice(-64 * 1024);
    if (log !== undefined) for (const line of text.split('\n')) if (line !== '') log(line);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const pid = child.pid;
  const handle: Child = {
    pid,
    output: () => out + (exitInfo === undefined ? '' : `\n[exited: ${exitInfo}]`),
    exited: () => exitInfo !== undefined,
    stop: async (graceMs = 5000) => {
      if (exitInfo !== undefined) return;
      child.kill('SIGTERM');
      const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut && exitInfo === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  return { child, handle };
}

/** `inference-gateway demo-upstream --port 0 --no-record` as a child process. */
export async function startUpstreamProcess(log?: (line: string) => void): Promise<Child & { port: number; url: string }> {
  const { child, handle } = spawnNode([CLI, 'demo-upstream', '--host', '127.0.0.1', '--port', '0', '--no-record'], log);
  const listening = new Promise<{ port: number; url: string }>((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      for (const line of buf.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const msg = JSON.parse(line) as { url?: unknown; port?: unknown };
          if (typeof msg.url === 'string' && typeof msg.port === 'number') {
            child.stdout?.off('data', onData);
            resolve({ url: msg.url, port: msg.port });
            return;
          }
        } catch {
          // partial line
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', () => reject(new Error(`demo upstream exited before listening:\n${handle.output()}`)));
    setTimeout(() => reject(new Error(`demo upstream did not start within 20 s:\n${handle.output()}`)), 20_000).unref();
  });
  try {
    const { port, url } = await listening;
    return { ...handle, port, url };
  } catch (err) {
    await handle.stop(1000);
    throw err;
  }
}

/**
 * F, the zero-work ext_proc server (bench/floor-server.ts), on `socketPath`;
 * resolves once it is listening. Its stdin is a pipe from us: if the
 * benchmark dies, the pipe closes and F exits.
 */
export async function startFloorProcess(socketPath: string, log?: (line: string) => void): Promise<Child> {
  // The same compile cache as the sidecar's launcher, so F and B compare code for code, not stripper for cache.
  const { child, handle } = spawnNode([FLOOR, socketPath], log, 'pipe', { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR });
  const ready = new Promise<void>((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      if (buf.includes('"ready":true')) {
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', () => reject(new Error(`floor ext_proc server exited before listening:\n${handle.output()}`)));
    setTimeout(() => reject(new Error(`floor ext_proc server did not start within 20 s:\n${handle.output()}`)), 20_000).unref();
  });
  try {
    await ready;
    return handle;
  } catch (err) {
    await handle.stop(1000);
    throw err;
  }
}

/** `inference-gateway serve --config FILE` as a child process; resolves once its admin /readyz is 200. */
/**
 * `nodeArgs`: options for the sidecar's node (e.g. `--max-semi-space-size=4`), before the script; `cli`: the launcher
 * to start it with (another checkout's, to compare commits), this checkout's by default.
 */
export async function startSidecarProcess(
  configFile: string,
  adminPort: number,
  log?: (line: string) => void,
  nodeArgs: readonly string[] = [],
  cli: string = CLI,
): Promise<Child> {
  const { handle } = spawnNode([...nodeArgs, cli, 'serve', '--config', configFile], log);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (handle.exited()) throw new Error(`sidecar exited during start-up:\n${handle.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return handle;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await handle.stop(1000);
  throw new Error(`sidecar not ready within 30 s:\n${handle.output()}`);
}

/** A TCP port that was free a moment ago (for configs that need a fixed port). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface LoadgenRun {
  pid: number;
  result: Promise<PhaseResult>;
  kill(): void;
}

/**
 * Runs one phase in a fresh load-generator process. `onMark` is called
 * synchronously when the generator reports the start/end of its measurement
 * window.
 */
export function runLoadgen(spec: PhaseSpec, onMark: (mark: 'start' | 'end', pid: number) => void): LoadgenRun {
  const child = fork(LOADGEN, [], { execPath: process.execPath, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  if (child.pid === undefined) throw new Error('could not start the load generator');
  track(child);
  const pid = child.pid;
  // Resolves once the generator has reported and exited, so it never overlaps the next phase.
  const result = new Promise<PhaseResult>((resolve, reject) => {
    let outcome: PhaseResult | Error | undefined;
    const limit = setTimeout(
      () => {
        outcome ??= new Error('load generator did not finish in time (killed)');
        child.kill('SIGKILL');
      },
      spec.warmupMs + spec.durationMs + spec.timeoutMs + 30_000,
    );
    child.on('message', (msg: FromChild) => {
      if (msg.type === 'mark') onMark(msg.mark, pid);
      else if (msg.type === 'result') outcome ??= msg.result;
      else outcome ??= new Error(`load generator failed: ${msg.message}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(limit);
      if (outcome === undefined) reject(new Error(`load generator exited without a result (${signal ?? `code ${String(code)}`})`));
      else if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    });
  });
  const msg: ToChild = { type: 'run', spec };
  child.send(msg);
  return { pid, result, kill: () => child.kill('SIGKILL') };
}
