/**
 * Where a single-node redis:// or rediss:// URL points, as RespClient needs
 * it: host, port, TLS, the AUTH credentials and the database to SELECT —
 * read the way ioredis reads the same URL (user and password percent-decoded,
 * AUTH with a user only when one is given, the path is the database number).
 *
 * Only the plain form is taken: `redis[s]://[[user]:password@]host[:port][/db]`.
 * ioredis also reads options from the query string (`?db=`, `?password=`,
 * `?family=`, …); parseRespEndpoint returns null for such a URL so the
 * caller keeps using ioredis for it and no setting is silently dropped.
 */
export interface RespEndpoint {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** AUTH <username> <password> when set, else AUTH <password> when a password is set. */
  readonly username: string | null;
  readonly password: string | null;
  /** SELECT <db> after connecting when not 0. */
  readonly db: number;
}

const DEFAULT_PORT = 6379;

export function parseRespEndpoint(url: string): RespEndpoint | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return null;
  if (u.search !== '' || u.hash !== '' || u.hostname === '') return null;
  let db = 0;
  if (u.pathname !== '' && u.pathname !== '/') {
    const path = u.pathname.slice(1);
    if (!/^\d+$/.test(path)) return null;
    db = Number(path);
  }
  let username: string | null;
  let password: string | null;
  try {
    username = u.username === '' ? null : decodeURIComponent(u.username);
    password = u.password === '' ? null : decodeURIComponent(u.password);
  } catch {
    // A malformed percent-escape (`%zz`): left to ioredis, which reports it its own way, rather than guessed at.
    return null;
  }
  // A user without a password: ioredis sends `AUTH <user> ""`, an odd case left to it.
  if (username !== null && password === null) return null;
  return {
    // WHATWG URL keeps the brackets of an IPv6 address; net.connect wants it bare.
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? DEFAULT_PORT : Number(u.port),
    tls: u.protocol === 'rediss:',
    username,
    password,
    db,
  };
}
