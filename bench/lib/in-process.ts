/**
 * One buffered chat request driven through the request processor in-process
 * (no Envoy, no gRPC): its four phases with the benches' fixed completion, as
 * `bench:pipeline` and `bench:destinations` measure them.
 */
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import type { RequestProcessor } from '../../src/pipeline/processor.ts';

/** The model server's answer: a 12-token completion with its usage, naming the deployment's model. */
export const COMPLETION = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'demo-model',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'Latency benchmarks measure how long each request really takes end to end.' }, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: 14, completion_tokens: 12, total_tokens: 26 },
  }),
);

export const COMPLETION_HEAD: ReadonlyMap<string, string> = new Map([
  [':status', '200'],
  ['content-type', 'application/json'],
  ['content-length', String(COMPLETION.length)],
]);

let n = 0;

/** A request head as Envoy delivers it, with a new request id each time. */
export function chatHead(apiKey: string, bodyBytes: number): Map<string, string> {
  return new Map([
    [':method', 'POST'],
    [':path', '/v1/chat/completions'],
    [':authority', 'gateway.local'],
    [':scheme', 'http'],
    ['content-type', 'application/json'],
    ['authorization', `Bearer ${apiKey}`],
    ['user-agent', 'bench'],
    ['x-forwarded-for', '127.0.0.1'],
    ['x-forwarded-proto', 'http'],
    ['x-request-id', `bench-${process.pid}-${++n}`],
    ['content-length', String(bodyBytes)],
  ]);
}

/** Throws unless the phase let the request go on. */
export function expectContinue(r: PhaseResult, phase: string): void {
  if (r.kind !== 'continue') throw new Error(`${phase}: the pipeline answered ${r.kind} ${'status' in r ? `${r.status} ${r.body.toString()}` : ''}`);
}

/** The four phases of one buffered chat request; returns the request body's answer (what went upstream). */
export async function bufferedChat(processor: RequestProcessor, apiKey: string, body: Buffer): Promise<PhaseResult> {
  const { state, result } = await processor.requestHeaders(chatHead(apiKey, body.length), false, NO_CONNECTION_INFO);
  expectContinue(result, 'request head');
  const sent = await processor.requestBody(state, body);
  expectContinue(sent, 'request body');
  expectContinue(await processor.responseHeaders(state, COMPLETION_HEAD, false), 'response head');
  expectContinue(await processor.responseBody(state, COMPLETION, true), 'response body');
  return sent;
}
