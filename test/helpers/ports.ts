/**
 * Ports for the few servers that must be told their port before they start.
 *
 * Everything that can bind port 0 and report what it got does so instead:
 * the sidecar (admin and gRPC TCP ports, reported in its "sidecar ready"
 * line and by startSidecar), the demo upstream, test HTTP servers, and Envoy
 * listeners and admin (src/envoy/process.ts reads them back through
 * --admin-address-path and /listeners). That leaves:
 *   - redis-server: `--port 0` means "no TCP listener", not "any port";
 *   - an Envoy config whose clusters point at Envoy's own admin port (the
 *     k8s pod config proxies its health listener to the admin interface),
 *     so the admin port is part of the config Envoy is started with.
 *
 * For those, a port that was free a moment ago is the best there is, and
 * someone else can still bind it before the server does. Two things make
 * that unlikely and harmless:
 *   - ports come from below the kernel's ephemeral range
 *     (/proc/sys/net/ipv4/ip_local_port_range), which is where every port-0
 *     bind and every outgoing connection of the other tests running in
 *     parallel gets its port; only another explicit pick can collide;
 *   - callers start the server through `withFreePort`, which tries again on
 *     a new port when the start failed because the port was taken.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port the kernel hands out for port 0 / outgoing connections (32768 when unknown). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

const LOW = 10_000;
const HIGH = Math.max(LOW + 2048, ephemeralLow());

/** Whether `port` can be bound on 127.0.0.1 right now. */
export async function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback TCP port below the ephemeral range that was free a moment ago.
 * `span` > 0 asks for ports p and p + span both free (a Redis Cluster node
 * and its bus port); p + span stays below the ephemeral range too.
 */
export async function freePort(opts: { span?: number; avoid?: ReadonlySet<number> } = {}): Promise<number> {
  const span = opts.span ?? 0;
  const top = HIGH - span;
  if (top <= LOW) throw new Error(`no room for a port pair ${span} apart below ${HIGH}`);
  for (let i = 0; i < 500; i++) {
    const p = LOW + Math.floor(Math.random() * (top - LOW));
    if (opts.avoid?.has(p) === true || (span > 0 && (opts.avoid?.has(p + span) === true || opts.avoid?.has(p - span) === true))) continue;
    if (!(await canListen(p))) continue;
    if (span > 0 && !(await canListen(p + span))) continue;
    return p;
  }
  throw new Error(`no free loopback port found between ${LOW} and ${HIGH}`);
}

/**
 * A loopback port nothing listens on, for "connection refused" cases. Picked
 * like `freePort` (below the ephemeral range, so no server binding port 0
 * elsewhere in the suite is handed it while the test relies on it being
 * closed).
 */
export async function unusedPort(): Promise<number> {
  return freePort();
}

/** Whether an error says a port was already taken (EADDRINUSE, or a server's "Address already in use" on exit). */
export function portTaken(err: unknown): boolean {
  const text = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : String(err);
  return /EADDRINUSE|address already in use/i.test(text);
}

/**
 * Starts something on a fresh `freePort()`; when the start fails because the
 * port was taken in the meantime (see `portTaken`), tries again on another
 * port, up to `attempts` times. Other failures are thrown at once.
 */
export async function withFreePort<T>(
  start: (port: number) => Promise<T>,
  opts: { attempts?: number; span?: number; avoid?: ReadonlySet<number> } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 5;
  for (let i = 1; ; i++) {
    const port = await freePort(opts);
    try {
      return await start(port);
    } catch (err) {
      if (i >= attempts || !portTaken(err)) throw err;
    }
  }
}
