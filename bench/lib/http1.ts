/**
 * A minimal HTTP/1.1 client connection for the load generator: one keep-alive
 * TCP socket, one request at a time, pre-serialised request bytes, and a small
 * response parser (Content-Length, chunked, or read-until-close bodies).
 *
 * It exists because node:http's client costs several times more CPU per
 * request than the parsing below, and the load generator shares the machine's
 * cores with the processes being measured.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';

export interface Http1Response {
  status: number;
  body: Buffer;
  /** With `trackArrivals`: performance.now() of each read of this response's bytes (the first holds the head). */
  arrivals?: number[];
}

export interface Http1Options {
  /** Timestamp every read while a response is in flight (for inter-chunk gaps). */
  trackArrivals?: boolean;
  /** Called on every read while a response is in flight (e.g. to see a stream's head arrive). */
  onData?: () => void;
}

export type ResponseCallback = (err: Error | null, res: Http1Response | null) => void;

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;

export class Http1Connection {
  readonly #socket: Socket;
  #connected = false;
  #closed = false;
  #buf: Buffer | null = null;
  #state: State = 'head';
  #remaining = 0;
  #status = 0;
  #closeAfter = false;
  #parts: Buffer[] = [];
  #pending: ResponseCallback | null = null;
  #onConnect: Array<(err: Error | null) => void> = [];
  #closeReason: Error | null = null;
  readonly #opts: Http1Options;
  #arrivals: number[] = [];

  constructor(host: string, port: number, idleTimeoutMs: number, opts: Http1Options = {}) {
    this.#opts = opts;
    this.#socket = connect({ host, port, noDelay: true });
    this.#socket.setTimeout(idleTimeoutMs);
    this.#socket.once('connect', () => {
      this.#connected = true;
      for (const cb of this.#onConnect.splice(0)) cb(null);
    });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('timeout', () => {
      // Idle keep-alive sockets may sit unused; only a request in flight times out.
      if (this.#pending !== null) this.#fail(new Error('timeout'));
    });
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get busy(): boolean {
    return this.#pending !== null;
  }

  /** Calls back once connected (or failed to). */
  whenConnected(cb: (err: Error | null) => void): void {
    if (this.#connected) cb(null);
    else if (this.#closed) cb(this.#closeReason ?? new Error('connection closed'));
    else this.#onConnect.push(cb);
  }

  /** Sends one request; `cb` gets the whole response (or the error that ended the connection). */
  send(request: Buffer, cb: ResponseCallback): void {
    if (this.#pending !== null) throw new Error('Http1Connection: request already in flight');
    if (this.#closed) {
      cb(this.#closeReason ?? new Error('connection closed'), null);
      return;
    }
    this.#pending = cb;
    this.#socket.write(request);
  }

  destroy(): void {
    this.#fail(new Error('destroyed'));
  }

  #fail(err: Error): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#closeReason = err;
      this.#socket.destroy();
    }
    // A body delimited by the connection's end is complete when it closes.
    if (this.#state === 'until-close' && this.#pending !== null && err.message === 'connection closed') {
      this.#finish();
      return;
    }
    for (const cb of this.#onConnect.splice(0)) cb(err);
    const cb = this.#pending;
    this.#pending = null;
    if (cb !== null) cb(err, null);
  }

  #onData(chunk: Buffer): void {
    if (this.#pending !== null) {
      if (this.#opts.trackArrivals === true) this.#arrivals.push(performance.now());
      this.#opts.onData?.();
    }
    this.#buf = this.#buf === null || this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    try {
      this.#parse();
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #parse(): void {
    for (;;) {
      const buf = this.#buf;
      if (buf === null || buf.length === 0) {
        this.#buf = null;
        return;
      }
      if (this.#pending === null) throw new Error('protocol error: bytes received with no request in flight');
      switch (this.#state) {
        case 'head': {
          const end = buf.indexOf(HEAD_END);
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw new Error('protocol error: response head too large');
            return;
          }
          const emptyBody = this.#parseHead(buf.toString('latin1', 0, end));
          this.#buf = buf.subarray(end + HEAD_END.length);
          if (emptyBody) this.#finish();
          break;
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.#remaining, buf.length);
          this.#parts.push(buf.subarray(0, take));
          this.#remaining -= take;
          this.#buf = buf.subarray(take);
          if (this.#remaining === 0) {
            if (this.#state === 'length') this.#finish();
            else this.#state = 'chunk-crlf';
          }
          break;
        }
        case 'chunk-crlf': {
          if (buf.length < 2) return;
          if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw new Error('protocol error: missing CRLF after chunk');
          this.#buf = buf.subarray(2);
          this.#state = 'chunk-size';
          break;
        }
        case 'chunk-size': {
          const eol = buf.indexOf(CRLF);
          if (eol < 0) return;
          const line = buf.toString('latin1', 0, eol);
          const semi = line.indexOf(';');
          const size = Number.parseInt(semi >= 0 ? line.slice(0, semi) : line, 16);
          if (!Number.isFinite(size) || size < 0) throw new Error(`protocol error: bad chunk size "${line}"`);
          this.#buf = buf.subarray(eol + 2);
          if (size === 0) this.#state = 'trailers';
          else {
            this.#remaining = size;
            this.#state = 'chunk-data';
          }
          break;
        }
        case 'trailers': {
          const eol = buf.indexOf(CRLF);
          if (eol < 0) return;
          this.#buf = buf.subarray(eol + 2);
          if (eol === 0) this.#finish();
          break;
        }
        case 'until-close':
          this.#parts.push(buf);
          this.#buf = null;
          return;
      }
    }
  }

  /** Parses the status line and headers; true when the response has no body. */
  #parseHead(head: string): boolean {
    // "HTTP/1.1 200 OK"
    if (!head.startsWith('HTTP/1.')) throw new Error(`protocol error: bad status line "${head.slice(0, 40)}"`);
    this.#status = Number.parseInt(head.slice(9, 12), 10);
    let length = -1;
    let chunked = false;
    this.#closeAfter = head.startsWith('HTTP/1.0');
    let from = head.indexOf('\r\n');
    while (from >= 0) {
      const next = head.indexOf('\r\n', from + 2);
      const line = head.slice(from + 2, next < 0 ? head.length : next);
      from = next;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line
        .slice(colon + 1)
        .trim()
        .toLowerCase();
      if (name === 'content-length') length = Number.parseInt(value, 10);
      else if (name === 'transfer-encoding') chunked = value.includes('chunked');
      else if (name === 'connection') this.#closeAfter = value.includes('close');
    }
    this.#parts = [];
    if (this.#status >= 100 && this.#status < 200) throw new Error(`protocol error: unexpected ${this.#status} response`);
    if (chunked) this.#state = 'chunk-size';
    else if (length > 0) {
      this.#state = 'length';
      this.#remaining = length;
    } else if (length === 0 || this.#status === 204 || this.#status === 304) {
      return true;
    } else this.#state = 'until-close';
    return false;
  }

  #finish(): void {
    const parts = this.#parts;
    const body = parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
    const res: Http1Response = { status: this.#status, body };
    if (this.#opts.trackArrivals === true) {
      res.arrivals = this.#arrivals;
      this.#arrivals = [];
    }
    this.#parts = [];
    this.#state = 'head';
    const cb = this.#pending;
    this.#pending = null;
    if (this.#closeAfter && !this.#closed) {
      this.#closed = true;
      this.#closeReason = new Error('server closed the connection (connection: close)');
      this.#socket.destroy();
    }
    if (cb !== null) cb(null, res);
  }
}

/** Serialises a POST with a JSON body to HTTP/1.1 bytes. */
export function buildRequest(opts: { host: string; port: number; path: string; headers: Record<string, string>; body: string }): Buffer {
  const body = Buffer.from(opts.body, 'utf8');
  let head = `POST ${opts.path} HTTP/1.1\r\nhost: ${opts.host}:${opts.port}\r\n`;
  for (const [k, v] of Object.entries(opts.headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
