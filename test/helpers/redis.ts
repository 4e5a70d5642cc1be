/**
 * A private redis-server per test file: a free 127.0.0.1 port, no
 * persistence, killed at the end. `kill()` + `start()` restart it on the
 * same port (an outage the clients must survive).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { connect } from 'node:net';
import { freePort } from './ports.ts';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Starts (or restarts, same port) the server; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, resolves once the process is gone. */
  kill(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/** Resolves once a PING gets PONG. */
async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      const done = (v: boolean): void => {
        sock.destroy();
        resolve(v);
      };
      sock.once('error', () => done(false));
      sock.setTimeout(500, () => done(false));
      sock.on('connect', () => sock.write('PING\r\n'));
      sock.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  let stderr = '';

  const start = async (): Promise<void> => {
    if (proc !== null) return;
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    p.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc = p;
    // Never leave a server behind, even when the test process dies early.
    const reap = (): void => {
      p.kill('SIGKILL');
    };
    process.once('exit', reap);
    p.once('exit', () => process.off('exit', reap));
    const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${stderr}`))));
    exited.catch(() => undefined);
    await Promise.race([waitForPing(port, 10_000), exited]);
  };

  const kill = async (): Promise<void> => {
    const p = proc;
    if (p === null) return;
    proc = null;
    if (p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };

  await start();
  return { port, url: `redis://127.0.0.1:${port}`, start, kill, stop: kill };
}

/** A plain client for inspecting a test Redis; it reconnects by itself across a kill/restart. */
export async function adminClient(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
