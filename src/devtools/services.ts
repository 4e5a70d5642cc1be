/**
 * Private PostgreSQL and Redis servers for development: the local stack
 * (`inference-gateway stack --control-plane`) and the tests start them the
 * same way. Each is a child of this process, bound to 127.0.0.1, and ready
 * when the server itself says so in its output (not when something answers
 * on the port: that could be another server that took it first).
 *
 * PostgreSQL refuses to run as root: as root, initdb and the server run as
 * the `postgres` system user (Debian's postgresql package creates it) and the
 * data folder is handed to that user; as anyone else, as that user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** SIGKILL, resolves once the process is gone. */
export async function killProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

/** Sends `signal` and resolves once the process is gone. */
export async function stopProcess(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
  });
}

/**
 * Spawns a server and resolves `ready` once its output contains `readyText`;
 * rejects with the output when it exits first or takes longer than `timeoutMs`.
 * The server is SIGKILLed if this process exits while it still runs.
 */
function spawnUntilReady(
  what: string,
  cmd: string,
  args: readonly string[],
  readyText: string,
  timeoutMs: number,
  as: { uid?: number; gid?: number } = {},
): { proc: ChildProcess; ready: Promise<void> } {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...as });
  let out = '';
  const reap = (): void => {
    p.kill('SIGKILL');
  };
  process.once('exit', reap);
  p.once('exit', () => process.off('exit', reap));
  const ready = new Promise<void>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    const collect = (d: Buffer): void => {
      if (done) return; // ready: the rest of its output is not kept
      out += d.toString();
      if (out.includes(readyText)) {
        done = true;
        clearTimeout(timer);
        resolve();
      }
    };
    p.stdout?.on('data', collect);
    p.stderr?.on('data', collect);
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what} could not be started: ${err.message}`));
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${out}`));
    });
  });
  ready.catch(() => undefined);
  return { proc: p, ready };
}

/** Whether `redis-server` is on the PATH. */
export function redisServerAvailable(): boolean {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/**
 * Starts redis-server on `port` (it cannot bind port 0: `--port 0` turns TCP
 * off), no persistence. `extraArgs` are more redis-server arguments.
 */
export function spawnRedis(port: number, extraArgs: readonly string[] = []): { proc: ChildProcess; ready: Promise<void> } {
  return spawnUntilReady(
    `redis-server on port ${port}`,
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs, '--loglevel', 'notice'],
    'Ready to accept connections',
    10_000,
  );
}

/** The folder of PostgreSQL's server binaries: PG_BIN, else the newest /usr/lib/postgresql/N/bin; null when it holds no initdb. */
export function findPostgresBinDir(): string | null {
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(join(fromEnv, 'initdb')) ? fromEnv : null;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  return newest === undefined ? null : join(root, newest, 'bin');
}

/** Like findPostgresBinDir, but throws when PostgreSQL is not installed. */
export function postgresBinDir(): string {
  const dir = findPostgresBinDir();
  if (dir === null) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)');
  return dir;
}

/** uid/gid of the `postgres` user when we are root (PostgreSQL will not run as root); {} otherwise. */
export function postgresRunAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as');
  return { uid, gid };
}

/** `initdb` into `data` (trust authentication, superuser `postgres`); throws with its output when it fails. */
export function initPostgres(bin: string, data: string, as: { uid?: number; gid?: number }): void {
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], { encoding: 'utf8', ...as });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal ?? init.error?.message}):\n${init.stdout}${init.stderr}`);
}

/**
 * Starts `postgres` on an initialised `data` folder, on 127.0.0.1:`port` (it cannot bind port 0 and report it),
 * its Unix socket in `socketDir`. `durable: false` turns fsync off (a test database).
 */
export function spawnPostgres(
  bin: string,
  data: string,
  socketDir: string,
  port: number,
  as: { uid?: number; gid?: number },
  opts: { durable?: boolean } = {},
): { proc: ChildProcess; ready: Promise<void> } {
  const args = ['-D', data, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1'];
  if (opts.durable !== true) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off');
  return spawnUntilReady(`postgres on port ${port}`, join(bin, 'postgres'), args, 'database system is ready to accept connections', 20_000, as);
}

/** postgres://postgres@127.0.0.1:PORT/DB (trust authentication on loopback). */
export function postgresUrl(port: number, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/** Creates database `name` on the server at `port` unless it exists; its URL. */
export async function ensureDatabase(port: number, name: string): Promise<string> {
  const { Client } = (await import('pg')).default;
  const c = new Client({ connectionString: postgresUrl(port) });
  await c.connect();
  try {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
  } finally {
    await c.end();
  }
  return postgresUrl(port, name);
}
