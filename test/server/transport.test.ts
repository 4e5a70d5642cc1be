/**
 * The node:http2 gRPC server against a real gRPC client (@grpc/grpc-js) and
 * raw HTTP/2: framing across and within DATA frames, status codes for what it
 * refuses, cancellation, unary errors, server streaming, graceful shutdown.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { FrameDecoder, frameMessage } from '../../src/server/transport/framing.ts';
import { GrpcError, GrpcStatus, Http2GrpcServer, type MethodCodec, type ServerCall } from '../../src/server/transport/http2-server.ts';
import { waitFor } from '../helpers/wait.ts';

// ---------------------------------------------------------------- framing

test('frames split anywhere, and several per chunk, decode to the same messages', async (t) => {
  const messages = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.alloc(70_000, 7)];
  const wire = Buffer.concat(messages.map(frameMessage));
  for (const size of [1, 2, 5, 6, 13, 4096, wire.length]) {
    await t.test(`chunks of ${size} bytes`, () => {
      const d = new FrameDecoder(1 << 20);
      const got: Buffer[] = [];
      for (let i = 0; i < wire.length; i += size) {
        for (const f of d.push(wire.subarray(i, i + size))) {
          assert.equal(f.kind, 'message');
          if (f.kind === 'message') got.push(Buffer.from(f.bytes));
        }
      }
      assert.deepEqual(got, messages, `chunks of ${size} bytes`);
      assert.equal(d.pending, 0);
    });
  }
});

test('property: any messages, cut into any chunks, decode to exactly those messages', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
      (messages, cuts) => {
        const wire = Buffer.concat(messages.map(frameMessage));
        const d = new FrameDecoder(300);
        const got: Buffer[] = [];
        for (let i = 0, k = 0; i < wire.length; k++) {
          const size = cuts[k % cuts.length] ?? 1;
          for (const f of d.push(wire.subarray(i, i + size))) {
            if (f.kind !== 'message') return false;
            got.push(Buffer.from(f.bytes));
          }
          i += size;
        }
        return d.pending === 0 && got.length === messages.length && got.every((g, i) => g.equals(messages[i] ?? Buffer.alloc(0)));
      },
    ),
    { numRuns: 500 },
  );
});

test('an oversized or compressed message stops decoding', () => {
  const big = new FrameDecoder(10);
  assert.deepEqual(big.push(frameMessage(Buffer.alloc(11))), [{ kind: 'too_large', length: 11 }]);
  const header = Buffer.from([1, 0, 0, 0, 1, 0]);
  assert.deepEqual(new FrameDecoder(10).push(header), [{ kind: 'compressed' }]);
  const partial = new FrameDecoder(100);
  assert.deepEqual(partial.push(frameMessage(Buffer.from('abc')).subarray(0, 6)), []);
  assert.equal(partial.pending, 6);
});

// ---------------------------------------------------------------- server

// Raw-bytes codecs: what goes over the wire is exactly what the test sends.
const bytes = (path: string): MethodCodec<Buffer, Buffer> => ({ path, requestDeserialize: (b) => Buffer.from(b), responseSerialize: (b) => b });
const identity = (b: Buffer): Buffer => b;
const clientDef = {
  Echo: {
    path: '/test.T/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Fail: {
    path: '/test.T/Fail',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Boom: {
    path: '/test.T/Boom',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Count: {
    path: '/test.T/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Chat: {
    path: '/test.T/Chat',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Throw: {
    path: '/test.T/Throw',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Missing: {
    path: '/test.T/Missing',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;
type Client = grpc.Client & Record<keyof typeof clientDef, (...args: unknown[]) => unknown>;

let server: Http2GrpcServer;
let socket: string;
let client: Client;
const chatEvents: string[] = [];
let chatMetadata: Readonly<http2.IncomingHttpHeaders> = {};
let cancelled: () => void = () => undefined;
/** While set, the Chat handler does not answer the client's half-close (the call stays open). */
let holdOpen = false;

before(async () => {
  server = new Http2GrpcServer({ maxReceiveBytes: 1024 });
  server.unary(bytes('/test.T/Echo'), async (req) => Buffer.concat([Buffer.from('echo:'), req]));
  server.unary(bytes('/test.T/Fail'), async () => {
    throw new GrpcError(GrpcStatus.PERMISSION_DENIED, 'nope: 100% refused');
  });
  server.unary(bytes('/test.T/Boom'), async () => {
    throw new Error('a bug with a secret in it');
  });
  server.serverStream(bytes('/test.T/Count'), (req, call) => {
    for (let i = 0; i < Number(req.toString()); i++) call.write(Buffer.from(String(i)));
    call.end();
  });
  server.bidi(bytes('/test.T/Chat'), (call: ServerCall<Buffer, Buffer>) => {
    chatMetadata = call.metadata;
    call.on('data', (m) => {
      chatEvents.push(`data:${m.toString()}`);
      if (m.toString() === 'fail') call.fail(GrpcStatus.UNAVAILABLE, 'told to fail');
      else call.write(Buffer.from(m.toString().toUpperCase()));
    });
    call.on('end', () => {
      chatEvents.push('end');
      if (!holdOpen) call.end();
    });
    call.on('cancelled', () => {
      chatEvents.push('cancelled');
      cancelled();
    });
  });
  server.bidi(bytes('/test.T/Throw'), () => {
    throw new Error('handler bug');
  });
  socket = join(mkdtempSync(join(tmpdir(), 'igw-transport-')), 'grpc.sock');
  await server.listen({ path: socket });
  const Ctor = grpc.makeGenericClientConstructor(clientDef, 'T');
  client = new Ctor(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Client;
});

after(async () => {
  client.close();
  await server.shutdown();
});

function unary(method: 'Echo' | 'Fail' | 'Boom' | 'Missing', body: Buffer): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }> {
  return new Promise((resolve) => {
    (client[method] as (b: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void).call(client, body, (err, res) => resolve({ err, res }));
  });
}

test('unary: the answer, an error status with its message, and a handler bug as INTERNAL without details', async () => {
  const ok = await unary('Echo', Buffer.from('hi'));
  assert.equal(ok.err, null);
  assert.equal(ok.res?.toString(), 'echo:hi');
  const denied = await unary('Fail', Buffer.from('x'));
  assert.equal(denied.err?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(denied.err?.details, 'nope: 100% refused', 'grpc-message is percent-encoded and decoded back');
  const bug = await unary('Boom', Buffer.from('x'));
  assert.equal(bug.err?.code, grpc.status.INTERNAL);
  assert.ok(!bug.err.details.includes('secret'));
});

test('an unknown method is UNIMPLEMENTED; a message over the limit is RESOURCE_EXHAUSTED', async () => {
  assert.equal((await unary('Missing', Buffer.from('x'))).err?.code, grpc.status.UNIMPLEMENTED);
  assert.equal((await unary('Echo', Buffer.alloc(2000))).err?.code, grpc.status.RESOURCE_EXHAUSTED);
  // The server is still fine afterwards.
  assert.equal((await unary('Echo', Buffer.from('again'))).res?.toString(), 'echo:again');
});

test('server streaming delivers every message, then OK', async () => {
  const got: string[] = [];
  const call = (client.Count as (b: Buffer) => grpc.ClientReadableStream<Buffer>).call(client, Buffer.from('5'));
  await new Promise<void>((resolve, reject) => {
    call.on('data', (m: Buffer) => got.push(m.toString()));
    call.on('error', reject);
    call.on('status', (s: grpc.StatusObject) => (s.code === grpc.status.OK ? resolve() : reject(new Error(s.details))));
  });
  assert.deepEqual(got, ['0', '1', '2', '3', '4']);
});

test('bidi: answers in order, half-close then OK; fail() ends the call with its status', async () => {
  chatEvents.length = 0;
  const call = (client.Chat as () => grpc.ClientDuplexStream<Buffer, Buffer>).call(client);
  const got: string[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => {
    call.on('data', (m: Buffer) => got.push(m.toString()));
    call.on('status', resolve);
    call.on('error', () => undefined);
  });
  call.write(Buffer.from('a'));
  call.write(Buffer.from('b'));
  call.end();
  assert.equal((await status).code, grpc.status.OK);
  assert.deepEqual(got, ['A', 'B']);
  assert.deepEqual(chatEvents, ['data:a', 'data:b', 'end']);

  const failing = (client.Chat as () => grpc.ClientDuplexStream<Buffer, Buffer>).call(client);
  const failed = new Promise<grpc.StatusObject>((resolve) => {
    failing.on('status', resolve);
    failing.on('error', () => undefined);
    failing.on('data', () => undefined);
  });
  failing.write(Buffer.from('fail'));
  const s = await failed;
  assert.equal(s.code, grpc.status.UNAVAILABLE);
  assert.equal(s.details, 'told to fail');
});

test("a call exposes the client's request metadata (custom keys and the method path)", async () => {
  const md = new grpc.Metadata();
  md.set('x-gateway-attempt-cluster', 'member-a');
  const call = (client.Chat as (m: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer>).call(client, md);
  const done = new Promise<void>((resolve) => {
    call.on('data', () => undefined);
    call.on('status', () => resolve());
    call.on('error', () => undefined);
  });
  call.end();
  await done;
  assert.equal(chatMetadata['x-gateway-attempt-cluster'], 'member-a');
  assert.equal(chatMetadata[':path'], '/test.T/Chat');
});

test('a handler that throws fails its own call with INTERNAL; the server keeps serving', async () => {
  const call = (client.Throw as () => grpc.ClientDuplexStream<Buffer, Buffer>).call(client);
  const status = await new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', resolve);
    call.on('error', () => undefined);
    call.on('data', () => undefined);
  });
  assert.equal(status.code, grpc.status.INTERNAL);
  assert.equal((await unary('Echo', Buffer.from('still here'))).res?.toString(), 'echo:still here');
});

test('a client reset is a cancelled call on the server', async () => {
  chatEvents.length = 0;
  holdOpen = true;
  const seen = new Promise<void>((resolve) => {
    cancelled = resolve;
  });
  const call = (client.Chat as () => grpc.ClientDuplexStream<Buffer, Buffer>).call(client);
  call.on('error', () => undefined);
  call.on('data', () => call.cancel());
  call.write(Buffer.from('x'));
  await seen;
  holdOpen = false;
  // Node ends the readable side before it reports the reset (grpc-js servers see the same order).
  assert.deepEqual(
    chatEvents.filter((e) => e !== 'end'),
    ['data:x', 'cancelled'],
  );
});

test('not gRPC: a GET or a non-gRPC content type gets HTTP 415', async (t) => {
  const session = http2.connect('http://localhost', { createConnection: () => connect(socket) });
  try {
    for (const [name, headers] of [
      ['GET', { ':method': 'GET', ':path': '/test.T/Echo' }],
      ['POST application/json', { ':method': 'POST', ':path': '/test.T/Echo', 'content-type': 'application/json' }],
    ] as const) {
      await t.test(name, async () => {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request(headers, { endStream: true });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          req.resume();
        });
        assert.equal(status, 415);
      });
    }
    // A compressed message on a gRPC stream: UNIMPLEMENTED.
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/test.T/Echo', 'content-type': 'application/grpc', te: 'trailers' });
      let head: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (head = h));
      req.on('trailers', (t: http2.IncomingHttpHeaders) => resolve(t));
      req.on('end', () => resolve(head));
      req.on('error', reject);
      req.resume();
      req.end(Buffer.from([1, 0, 0, 0, 1, 0]));
    });
    assert.equal(trailers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
  } finally {
    session.close();
  }
});

test('graceful shutdown lets a call in flight finish, then refuses new connections', async () => {
  const s2 = new Http2GrpcServer({ maxReceiveBytes: 1024 });
  let release: (() => void) | null = null;
  s2.unary(
    bytes('/test.T/Echo'),
    (req) =>
      new Promise((resolve) => {
        release = () => resolve(req);
      }),
  );
  const sock = join(mkdtempSync(join(tmpdir(), 'igw-transport-')), 'g.sock');
  await s2.listen({ path: sock });
  const Ctor = grpc.makeGenericClientConstructor(clientDef, 'T');
  const c = new Ctor(`unix:${sock}`, grpc.credentials.createInsecure()) as unknown as Client;
  const inFlight = new Promise<{ err: grpc.ServiceError | null; res?: Buffer | undefined }>((resolve) => {
    (c.Echo as (b: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void).call(c, Buffer.from('slow'), (err, res) => resolve({ err, res }));
  });
  const releaseCall = await waitFor(() => release, { what: 'the call to reach its handler' });
  const stopped = s2.shutdown();
  releaseCall();
  const r = await inFlight;
  assert.equal(r.err, null);
  assert.equal(r.res?.toString(), 'slow');
  await stopped;
  c.close();
  const c2 = new Ctor(`unix:${sock}`, grpc.credentials.createInsecure()) as unknown as Client;
  const refused = await new Promise<grpc.ServiceError | null>((resolve) => {
    (c2.Echo as (b: Buffer, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void).call(
      c2,
      Buffer.from('x'),
      { deadline: Date.now() + 1000 },
      (err) => resolve(err),
    );
  });
  assert.equal(refused?.code, grpc.status.UNAVAILABLE);
  c2.close();
});
