/**
 * A tiny local HTTP server for the SDK acceptance tests: each request is
 * answered with the reply set before it (status, content type, body pieces
 * written one by one, so the client sees them as the network delivers them).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly pieces: readonly Buffer[];
}

export interface SdkServer {
  readonly url: string;
  /** The next request's answer. */
  reply(r: Reply): void;
  /** The last request's path and JSON body. */
  readonly last: { path: string; body: unknown } | null;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function startSdkServer(): Promise<SdkServer> {
  let next: Reply | null = null;
  let last: { path: string; body: unknown } | null = null;
  const server = createServer((req, res) => {
    void readBody(req).then((text) => {
      last = { path: req.url ?? '', body: text === '' ? null : (JSON.parse(text) as unknown) };
      const r = next ?? { status: 500, contentType: 'text/plain', pieces: [Buffer.from('no reply set')] };
      next = null;
      res.writeHead(r.status, { 'content-type': r.contentType });
      for (const p of r.pieces) if (p.length > 0) res.write(p);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    reply: (r) => {
      next = r;
    },
    get last() {
      return last;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const json = (status: number, body: unknown): Reply => ({ status, contentType: 'application/json', pieces: [Buffer.from(JSON.stringify(body))] });
export const eventStream = (pieces: readonly Buffer[]): Reply => ({ status: 200, contentType: 'text/event-stream', pieces });
