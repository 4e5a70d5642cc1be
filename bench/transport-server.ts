/**
 * One zero-work ext_proc server for `npm run bench:transport`, in its own
 * process so its CPU time can be read from /proc:
 *
 *   node bench/transport-server.ts http2   SOCKET_PATH   # the sidecar's Http2GrpcServer
 *   node bench/transport-server.ts grpc-js SOCKET_PATH   # @grpc/grpc-js's Server
 *
 * Both serve `envoy.service.ext_proc.v3.ExternalProcessor/Process` with the
 * same codecs (proto-loader, the project's protos/) and the same handler: each
 * ProcessingRequest is answered with CONTINUE for its phase, and the call ends
 * with OK when the client half-closes. Each listens on the Unix socket and on
 * an ephemeral loopback TCP port, with the settings the sidecar uses (the
 * sidecar's default receive limit; for grpc-js, the options the sidecar had
 * when it ran on grpc-js: channelz off, the same message limits). Once
 * listening it prints one JSON line, `{"ready":true,"tcpPort":N}`, and it
 * exits on SIGTERM or when stdin closes.
 */
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponseInput } from '../src/server/proto/ext-proc.ts';
import { ExternalProcessorService } from '../src/server/proto/load.ts';
import { Http2GrpcServer } from '../src/server/transport/http2-server.ts';
import type { ServerCall } from '../src/server/transport/http2-server.ts';
import { continueFor, PROCESS_METHOD } from './lib/extproc-workload.ts';

/** The sidecar's default `server.grpc.maxReceiveBytes`. */
const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

const [impl, socketPath] = process.argv.slice(2);
if ((impl !== 'http2' && impl !== 'grpc-js') || socketPath === undefined) {
  process.stderr.write('usage: node bench/transport-server.ts http2|grpc-js SOCKET_PATH\n');
  process.exit(2);
}

/** The same few lines on either server's call object. */
interface ZeroWorkCall {
  on(event: 'data', listener: (message: ProcessingRequest) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  write(message: ProcessingResponseInput): unknown;
  end(): void;
}
function zeroWork(call: ZeroWorkCall): void {
  call.on('data', (message) => call.write(continueFor(message)));
  call.on('end', () => call.end());
}

let stop: () => void;
let tcpPort: number;
if (impl === 'http2') {
  const server = new Http2GrpcServer({
    maxReceiveBytes: MAX_RECEIVE_BYTES,
    onTransportError: (err) => process.stderr.write(`transport error: ${err.message}\n`),
  });
  server.bidi(PROCESS_METHOD, (call: ServerCall<ProcessingRequest, ProcessingResponseInput>) => zeroWork(call));
  await server.listen({ path: socketPath });
  tcpPort = (await server.listen({ host: '127.0.0.1', port: 0 })) ?? 0;
  stop = () => server.forceShutdown();
} else {
  const server = new grpc.Server({
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
    'grpc.max_send_message_length': MAX_RECEIVE_BYTES,
  });
  server.addService(ExternalProcessorService, { Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponseInput>) => zeroWork(call) });
  const bind = (address: string): Promise<number> =>
    new Promise((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err === null ? resolve(port) : reject(err))),
    );
  await bind(`unix:${socketPath}`);
  tcpPort = await bind('127.0.0.1:0');
  stop = () => server.forceShutdown();
}

const exit = (): void => {
  stop();
  process.exit(0);
};
process.once('SIGTERM', exit);
process.once('SIGINT', exit);
// The parent keeps stdin open; if it dies without signalling us, stdin closes and we go too.
process.stdin.on('end', exit);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ ready: true, impl, tcpPort })}\n`);
