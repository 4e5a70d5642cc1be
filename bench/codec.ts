/**
 * `npm run bench:codec`: the ext_proc Process method's protobuf codec,
 * proto-loader (protobufjs: bytes <-> message instance <-> plain object)
 * against the hand-written one the sidecar uses (src/server/proto/wire/),
 * in-process, µs of CPU per message (process.cpuUsage over many iterations
 * after a warm-up), median and range over rounds that alternate the two.
 *
 * Messages, shaped like what Envoy sends and the sidecar answers:
 * - decode request_headers: 15 headers in raw_value, the connection
 *   attributes Struct (plaintext: mtls, peer_certificate_valid,
 *   source.address), protocol_config;
 * - decode request_body: a 200-byte JSON body, end_of_stream;
 * - encode headers answer: header mutation setting 10 headers
 *   (OVERWRITE_IF_EXISTS_OR_ADD, raw_value) and removing 2, a 200-byte body
 *   replacement, clear_route_cache;
 * - encode CONTINUE: `{ request_body: { response: { status: 'CONTINUE' } } }`.
 *
 * Options: --rounds N (default 9), --iterations N per round (default 50000).
 */
import { parseArgs } from 'node:util';
import type { MethodDefinition } from '@grpc/grpc-js';
import { toProcessingResponse } from '../src/server/extproc/wire.ts';
import type { ProcessingRequest, ProcessingRequestInput, ProcessingResponseInput } from '../src/server/proto/ext-proc.ts';
import { ExternalProcessorService } from '../src/server/proto/load.ts';
import { decodeProcessingRequest, encodeProcessingResponse } from '../src/server/proto/wire/ext-proc-codec.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '9' }, iterations: { type: 'string', default: '50000' } } });
const ROUNDS = Number(args.rounds);
const ITERATIONS = Number(args.iterations);

const REF = ExternalProcessorService.Process as MethodDefinition<ProcessingRequest, ProcessingResponseInput>;
const REF_CLIENT = ExternalProcessorService.Process as MethodDefinition<ProcessingRequestInput, unknown>;

const raw = (key: string, value: string): { key: string; raw_value: Buffer } => ({ key, raw_value: Buffer.from(value, 'latin1') });
/** A 200-byte chat request body (valid JSON). */
const chatBody = (content: string): string => JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content }] });
const BODY_200 = Buffer.from(chatBody('Write one short sentence about latency benchmarks. '.repeat(4).slice(0, 200 - chatBody('').length)));

const requestHeaders: ProcessingRequestInput = {
  request_headers: {
    headers: {
      headers: [
        raw(':authority', 'gateway.example.com'),
        raw(':path', '/v1/chat/completions'),
        raw(':method', 'POST'),
        raw(':scheme', 'https'),
        raw('content-type', 'application/json'),
        raw('content-length', '200'),
        raw('authorization', 'Bearer igw_AbCdEfGh_0123456789abcdefghijklmnopqrstuv'),
        raw('user-agent', 'OpenAI/Python 1.57.0'),
        raw('accept', 'application/json'),
        raw('accept-encoding', 'gzip, deflate'),
        raw('x-stainless-lang', 'python'),
        raw('x-stainless-retry-count', '0'),
        raw('x-forwarded-proto', 'https'),
        raw('x-request-id', '6f1c1f3e-6a52-4d6c-9c1e-2f7f0b0f5a11'),
        raw('x-envoy-expected-rq-timeout-ms', '60000'),
      ],
    },
    end_of_stream: false,
  },
  attributes: {
    'envoy.filters.http.ext_proc': {
      fields: {
        'connection.mtls': { boolValue: false },
        'connection.peer_certificate_valid': { boolValue: false },
        'source.address': { stringValue: '10.0.3.17:51234' },
      },
    },
  },
  protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' },
};
const requestBody: ProcessingRequestInput = { request_body: { body: BODY_200, end_of_stream: true } };

const headersAnswer: ProcessingResponseInput = toProcessingResponse('request_headers', {
  kind: 'continue',
  headers: {
    set: Array.from({ length: 10 }, (_, i): [string, string] => [`x-gateway-header-${i}`, `value-${i}-${'v'.repeat(20)}`]),
    remove: ['authorization', 'x-api-key'],
  },
  body: BODY_200,
  clearRouteCache: true,
});
const continueAnswer: ProcessingResponseInput = { request_body: { response: { status: 'CONTINUE' } } };

interface Case {
  readonly name: string;
  readonly bytes: number;
  readonly protoLoader: () => unknown;
  readonly handWritten: () => unknown;
}

const headersBytes = REF_CLIENT.requestSerialize(requestHeaders);
const bodyBytes = REF_CLIENT.requestSerialize(requestBody);
const CASES: Case[] = [
  {
    name: 'decode request_headers (15 headers, attributes)',
    bytes: headersBytes.length,
    protoLoader: () => REF.requestDeserialize(headersBytes),
    handWritten: () => decodeProcessingRequest(headersBytes),
  },
  {
    name: 'decode request_body (200-byte body)',
    bytes: bodyBytes.length,
    protoLoader: () => REF.requestDeserialize(bodyBytes),
    handWritten: () => decodeProcessingRequest(bodyBytes),
  },
  {
    name: 'encode headers answer (set 10, remove 2, 200-byte body)',
    bytes: REF.responseSerialize(headersAnswer).length,
    protoLoader: () => REF.responseSerialize(headersAnswer),
    handWritten: () => encodeProcessingResponse(headersAnswer),
  },
  {
    name: 'encode CONTINUE',
    bytes: REF.responseSerialize(continueAnswer).length,
    protoLoader: () => REF.responseSerialize(continueAnswer),
    handWritten: () => encodeProcessingResponse(continueAnswer),
  },
];

// Keeps results alive so the work cannot be optimized away.
let sink = 0;

function cpuMicrosPerOp(fn: () => unknown, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const out = fn();
    sink += typeof out === 'object' && out !== null ? 1 : 0;
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number): string => x.toFixed(2);

process.stdout.write(`ext_proc codec, µs of CPU per message: median (min–max) of ${ROUNDS} rounds × ${ITERATIONS} messages; Node ${process.version}\n\n`);
process.stdout.write('| message | bytes | proto-loader | hand-written | ratio |\n|---|--:|--:|--:|--:|\n');
for (const c of CASES) {
  // Warm-up: both paths optimized before measuring.
  cpuMicrosPerOp(c.protoLoader, ITERATIONS);
  cpuMicrosPerOp(c.handWritten, ITERATIONS);
  const ref: number[] = [];
  const mine: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order so drift on a shared machine does not favour one side.
    const [a, b] = r % 2 === 0 ? [cpuMicrosPerOp(c.protoLoader, ITERATIONS), cpuMicrosPerOp(c.handWritten, ITERATIONS)] : swap(c);
    ref.push(a);
    mine.push(b);
    ratios.push(a / b);
  }
  const range = (xs: number[]): string => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  process.stdout.write(`| ${c.name} | ${c.bytes} | ${range(ref)} | ${range(mine)} | ${median(ratios).toFixed(1)}× |\n`);
}
if (sink === 0) process.stdout.write('(nothing measured)\n');

function swap(c: Case): [number, number] {
  const b = cpuMicrosPerOp(c.handWritten, ITERATIONS);
  const a = cpuMicrosPerOp(c.protoLoader, ITERATIONS);
  return [a, b];
}
