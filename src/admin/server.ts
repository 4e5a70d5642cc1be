/**
 * Admin HTTP: /metrics (Prometheus), /healthz (the process is alive),
 * /readyz (it should receive new streams: false while starting and draining).
 * Bind it to loopback or a pod-internal address; it is not for clients.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../telemetry/metrics.ts';

export interface Readiness {
  /** null when ready, else why not. */
  notReadyReason(): string | null;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(opts: { host: string; port: number; metrics: Metrics; readiness: Readiness }): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics':
        opts.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
        );
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      case '/readyz': {
        const reason = opts.readiness.notReadyReason();
        if (reason === null) res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
        else res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'not_ready', reason }));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not_found"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
