/**
 * A private Redis Cluster per test file: `size` redis-server masters
 * (cluster-enabled, no persistence, no replicas) on free 127.0.0.1 ports
 * whose cluster bus ports (port + 10000) are free too, joined with
 * `redis-cli --cluster create`, ready once every node reports
 * cluster_state:ok. `stop()` kills every node and removes the data directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestRedisCluster {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** SIGKILL one node (its slots become unreachable; no replica takes over). */
  killNode(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port p < 55535 whose bus port p + 10000 is free as well, not in `taken`. */
async function freeClusterPort(taken: ReadonlySet<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 35_000);
    if (taken.has(p) || taken.has(p + 10_000) || taken.has(p - 10_000)) continue;
    if ((await canListen(p)) && (await canListen(p + 10_000))) return p;
  }
  throw new Error('no free port pair for a cluster node');
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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

  const kill = (p: ChildProcess): Promise<void> =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  const stop = async (): Promise<void> => {
    process.off('exit', reapAll);
    await Promise.all(procs.map(kill));
    rmSync(dir, { recursive: true, force: true });
  };
  const killNode = async (port: number): Promise<void> => {
    const i = ports.indexOf(port);
    const p = procs[i];
    if (p === undefined) throw new Error(`no cluster node on port ${port}`);
    await kill(p);
  };

  try {
    for (let i = 0; i < size; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port);
      ports.push(port);
      let stderr = '';
      const p = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '2000',
          '--dir', dir,
          '--save', '',
          '--appendonly', 'no',
          '--loglevel', 'warning',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      p.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      p.once('exit', (code) => {
        if (code !== null && code !== 0 && stderr !== '') process.stderr.write(`redis-server ${port} exited (${code}): ${stderr}\n`);
      });
      procs.push(p);
    }
    for (const port of ports) await until(`redis-server on ${port}`, 10_000, async () => (await cli(port, 'PING')).trim() === 'PONG');
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
