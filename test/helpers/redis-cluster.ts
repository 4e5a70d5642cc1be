/**
 * A private Redis Cluster per test file: `size` redis-server masters
 * (cluster-enabled, no persistence, no replicas) on free 127.0.0.1 ports
 * whose cluster bus ports (port + 10000) are free too (ports.ts), each
 * ready by its own output, joined with
 * `redis-cli --cluster create`, ready once every node reports
 * cluster_state:ok. `stop()` kills every node and removes the data directory.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withFreePort } from './ports.ts';
import { killProcess, spawnRedis } from './redis.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

export interface TestRedisCluster {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** SIGKILL one node (its slots become unreachable; no replica takes over). */
  killNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/** `check` until it holds; a failing redis-cli (node not up yet) only means "not yet". */
async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  await waitFor(() => check().catch(() => false), { what, timeoutMs, intervalMs: 50 });
}

export async function startRedisCluster(size = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'igw-redis-cluster-'));
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  const taken = new Set<number>();
  const reapAll = (): void => {
    for (const p of procs) p.kill('SIGKILL');
  };
  process.once('exit', reapAll);

  const stop = async (): Promise<void> => {
    process.off('exit', reapAll);
    await Promise.all(procs.map(killProcess));
    rmSync(dir, { recursive: true, force: true });
  };
  const killNode = async (port: number): Promise<void> => {
    const i = ports.indexOf(port);
    const p = procs[i];
    if (p === undefined) throw new Error(`no cluster node on port ${port}`);
    await killProcess(p);
  };

  try {
    for (let i = 0; i < size; i++) {
      // A port and its bus port (+10000), picked up front (redis-server cannot bind 0), retried when taken (see ports.ts).
      const port = await withFreePort(
        async (p) => {
          const node = spawnRedis(p, [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${p}.conf`),
            '--cluster-node-timeout',
            '2000',
            '--dir',
            dir,
          ]);
          procs.push(node.proc);
          try {
            await node.ready;
          } catch (err) {
            procs.splice(procs.indexOf(node.proc), 1);
            await killProcess(node.proc);
            throw err;
          }
          return p;
        },
        { span: 10_000, avoid: taken },
      );
      taken.add(port);
      ports.push(port);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const port of ports) {
      await until(`cluster_state:ok on ${port}`, 15_000, async () => {
        const info = await cli(port, 'CLUSTER', 'INFO');
        return info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') && info.includes(`cluster_known_nodes:${size}`);
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), killNode, stop };
}
