/**
 * The ext_proc workload of `npm run bench:transport`, shared by its client
 * (bench/transport.ts) and its servers (bench/transport-server.ts).
 *
 * One simulated HTTP request is one `ExternalProcessor/Process` stream with
 * the four messages Envoy sends with the gateway's processing mode
 * (envoy/gateway.yaml: headers SEND, bodies BUFFERED, trailers SKIP), shaped
 * like what Envoy sends for a small chat completion: request headers with the
 * request attributes the gateway asks for (plaintext: connection.mtls and
 * source.address) and the protocol configuration, the request body, the
 * response headers and the response body. The server answers each with the
 * smallest valid answer (CONTINUE for that phase, no mutation).
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingRequestInput, ProcessingResponse, ProcessingResponseInput } from '../../src/server/proto/ext-proc.ts';
import { ExternalProcessorService } from '../../src/server/proto/load.ts';
import { frameMessage } from '../../src/server/transport/framing.ts';

/**
 * The gRPC method both servers implement, as a server sees it (decoded
 * requests, answers to encode). The codecs are proto-loader's, from the
 * project's protos/, as in the sidecar.
 */
export const PROCESS_METHOD = ExternalProcessorService.Process as MethodDefinition<ProcessingRequest, ProcessingResponseInput>;
/** The same method as a client sees it (requests to encode). */
const CLIENT_METHOD = ExternalProcessorService.Process as MethodDefinition<ProcessingRequestInput, ProcessingResponse>;

const header = (key: string, value: string): { key: string; raw_value: Buffer } => ({ key, raw_value: Buffer.from(value) });

const REQUEST_BODY = JSON.stringify({
  model: 'gpt-demo',
  messages: [{ role: 'user', content: 'Write one short sentence about latency benchmarks.' }],
  max_tokens: 64,
});
const RESPONSE_BODY = JSON.stringify({
  id: 'chatcmpl-0a1b2c3d4e5f',
  object: 'chat.completion',
  created: 1795000000,
  model: 'demo-model',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Latency benchmarks measure how long a request really waits.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 12, total_tokens: 24 },
});

/** The four ProcessingRequests of one stream, in the order Envoy sends them. */
export const STREAM_MESSAGES: readonly ProcessingRequestInput[] = [
  {
    request_headers: {
      headers: {
        headers: [
          header(':authority', '127.0.0.1:8080'),
          header(':path', '/v1/chat/completions'),
          header(':method', 'POST'),
          header(':scheme', 'http'),
          header('content-type', 'application/json'),
          header('content-length', String(Buffer.byteLength(REQUEST_BODY))),
          header('authorization', 'Bearer igw_AbCdEfGh_0123456789abcdefghijklmnopqrstuv'),
          header('user-agent', 'bench/1'),
          header('x-forwarded-proto', 'http'),
          header('x-request-id', '6f1c1f3e-6a52-4d6c-9c1e-2f7f0b0f5a11'),
        ],
      },
      end_of_stream: false,
    },
    attributes: {
      'envoy.filters.http.ext_proc': {
        fields: { 'connection.mtls': { kind: 'boolValue', boolValue: false }, 'source.address': { kind: 'stringValue', stringValue: '127.0.0.1:40000' } },
      },
    },
    protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' },
  },
  { request_body: { body: Buffer.from(REQUEST_BODY), end_of_stream: true } },
  {
    response_headers: {
      headers: {
        headers: [
          header(':status', '200'),
          header('content-type', 'application/json'),
          header('content-length', String(Buffer.byteLength(RESPONSE_BODY))),
          header('date', 'Fri, 04 Dec 2026 00:00:00 GMT'),
          header('x-envoy-upstream-service-time', '1'),
        ],
      },
      end_of_stream: false,
    },
  },
  { response_body: { body: Buffer.from(RESPONSE_BODY), end_of_stream: true } },
];

/**
 * The zero-work handler's answer: CONTINUE for the message's phase (trailers
 * phases have no status), or an empty response for a message without a
 * phase, which the client reports as a wrong answer.
 */
export function continueFor(message: ProcessingRequest): ProcessingResponseInput {
  switch (message.request) {
    case 'request_headers':
      return { request_headers: { response: { status: 'CONTINUE' } } };
    case 'response_headers':
      return { response_headers: { response: { status: 'CONTINUE' } } };
    case 'request_body':
      return { request_body: { response: { status: 'CONTINUE' } } };
    case 'response_body':
      return { response_body: { response: { status: 'CONTINUE' } } };
    case 'request_trailers':
      return { request_trailers: {} };
    case 'response_trailers':
      return { response_trailers: {} };
    default:
      return {};
  }
}

/**
 * The client's side of a stream, encoded once: each request framed, its
 * protobuf size, and the exact bytes each answer must have.
 */
export function encodedStream(): { requests: Buffer[]; messageBytes: number[]; expectedAnswers: Buffer[] } {
  const requests: Buffer[] = [];
  const messageBytes: number[] = [];
  const expectedAnswers: Buffer[] = [];
  for (const input of STREAM_MESSAGES) {
    const bytes = CLIENT_METHOD.requestSerialize(input);
    requests.push(frameMessage(bytes));
    messageBytes.push(bytes.length);
    // What the server's handler will answer, encoded as the server encodes it (same codec, same input).
    expectedAnswers.push(PROCESS_METHOD.responseSerialize(continueFor(PROCESS_METHOD.requestDeserialize(bytes))));
  }
  return { requests, messageBytes, expectedAnswers };
}
