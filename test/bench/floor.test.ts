// The benchmark's zero-work ext_proc server F (bench/lib/floor.ts) and the
// per-chunk figure of the targets (bench/lib/targets.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROCESS_METHOD, STREAM_MESSAGES } from '../../bench/lib/extproc-workload.ts';
import { FLOOR_CLUSTER, floorAnswer } from '../../bench/lib/floor.ts';
import type { MeasuredPhase, SystemResults } from '../../bench/lib/results.ts';
import { perChunkUs } from '../../bench/lib/targets.ts';
import { TARGET_CLUSTER_HEADER } from '../../src/envoy/config.ts';
import type { ProcessingRequest, ProcessingRequestInput } from '../../src/server/proto/ext-proc.ts';

/** A request as the server sees it: encoded by a client, decoded by the server's codec. */
function decoded(input: ProcessingRequestInput): ProcessingRequest {
  return PROCESS_METHOD.requestDeserialize(Buffer.from(new Uint8Array(PROCESS_METHOD.requestSerialize(input as never))));
}

function responseHeaders(contentType: string): ProcessingRequest {
  return decoded({
    response_headers: {
      headers: {
        headers: [
          { key: ':status', raw_value: Buffer.from('200') },
          { key: 'content-type', raw_value: Buffer.from(contentType) },
        ],
      },
    },
  });
}

void test('F routes every request to the cluster the sidecar picks for gpt-demo, and clears the route cache', () => {
  const [headers] = STREAM_MESSAGES;
  assert.ok(headers !== undefined);
  const answer = floorAnswer(decoded(headers));
  const common = answer.request_headers?.response;
  assert.equal(common?.clear_route_cache, true);
  assert.equal(common?.status, 'CONTINUE');
  const set = common?.header_mutation?.set_headers ?? [];
  assert.equal(set.length, 1);
  assert.equal(set[0]?.header?.key, TARGET_CLUSTER_HEADER);
  assert.equal(Buffer.from(set[0]?.header?.raw_value as Buffer).toString(), FLOOR_CLUSTER);
  assert.equal(FLOOR_CLUSTER, 'demo-upstream');
  // Encodable as it is.
  assert.ok(PROCESS_METHOD.responseSerialize(answer).length > 0);
});

void test('F switches an SSE response to STREAMED, and leaves any other response buffered', () => {
  assert.deepEqual(floorAnswer(responseHeaders('text/event-stream; charset=utf-8')).mode_override, { response_body_mode: 'STREAMED' });
  assert.equal(floorAnswer(responseHeaders('application/json')).mode_override, undefined);
});

void test('F answers bodies with CONTINUE for their phase', () => {
  const body = STREAM_MESSAGES[1];
  assert.ok(body !== undefined);
  assert.deepEqual(floorAnswer(decoded(body)), { request_body: { response: { status: 'CONTINUE' } } });
  assert.deepEqual(floorAnswer(decoded({ response_body: { body: Buffer.from('data: x\n\n'), end_of_stream: false } })), {
    response_body: { response: { status: 'CONTINUE' } },
  });
});

void test('per-chunk CPU: the long paced phase minus the short one, per extra event', () => {
  const phase = (us: number): MeasuredPhase => ({ cpu: { extproc: { ms: 0, usPerRequest: us, source: 'schedstat' } } }) as unknown as MeasuredPhase;
  const sys = { paced: { short: phase(1000), long: phase(1960) } } as unknown as SystemResults;
  assert.equal(perChunkUs(sys, 12, 60), 20);
  assert.equal(perChunkUs({ paced: { short: phase(1000) } } as unknown as SystemResults, 12, 60), null);
});
