/**
 * F, the zero-work ext_proc server of `npm run bench` (the "floor"), in its
 * own process so its CPU time and RSS can be read from /proc like the
 * sidecar's:
 *
 *   node bench/floor-server.ts SOCKET_PATH
 *
 * It serves `envoy.service.ext_proc.v3.ExternalProcessor/Process` on the Unix
 * socket with the sidecar's transport (src/server/transport/http2-server.ts,
 * the sidecar's default receive limit) and the sidecar's codec for this method
 * (src/server/proto/wire/ext-proc-codec.ts),
 * answering each message with bench/lib/floor.ts's minimal answer; a call
 * ends with OK when Envoy half-closes. Once listening it prints one JSON line,
 * `{"ready":true}`, and it exits on SIGTERM or when stdin closes.
 */
import { flushCompileCache } from 'node:module';
import type { ProcessingRequest, ProcessingResponseInput } from '../src/server/proto/ext-proc.ts';
import { Http2GrpcServer } from '../src/server/transport/http2-server.ts';
import type { ServerCall } from '../src/server/transport/http2-server.ts';
import { PROCESS_CODEC } from '../src/server/proto/wire/ext-proc-codec.ts';
import { floorAnswer } from './lib/floor.ts';

/** The sidecar's default `server.grpc.maxReceiveBytes`. */
const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

const [socketPath] = process.argv.slice(2);
if (socketPath === undefined) {
  process.stderr.write('usage: node bench/floor-server.ts SOCKET_PATH\n');
  process.exit(2);
}

const server = new Http2GrpcServer({
  maxReceiveBytes: MAX_RECEIVE_BYTES,
  onTransportError: (err) => process.stderr.write(`transport error: ${err.message}\n`),
});
server.bidi(PROCESS_CODEC, (call: ServerCall<ProcessingRequest, ProcessingResponseInput>) => {
  call.on('data', (message) => call.write(floorAnswer(message)));
  call.on('end', () => call.end());
});
await server.listen({ path: socketPath });

const exit = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once('SIGTERM', exit);
process.once('SIGINT', exit);
// The parent keeps stdin open; if it dies without signalling us, stdin closes and we go too.
process.stdin.on('end', exit);
process.stdin.resume();
// Started with the sidecar's compile cache (bench/lib/procs.ts): written now, as the sidecar writes it once ready.
flushCompileCache();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
