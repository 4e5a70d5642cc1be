/**
 * A private redis-server per test file: a free 127.0.0.1 port (see ports.ts
 * for why not port 0), no persistence, killed at the end. `kill()` +
 * `start()` restart it on the same port (an outage the clients must survive).
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { killProcess, spawnRedis } from '../../src/devtools/services.ts';
import { withFreePort } from './ports.ts';

export { killProcess, spawnRedis };
import { waitFor } from './wait.ts';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** The server's process id while it runs (to SIGSTOP/SIGCONT it: a stall, not an outage), else null. */
  readonly pid: number | null;
  /** Starts (or restarts, same port) the server; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, resolves once the process is gone. */
  kill(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/** `extraArgs`: more redis-server arguments, kept across restarts (e.g. `--replicaof 127.0.0.1 PORT`). */
export async function startRedis(extraArgs: readonly string[] = []): Promise<TestRedis> {
  // redis-server cannot bind port 0 (`--port 0` turns TCP off): a port picked up front, with a retry when it was taken (see ports.ts).
  return withFreePort(async (port) => {
    let proc: ChildProcess | null = null;

    const start = async (): Promise<void> => {
      if (proc !== null) return;
      const started = spawnRedis(port, extraArgs);
      proc = started.proc;
      try {
        await started.ready;
      } catch (err) {
        proc = null;
        await killProcess(started.proc);
        throw err;
      }
    };

    const kill = async (): Promise<void> => {
      const p = proc;
      if (p === null) return;
      proc = null;
      await killProcess(p);
    };

    await start();
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      get pid() {
        return proc?.pid ?? null;
      },
      start,
      kill,
      stop: kill,
    };
  });
}

/** A plain client for inspecting a test Redis; it reconnects by itself across a kill/restart. */
export async function adminClient(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Whether `replica` is a replica of `primary` with its link up and the initial sync done. */
export async function replicaLinked(primary: TestRedis, replica: TestRedis): Promise<boolean> {
  const client = new Redis(primary.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.info('replication');
    return new RegExp(`^slave\\d+:ip=127\\.0\\.0\\.1,port=${replica.port},state=online`, 'm').test(info);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Whether a write to `primary` now reaches `n` replicas within 100 ms (WAIT). */
export async function replicasAcknowledging(primary: TestRedis, n: number): Promise<boolean> {
  const client = new Redis(primary.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.set('igw:test:replication-probe', String(Date.now()));
    return (await client.wait(n, 100)) >= n;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * A primary and `replicas` replicas (`--replicaof`), each a private
 * redis-server like startRedis; resolves once every replica acknowledges writes.
 * A replica that is killed and started again re-attaches to the primary.
 */
export async function startReplicatedRedis(replicas: number): Promise<{ primary: TestRedis; replicas: TestRedis[]; stop(): Promise<void> }> {
  // Sync replicas at once (the default diskless sync waits 5 s for more replicas to join).
  const primary = await startRedis(['--repl-diskless-sync-delay', '0']);
  const started: TestRedis[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...started, primary].map((r) => r.stop()));
  };
  try {
    // on-empty-db: a replica loads the primary's data from the socket, never writing dump.rdb into the working directory.
    for (let i = 0; i < replicas; i++)
      started.push(await startRedis(['--replicaof', '127.0.0.1', String(primary.port), '--repl-diskless-load', 'on-empty-db']));
    for (const r of started) await waitFor(() => replicaLinked(primary, r), { what: `replica on port ${r.port} online`, timeoutMs: 15_000 });
    // Online is not yet acknowledging (a replica fresh from a diskless load reports its offset a little later).
    await waitFor(() => replicasAcknowledging(primary, replicas), { what: `${replicas} replica(s) acknowledging writes`, timeoutMs: 15_000 });
  } catch (err) {
    await stop();
    throw err;
  }
  return { primary, replicas: started, stop };
}
