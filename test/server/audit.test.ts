/**
 * The audit record comes before the answer: the last ext_proc answer of a
 * request (final body chunk, or the denial) is sent only after the record is
 * committed; when it cannot be committed the request fails closed. And the
 * real chain: sequence numbers, hash links, a final signed checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { startSidecar } from '../../src/app.ts';
import { clientConstructors } from '../../src/server/proto/clients.ts';
import type { ProcessingRequestInput, ProcessingResponse } from '../../src/server/proto/types.ts';
import type { AuditSink } from '../../src/pipeline/ports.ts';
import { canonicalJson, GENESIS, recordHash } from '../../src/crypto/canonical.ts';
import { loadSigningKey, verifyText } from '../../src/crypto/signing.ts';
import { writeGatewayFiles, type GatewayFiles } from '../helpers/fixtures.ts';
import { holdsFor, waitFor, withDeadline } from '../helpers/wait.ts';

const quiet = pino({ level: 'silent' });

/** A sink under test control: holds commits until the test opens its gate, or fails them; says when each committed. */
class ControlledSink implements AuditSink {
  /** While set, a commit waits for it. */
  gate: Promise<void> | null = null;
  failing = false;
  appendsStarted = 0;
  readonly committedAt: number[] = [];
  async append(_record: object): Promise<void> {
    this.appendsStarted++;
    if (this.gate !== null) await this.gate;
    if (this.failing) throw new Error('ENOSPC: no space left on device');
    this.committedAt.push(performance.now());
  }
  async close(): Promise<void> {}
}

function headersMsg(files: GatewayFiles, extra: Record<string, string> = {}): ProcessingRequestInput {
  const h = {
    ':method': 'POST',
    ':path': '/v1/chat/completions',
    'content-type': 'application/json',
    authorization: `Bearer ${files.keys['alice'] ?? ''}`,
    ...extra,
  };
  return { request_headers: { headers: { headers: Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) } } };
}
const body: ProcessingRequestInput = {
  request_body: { body: Buffer.from('{"model":"gpt-demo","stream":true,"messages":[{"role":"user","content":"hi"}]}'), end_of_stream: true },
};
const sseHead: ProcessingRequestInput = {
  response_headers: {
    headers: {
      headers: [
        { key: ':status', raw_value: Buffer.from('200') },
        { key: 'content-type', raw_value: Buffer.from('text/event-stream') },
      ],
    },
  },
};
const chunk = (text: string, eos: boolean): ProcessingRequestInput => ({ response_body: { body: Buffer.from(text), end_of_stream: eos } });

async function withSidecar(
  sink: AuditSink | null,
  run: (send: (m: ProcessingRequestInput) => Promise<ProcessingResponse | grpc.StatusObject>, files: GatewayFiles) => Promise<void>,
): Promise<GatewayFiles> {
  const files = writeGatewayFiles();
  const sidecar = await startSidecar(loadConfig(files.configFile, {}), { log: quiet, processMetrics: false, ...(sink === null ? {} : { audit: sink }) });
  const client = new (clientConstructors().ExternalProcessor)(`unix:${files.socketPath}`, grpc.credentials.createInsecure());
  const call = client.Process();
  const waiters: Array<(v: ProcessingResponse | grpc.StatusObject) => void> = [];
  call.on('data', (r: ProcessingResponse) => waiters.shift()?.(r));
  call.on('status', (s: grpc.StatusObject) => {
    for (const w of waiters.splice(0)) w(s);
  });
  call.on('error', () => undefined);
  const send = (m: ProcessingRequestInput) =>
    new Promise<ProcessingResponse | grpc.StatusObject>((resolve) => {
      waiters.push(resolve);
      call.write(m);
    });
  try {
    await run(send, files);
  } finally {
    call.cancel();
    client.close();
    await sidecar.shutdown('test over');
  }
  return files;
}

test('the final SSE chunk is answered only after the record is committed', async () => {
  const sink = new ControlledSink();
  let commit: () => void = () => undefined;
  sink.gate = new Promise<void>((resolve) => (commit = resolve));
  try {
    await withSidecar(sink, async (send, files) => {
      await send(headersMsg(files));
      await send(body);
      await send(sseHead);
      // No commit can happen now: a chunk before the last must be answered anyway.
      const mid = await withDeadline(send(chunk('data: {"choices":[{"delta":{"content":"a"}}]}\n\n', false)), {
        what: 'a chunk before the last, while commits are held',
      });
      assert.ok('response' in mid && mid.response === 'response_body', 'chunks before the last are not held');
      const appendsBefore = sink.appendsStarted;
      let answeredAt: number | null = null;
      const last = send(chunk('data: [DONE]\n\n', true)).then((r) => {
        answeredAt = performance.now();
        return r;
      });
      await waitFor(() => sink.appendsStarted > appendsBefore, { what: 'the record to reach the sink' });
      // A negative check in real time: the answer must not come while the commit is held. The sidecar
      // offers no event for "decided not to answer yet", so a short window it is.
      await holdsFor(() => answeredAt === null, { forMs: 100, what: 'the last chunk waits for its record' });
      commit();
      const answer = await last;
      assert.ok('response' in answer && answer.response === 'response_body');
      const committed = sink.committedAt.at(-1);
      assert.ok(committed !== undefined && answeredAt !== null && committed <= answeredAt, 'committed before the last chunk was released');
    });
  } finally {
    commit();
  }
});

test('a denial is answered only after its record; a sink that cannot commit fails the request closed', async () => {
  const sink = new ControlledSink();
  sink.failing = true;
  await withSidecar(sink, async (send, files) => {
    const denied = await send(headersMsg(files, { authorization: 'Bearer igw_nope' }));
    assert.ok('response' in denied && denied.response === 'immediate_response');
    assert.equal(denied.immediate_response?.status?.code, 'ServiceUnavailable', 'not the 401: the denial could not be recorded');
    const err = JSON.parse(Buffer.from(denied.immediate_response?.body ?? '').toString()) as { error: { code: string } };
    assert.equal(err.error.code, 'audit_unavailable');
  });
});

test('a stream whose record cannot be committed is reset, never completed', async () => {
  const sink = new ControlledSink();
  await withSidecar(sink, async (send, files) => {
    await send(headersMsg(files));
    await send(body);
    await send(sseHead);
    await send(chunk('data: {"choices":[{"delta":{"content":"a"}}]}\n\n', false));
    sink.failing = true;
    const last = await send(chunk('data: [DONE]\n\n', true));
    assert.ok('code' in last, 'the stream ended with a status instead of an answer');
    assert.notEqual(last.code, grpc.status.OK);
  });
});

test('the real chain: consecutive sequence numbers, hash links, a final signed checkpoint at shutdown', async () => {
  const files = await withSidecar(null, async (send, f) => {
    await send(headersMsg(f, { authorization: 'Bearer igw_nope' }));
  });
  const lines = readFileSync(files.auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const records = lines.filter((l) => l['type'] === 'request');
  const checkpoints = lines.filter((l) => l['type'] === 'checkpoint');
  assert.equal(records.length, 1);
  const chain = records[0]?.['chain'] as { id: string; seq: number; prev: string };
  assert.deepEqual([chain.seq, chain.prev], [1, GENESIS]);
  const final = checkpoints.at(-1) as { chain: string; seq: number; hash: string; final: boolean; kid: string; sig: string };
  assert.equal(final.chain, chain.id);
  assert.equal(final.final, true);
  assert.equal(final.hash, recordHash(records[0] as object));
  const key = loadSigningKey(join(files.dir, 'audit-signing-key.pem'));
  assert.equal(final.kid, key.kid);
  const { sig, ...unsigned } = final;
  assert.ok(verifyText(key.publicKey, canonicalJson(unsigned), sig));
  assert.ok(!verifyText(key.publicKey, canonicalJson({ ...unsigned, seq: 2 }), sig), 'a changed checkpoint fails');
});
