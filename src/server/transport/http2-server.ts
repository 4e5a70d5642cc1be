/**
 * The sidecar's gRPC server, written directly on node:http2.
 *
 * Why not @grpc/grpc-js's server: every client request costs one gRPC stream
 * and four messages each way, and on top of the same node:http2 core grpc-js
 * adds per-stream layers we do not use (interceptors, channelz, compression
 * negotiation, per-call metadata objects). Measured by `npm run
 * bench:transport` on 2026-12-04 (bench/transport.ts: the same zero-work
 * ext_proc handler and proto-loader codecs on both servers, 16 streams in
 * flight, 7 alternating rounds; 2-core Debian 12 VM, Node 24.21, grpc-js
 * 1.14.7): 55 µs vs 78 µs of server CPU per 4-message request over a Unix
 * socket, 0.74× (median of per-round ratios; loopback TCP 55 vs 79 µs,
 * 0.70×), i.e. 26–30% less, not the ~40% DESIGN §5 estimated. One stream at
 * a time: 177 vs 209 µs, 0.80×. Results: docs/benchmarks.md.
 * grpc-js stays the client in tests and tools, and its types describe the
 * services (the .proto codecs come from @grpc/proto-loader either way).
 *
 * What it implements of the gRPC over HTTP/2 protocol, for the only clients
 * it has (Envoy's ext_proc and ext_authz filters, health checkers):
 * - unary, server-streaming and bidirectional-streaming methods by `:path`;
 * - uncompressed messages only (`grpc-encoding` other than identity and a
 *   compressed-flag message → UNIMPLEMENTED; Envoy does not compress);
 * - a per-message size limit (RESOURCE_EXHAUSTED);
 * - status in trailers, or a trailers-only response when no message was sent;
 * - a client reset or a lost connection is a cancelled call;
 * - graceful shutdown: GOAWAY, in-flight streams finish, then forced close.
 * Deadlines (`grpc-timeout`) are not enforced here: Envoy enforces its own
 * per-message timeout and resets the stream, which cancels the call.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { FrameDecoder, frameMessage } from './framing.ts';

/** gRPC status codes the server uses. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A failure a handler reports as a gRPC status. */
export class GrpcError extends Error {
  override name = 'GrpcError';
  readonly code: number;
  constructor(code: number, details: string) {
    super(details);
    this.code = code;
  }
}

/** How one method's messages are (de)serialized; the functions proto-loader generates fit. */
export interface MethodCodec<Req, Res> {
  readonly path: string;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (message: Res) => Buffer;
}

/**
 * One call as a handler sees it. Events: `data` (a request message), `end`
 * (the client half-closed), `cancelled` (the client reset the stream or the
 * connection went away before a status was sent).
 */
export interface ServerCall<Req, Res> {
  on(event: 'data', listener: (message: Req) => void): this;
  on(event: 'end' | 'cancelled', listener: () => void): this;
  write(message: Res): void;
  /** Ends the call with OK. */
  end(): void;
  /** Ends the call with an error status. */
  fail(code: number, details: string): void;
  /** A status was sent or the stream is gone: writes are dropped. */
  readonly finished: boolean;
  /**
   * The call's request headers as received (gRPC metadata plus the HTTP/2
   * pseudo-headers), e.g. what Envoy's `grpc_service.initial_metadata` sets.
   */
  readonly metadata: Readonly<http2.IncomingHttpHeaders>;
}

type Registered =
  | { readonly kind: 'unary'; readonly codec: MethodCodec<unknown, unknown>; readonly handle: (request: unknown) => Promise<unknown> }
  | {
      readonly kind: 'server_stream';
      readonly codec: MethodCodec<unknown, unknown>;
      readonly handle: (request: unknown, call: ServerCall<unknown, unknown>) => void;
    }
  | { readonly kind: 'bidi'; readonly codec: MethodCodec<unknown, unknown>; readonly handle: (call: ServerCall<unknown, unknown>) => void };

export interface Http2GrpcServerOptions {
  /** Largest request message accepted (bytes). */
  readonly maxReceiveBytes: number;
  /** Called for errors that have no call to report them to (a broken connection). */
  readonly onTransportError?: (err: Error) => void;
}

// grpc-message is percent-encoded: printable ASCII except '%' stays as is.
function encodeGrpcMessage(text: string): string {
  return Buffer.from(text, 'utf8').reduce(
    (out, b) => out + (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`),
    '',
  );
}

const RESPONSE_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc' });

class Http2ServerCall<Req, Res> extends EventEmitter implements ServerCall<Req, Res> {
  readonly #stream: http2.ServerHttp2Stream;
  readonly #codec: MethodCodec<Req, Res>;
  readonly #decoder: FrameDecoder;
  #headersSent = false;
  #finished = false;
  #trailers: http2.OutgoingHttpHeaders = {};
  readonly metadata: Readonly<http2.IncomingHttpHeaders>;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, codec: MethodCodec<Req, Res>, maxReceiveBytes: number) {
    super();
    this.metadata = headers;
    this.#stream = stream;
    this.#codec = codec;
    this.#decoder = new FrameDecoder(maxReceiveBytes);
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => {
      if (this.#finished) return;
      if (this.#decoder.pending > 0) this.fail(GrpcStatus.INTERNAL, 'stream ended inside a message');
      else this.emit('end');
    });
    // 'close' without a status from us: the client reset the stream or the connection is gone.
    // (Node ends the readable side first, so a reset arrives as 'end' then 'close', as with grpc-js.)
    stream.on('close', () => {
      if (this.#finished) return;
      this.#finished = true;
      this.emit('cancelled');
    });
    // Reported through 'close'; without a listener a stream error would crash the process.
    stream.on('error', () => undefined);
  }

  get finished(): boolean {
    return this.#finished || this.#stream.destroyed;
  }

  #onData(chunk: Buffer): void {
    if (this.#finished) return;
    for (const frame of this.#decoder.push(chunk)) {
      if (frame.kind === 'compressed') return this.fail(GrpcStatus.UNIMPLEMENTED, 'compressed messages are not supported');
      if (frame.kind === 'too_large') return this.fail(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${frame.length} bytes exceeds the limit`);
      let message: Req;
      try {
        message = this.#codec.requestDeserialize(frame.bytes);
      } catch (err) {
        return this.fail(GrpcStatus.INTERNAL, `cannot parse request message: ${(err as Error).message}`);
      }
      this.emit('data', message);
      if (this.#finished) return;
    }
  }

  write(message: Res): void {
    if (this.finished) return;
    const bytes = frameMessage(this.#codec.responseSerialize(message));
    this.#sendHeaders();
    this.#stream.write(bytes);
  }

  end(): void {
    this.#sendStatus(GrpcStatus.OK, '');
  }

  fail(code: number, details: string): void {
    this.#sendStatus(code, details);
  }

  #sendHeaders(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    this.#stream.once('wantTrailers', () => {
      if (!this.#stream.destroyed) this.#stream.sendTrailers(this.#trailers);
    });
  }

  #sendStatus(code: number, details: string): void {
    if (this.finished) return;
    this.#finished = true;
    const status: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
    if (details !== '') status['grpc-message'] = encodeGrpcMessage(details);
    if (!this.#headersSent) {
      // Trailers-only: one HEADERS frame with the status, ending the stream.
      this.#headersSent = true;
      this.#stream.respond({ ...RESPONSE_HEADERS, ...status }, { endStream: true });
      return;
    }
    this.#trailers = status;
    this.#stream.end();
  }
}

/** A handler that throws synchronously fails its own call, not the connection or the process. */
function guard(call: ServerCall<unknown, unknown>, run: () => void): void {
  try {
    run();
  } catch {
    call.fail(GrpcStatus.INTERNAL, 'internal error');
  }
}

export class Http2GrpcServer {
  readonly #opts: Http2GrpcServerOptions;
  readonly #methods = new Map<string, Registered>();
  readonly #servers: http2.Http2Server[] = [];
  readonly #sessions = new Set<http2.ServerHttp2Session>();

  constructor(opts: Http2GrpcServerOptions) {
    this.#opts = opts;
  }

  unary<Req, Res>(codec: MethodCodec<Req, Res>, handle: (request: Req) => Promise<Res>): void {
    this.#add({ kind: 'unary', codec: codec as MethodCodec<unknown, unknown>, handle: handle as (r: unknown) => Promise<unknown> });
  }

  serverStream<Req, Res>(codec: MethodCodec<Req, Res>, handle: (request: Req, call: ServerCall<Req, Res>) => void): void {
    this.#add({
      kind: 'server_stream',
      codec: codec as MethodCodec<unknown, unknown>,
      handle: handle as (r: unknown, c: ServerCall<unknown, unknown>) => void,
    });
  }

  bidi<Req, Res>(codec: MethodCodec<Req, Res>, handle: (call: ServerCall<Req, Res>) => void): void {
    this.#add({ kind: 'bidi', codec: codec as MethodCodec<unknown, unknown>, handle: handle as (c: ServerCall<unknown, unknown>) => void });
  }

  #add(m: Registered): void {
    if (this.#methods.has(m.codec.path)) throw new Error(`gRPC method ${m.codec.path} registered twice`);
    this.#methods.set(m.codec.path, m);
  }

  /** Listens on a Unix socket path or `{ host, port }` (port 0: any free port); resolves with the TCP port or null. */
  async listen(where: { readonly path: string } | { readonly host: string; readonly port: number }): Promise<number | null> {
    const server = http2.createServer({
      // Each client request holds one stream for its whole life: no per-connection stream cap.
      settings: { maxConcurrentStreams: 0xffffffff, initialWindowSize: 4 * 1024 * 1024, maxHeaderListSize: 64 * 1024 },
      // Many concurrent buffered bodies (up to 2 MiB each) on one connection must not trip
      // Node's per-session memory guard, which would refuse new streams.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    server.on('session', (session) => {
      this.#sessions.add(session);
      session.on('close', () => this.#sessions.delete(session));
      session.on('error', (err: Error) => this.#opts.onTransportError?.(err));
      // A larger connection window than HTTP/2's 64 KiB default: fewer WINDOW_UPDATE round trips for large bodies.
      session.setLocalWindowSize(8 * 1024 * 1024);
    });
    server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    server.on('sessionError', (err) => this.#opts.onTransportError?.(err));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if ('path' in where) server.listen(where.path, done);
      else server.listen(where.port, where.host, done);
    });
    this.#servers.push(server);
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : null;
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const contentType = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !contentType.startsWith('application/grpc')) {
      // Not gRPC at all: plain HTTP 415, as the gRPC spec asks.
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const trailersOnly = (code: number, details: string): void => {
      stream.respond({ ...RESPONSE_HEADERS, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(details) }, { endStream: true });
    };
    const method = this.#methods.get(headers[':path'] ?? '');
    if (method === undefined) return trailersOnly(GrpcStatus.UNIMPLEMENTED, `unknown method ${headers[':path'] ?? ''}`);
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return trailersOnly(GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);

    const call = new Http2ServerCall<unknown, unknown>(stream, headers, method.codec, this.#opts.maxReceiveBytes);
    if (method.kind === 'bidi') {
      guard(call, () => method.handle(call));
      return;
    }
    // Unary and server streaming: exactly one request message, then the client half-closes.
    let request: { value: unknown } | null = null;
    call.on('data', (message) => {
      if (request !== null) return call.fail(GrpcStatus.INVALID_ARGUMENT, 'more than one request message');
      request = { value: message };
    });
    call.on('end', () => {
      if (request === null) return call.fail(GrpcStatus.INVALID_ARGUMENT, 'no request message');
      const req = request.value;
      if (method.kind === 'server_stream') {
        guard(call, () => method.handle(req, call));
        return;
      }
      method.handle(req).then(
        (response) => {
          call.write(response);
          call.end();
        },
        (err: unknown) => {
          if (err instanceof GrpcError) call.fail(err.code, err.message);
          else call.fail(GrpcStatus.INTERNAL, 'internal error');
        },
      );
    });
  }

  /**
   * Stops accepting connections and sends GOAWAY on every session: calls in
   * flight run to completion. Resolves once every session has closed.
   */
  async shutdown(): Promise<void> {
    const closed = [...this.#sessions].map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))));
    await Promise.all([...closed, ...this.#servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve())))]);
  }

  /** Closes every connection at once; calls still in flight are cancelled. */
  forceShutdown(): void {
    for (const s of this.#sessions) s.destroy();
    for (const srv of this.#servers) srv.close();
  }
}
