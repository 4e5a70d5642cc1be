/**
 * Admin HTTP: /metrics (Prometheus), /healthz (the process is alive),
 * /readyz (it should receive new streams: false while starting and draining).
 * Bind it to loopback or a pod-internal address; it is not for clients.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../telemetry/metrics.ts';

// Not `import … from 'node:http'`: an ES import of node:http reads every export, and reading its WebSocket export
// loads Node's bundled undici, which then stays resident (issue #15; docs/benchmarks.md, "2026-12-06: idle RSS").
// The CommonJS form reads only this.
const { createServer } = process.getBuiltinModule('node:http');

export interface Readiness {
  /** null when ready, else why not. */
  notReadyReason(): string | null;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Takes a snapshot document; answers with an HTTP status and a JSON body. */
export type SnapshotPush = (text: string) => { status: number; body: object };

const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024;

export async function startAdminServer(opts: {
  host: string;
  port: number;
  metrics: Metrics;
  readiness: Readiness;
  snapshotPush?: SnapshotPush | null;
}): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/routing/snapshot' && req.method === 'PUT') {
      const push = opts.snapshotPush ?? null;
      if (push === null) {
        res
          .writeHead(403, { 'content-type': 'application/json' })
          .end('{"status":"rejected","problems":["pushing snapshots needs routing.publicKeys (signed snapshots only)"]}');
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_SNAPSHOT_BYTES) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => {
        const r = push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
      });
      return;
    }
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
