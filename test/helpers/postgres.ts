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
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDatabase, initPostgres, killProcess, postgresBinDir, postgresRunAs, postgresUrl, spawnPostgres } from '../../src/devtools/services.ts';
import { withFreePort } from './ports.ts';

export { postgresBinDir };

export interface TestPostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication on loopback). */
  readonly url: string;
  /** A fresh, empty database on this server; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown, then the folder is removed. */
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const as = postgresRunAs();
  const dir = mkdtempSync(join(tmpdir(), 'igw-pg-'));
  if (as.uid !== undefined) chownSync(dir, as.uid, as.gid ?? as.uid);
  const data = join(dir, 'data');
  try {
    initPostgres(bin, data, as);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
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
      const url = postgresUrl(port);
      return {
        port,
        url,
        createDatabase: (name: string) => ensureDatabase(port, name),
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
