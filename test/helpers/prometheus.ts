/**
 * A private Prometheus per test file (Debian's `prometheus` package: the
 * `prometheus` server and `promtool`): its own config, a temp dir for its
 * storage, a free 127.0.0.1 port (Prometheus reports no port for `:0`; see
 * ports.ts), killed at the end. Never the system's instance or port 9090.
 *
 * `.ci/run` installs the package; with CI=true a missing binary fails the
 * tests. Elsewhere they are skipped with `PROMETHEUS_MISSING` as the reason.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { withFreePort } from './ports.ts';
import { waitFor } from './wait.ts';
import { killProcess } from './redis.ts';

function onPath(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/**
 * The reason to skip the Prometheus tests (a string), or false when both
 * binaries are there. With CI=true a missing binary throws: CI never skips.
 */
export function prometheusMissing(): string | false {
  if (onPath('prometheus') && onPath('promtool')) return false;
  const why = 'prometheus/promtool not on PATH (apt-get install prometheus; .ci/run installs it)';
  if (process.env['CI'] === 'true') throw new Error(`${why}: with CI=true the Prometheus tests must run`);
  return why;
}

export interface TestPrometheus {
  readonly url: string;
  readonly output: () => string;
  /** GET /api/v1/<path>; throws unless Prometheus answers status "success". */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** Scrape job name → `host:port` targets (plain HTTP, /metrics). */
  readonly jobs: Record<string, readonly string[]>;
  readonly ruleFiles?: readonly string[];
  /** Scrape and rule evaluation interval (default 1s). */
  readonly intervalS?: number;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'igw-prometheus-'));
  const interval = `${opts.intervalS ?? 1}s`;
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    YAML.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: Object.entries(opts.jobs).map(([job, targets]) => ({ job_name: job, static_configs: [{ targets }] })),
    }),
  );
  return withFreePort(async (port) => {
    let out = '';
    const proc: ChildProcess = spawn(
      'prometheus',
      [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const reap = (): void => {
      proc.kill('SIGKILL');
    };
    process.once('exit', reap);
    proc.once('exit', () => process.off('exit', reap));
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const stop = async (): Promise<void> => {
      await killProcess(proc);
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`prometheus on port ${port} exited (${proc.exitCode}):\n${out}`);
          try {
            return (await fetch(`${url}/-/ready`)).status === 200;
          } catch {
            return false;
          }
        },
        { what: () => `prometheus ready on ${url}:\n${out}`, timeoutMs: 30_000, intervalMs: 50 },
      );
    } catch (err) {
      await stop();
      throw err;
    }
    return {
      url,
      output: () => out,
      api: async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
        const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
        const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
        if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.errorType ?? ''} ${body.error ?? ''}`);
        return body.data;
      },
      stop,
    };
  });
}
