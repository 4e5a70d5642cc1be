// Response plumbing shared by the demo model server's OpenAI and Anthropic
// handlers (node:http only): JSON replies, pauses that notice a closed
// connection, and an SSE writer that honours the stream scripting headers.

import type { IncomingMessage, ServerResponse } from 'node:http';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

/** A 4xx a handler throws while reading the request; `param` names the offending field. */
export class RequestError extends Error {
  readonly status: number;
  readonly param: string | null;
  readonly code: string | null;
  constructor(status: number, message: string, param: string | null = null, code: string | null = null) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

export function sendJson(res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** decodeURIComponent, or the input unchanged when it is not valid percent-encoding. */
export function decodePathSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** An integer header clamped into [min, max]; undefined when absent or not a number. */
export function headerInt(req: IncomingMessage, name: string, min: number, max: number): number | undefined {
  const v = req.headers[name];
  if (typeof v !== 'string') return undefined;
  const n = Number.parseInt(v, 10);
  if (Number.isNaN(n)) return undefined;
  return n < min ? min : n > max ? max : n;
}

function isClosed(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed;
}

/** Wait `ms`; resolves false (early) if the connection closes meanwhile. */
export function pause(res: ServerResponse, ms: number): Promise<boolean> {
  if (isClosed(res)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(!isClosed(res));
    }, ms);
    res.once('close', onClose);
  });
}

/** Wait for 'drain'; resolves false if the connection closes first. */
function drained(res: ServerResponse): Promise<boolean> {
  if (isClosed(res)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => (): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/**
 * Simulate the upstream dying mid-stream: flush what was already written, then
 * close the TCP connection without finishing the chunked body (the client sees
 * a premature end of the response). res.destroy() alone would drop the bytes
 * still corked in the socket.
 */
function dropConnection(res: ServerResponse): void {
  const socket = res.socket;
  if (socket === null) {
    res.destroy();
    return;
  }
  socket.destroySoon();
}

export interface StreamPacing {
  /** Pause between events (x-demo-chunk-delay-ms). */
  chunkDelayMs: number;
  /** Drop the connection after this many events (x-demo-drop-after). */
  dropAfter: number | undefined;
  /** End the response cleanly after this many events, without the rest (x-demo-end-after): a stream missing its end. */
  endAfter?: number | undefined;
}

/** Write SSE events one `res.write` each, honouring chunk delay and drop-after. */
export async function writeStream(res: ServerResponse, events: string[], pacing: StreamPacing, headers?: Record<string, string>): Promise<void> {
  res.writeHead(200, { ...headers, ...SSE_HEADERS });
  const { chunkDelayMs, dropAfter } = pacing;
  if (dropAfter === 0) res.flushHeaders();
  for (let i = 0; i < events.length; i++) {
    if (dropAfter !== undefined && i >= dropAfter) {
      dropConnection(res);
      return;
    }
    if (pacing.endAfter !== undefined && i >= pacing.endAfter) break;
    if (i > 0 && chunkDelayMs > 0 && !(await pause(res, chunkDelayMs))) return;
    if (isClosed(res)) return;
    if (!res.write(events[i]) && !(await drained(res))) return;
  }
  res.end();
}
