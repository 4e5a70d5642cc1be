/**
 * A private PostgreSQL per test file, like redis.ts does for Redis: `initdb`
 * into a fresh temp folder, `postgres` on a free 127.0.0.1 port (PostgreSQL
 * cannot bind port 0 and report it, so the port is picked up front with a
 * retry when it was taken, see ports.ts), its Unix socket in the same folder,
 * no fsync (a test database), removed at the end.
 *
 * PostgreSQL refuses to run as root: as root, initdb and the server run as
 * the `postgres` system user (Debian's postgresql package creates it) and the
 * folder is handed to that user; as anyone else, as that user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killProcess } from './redis.ts';
import { withFreePort } from './ports.ts';

export interface TestPostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication on loopback). */
  readonly url: string;
  /** A fresh, empty database on this server; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown, then the folder is removed. */
  stop(): Promise<void>;
}

/** The folder of PostgreSQL's server binaries: PG_BIN, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string {
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)');
  return join(root, newest, 'bin');
}

/** uid/gid of the `postgres` user when we are root (PostgreSQL will not run as root); {} otherwise. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as');
  return { uid, gid };
}

function spawnPostgres(
  bin: string,
  data: string,
  socketDir: string,
  port: number,
  as: { uid?: number; gid?: number },
): { proc: ChildProcess; ready: Promise<void> } {
  const args = ['-D', data, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off'];
  const p = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], ...as });
  let out = '';
  const reap = (): void => {
    p.kill('SIGKILL');
  };
  process.once('exit', reap);
  p.once('exit', () => process.off('exit', reap));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`postgres on port ${port} not ready within 20 s:\n${out}`)), 20_000);
    const collect = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('database system is ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    p.stdout?.on('data', collect);
    p.stderr?.on('data', collect);
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`postgres on port ${port} exited (${code}):\n${out}`));
    });
  });
  ready.catch(() => undefined);
  return { proc: p, ready };
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const as = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'igw-pg-'));
  if (as.uid !== undefined) chownSync(dir, as.uid, as.gid ?? as.uid);
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], { encoding: 'utf8', ...as });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}):\n${init.stdout}${init.stderr}`);
  }
  try {
    return await withFreePort(async (port) => {
      const started = spawnPostgres(bin, data, dir, port, as);
      try {
        await started.ready;
      } catch (err) {
        await killProcess(started.proc);
        throw err;
      }
      const proc = started.proc;
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      return {
        port,
        url,
        createDatabase: async (name: string) => {
          const { Client } = (await import('pg')).default;
          const c = new Client({ connectionString: url });
          await c.connect();
          try {
            await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
          } finally {
            await c.end();
          }
          return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
        },
        stop: async () => {
          if (proc.exitCode === null && proc.signalCode === null) {
            await new Promise<void>((resolve) => {
              proc.once('exit', () => resolve());
              proc.kill('SIGINT'); // fast shutdown
            });
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
