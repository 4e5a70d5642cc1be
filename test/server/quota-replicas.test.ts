/**
 * Two sidecar replicas sharing one Redis, driven over gRPC with Envoy's
 * message sequence: N+1 concurrent requests against a limit of N admit
 * exactly N, whichever replica they reach — for a request-rate limit and for
 * a concurrency limit; and the same through a three-node Redis Cluster.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { startSidecar, type Sidecar } from '../../src/app.ts';
import { clientConstructors, type ExternalProcessorClient } from '../../src/server/proto/clients.ts';
import type { ProcessingRequestInput, ProcessingResponse } from '../../src/server/proto/types.ts';
import { writeGatewayFiles, type GatewayFiles } from '../helpers/fixtures.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { startRedisCluster } from '../helpers/redis-cluster.ts';

const N = 10;
let redis: TestRedis;
let files: GatewayFiles;
const replicas: Sidecar[] = [];
const clients: ExternalProcessorClient[] = [];

before(async () => {
  redis = await startRedis();
  files = writeGatewayFiles({
    keys: [
      { principal: 'rate', tier: 'rate' },
      { principal: 'conc', tier: 'conc' },
    ],
    config: {
      redis: { url: redis.url },
      quotas: {
        plans: [
          { name: 'rate', limits: [{ scope: 'key', rpm: N }] },
          { name: 'conc', limits: [{ scope: 'key', concurrency: N }] },
        ],
      },
    },
  });
  for (const name of ['a', 'b']) {
    const socket = join(files.dir, `replica-${name}.sock`);
    const config = loadConfig(files.configFile, {
      INFERENCE_GATEWAY_SERVER__GRPC__SOCKET: socket,
      INFERENCE_GATEWAY_AUDIT__FILE: join(files.dir, `audit-${name}.jsonl`),
    });
    replicas.push(await startSidecar(config, { log: pino({ level: 'silent' }), processMetrics: false }));
    clients.push(new (clientConstructors().ExternalProcessor)(`unix:${socket}`, grpc.credentials.createInsecure()));
  }
});

after(async () => {
  for (const c of clients) c.close();
  for (const r of replicas) await r.shutdown('test over');
  await redis.stop();
});

const headers = (key: string): ProcessingRequestInput => ({
  request_headers: {
    headers: {
      headers: Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${key}` }).map(
        ([key, v]) => ({ key, raw_value: Buffer.from(v) }),
      ),
    },
  },
});
const body: ProcessingRequestInput = {
  request_body: { body: Buffer.from(JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] })), end_of_stream: true },
};

/** Sends headers + body; resolves with the body answer and the call (left open, like an in-flight request). */
function start(client: ExternalProcessorClient, principal: string, keys: Readonly<Record<string, string>> = files.keys) {
  const call = client.Process();
  call.on('error', () => undefined);
  const answers: ProcessingResponse[] = [];
  const second = new Promise<ProcessingResponse>((resolve) => {
    call.on('data', (r: ProcessingResponse) => {
      answers.push(r);
      if (answers.length === 2) resolve(r);
    });
  });
  call.write(headers(keys[principal] ?? ''));
  call.write(body);
  return { call, second };
}

const admitted = (r: ProcessingResponse): boolean => r.response === 'request_body';

test(`${N + 1} concurrent requests across two replicas against rpm ${N}: exactly ${N} admitted`, async () => {
  const runs = Array.from({ length: N + 1 }, (_, i) => start(clients[i % 2] as ExternalProcessorClient, 'rate'));
  const answers = await Promise.all(runs.map((r) => r.second));
  for (const r of runs) r.call.cancel();
  assert.equal(answers.filter(admitted).length, N);
  const refused = answers.filter((a) => !admitted(a));
  assert.equal(refused.length, 1);
  assert.equal(refused[0]?.immediate_response?.status?.code, 'TooManyRequests');
});

test(`${N + 1} concurrent in-flight requests across two replicas against concurrency ${N}: exactly ${N} admitted, and leases come back on cancel`, async () => {
  const runs = Array.from({ length: N + 1 }, (_, i) => start(clients[i % 2] as ExternalProcessorClient, 'conc'));
  const answers = await Promise.all(runs.map((r) => r.second));
  assert.equal(answers.filter(admitted).length, N);
  for (const r of runs) r.call.cancel();
  // Cancelled streams release their leases (the lease sets in Redis empty out), and then a new request is admitted.
  const admin = await adminClient(redis.url);
  try {
    const leasesHeld = async (): Promise<number> => {
      let held = 0;
      for (const key of await admin.keys('*')) if ((await admin.type(key)) === 'zset') held += await admin.zcard(key);
      return held;
    };
    await waitFor(async () => (await leasesHeld()) === 0, { what: 'the cancelled streams to release their leases', intervalMs: 20 });
  } finally {
    admin.disconnect();
  }
  const again = start(clients[0] as ExternalProcessorClient, 'conc');
  assert.ok(admitted(await again.second));
  again.call.cancel();
});

test('the same exactness with the quota store on a three-node Redis Cluster', async (t) => {
  const cluster = await startRedisCluster(3);
  t.after(() => cluster.stop());
  const clusterFiles = writeGatewayFiles({
    keys: [
      { principal: 'rate', tier: 'rate', org: 'org-a' },
      { principal: 'other', tier: 'rate', org: 'org-b' },
    ],
    config: {
      redis: { clusterNodes: cluster.nodes.map((n) => `${n.host}:${n.port}`) },
      quotas: {
        plans: [
          {
            name: 'rate',
            limits: [
              { scope: 'key', rpm: N, tpm: 1_000_000 },
              { scope: 'org', concurrency: 1000 },
            ],
          },
        ],
      },
    },
  });
  const sidecar = await startSidecar(loadConfig(clusterFiles.configFile, {}), { log: pino({ level: 'silent' }), processMetrics: false });
  t.after(() => sidecar.shutdown('test over'));
  const client = new (clientConstructors().ExternalProcessor)(`unix:${clusterFiles.socketPath}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const drive = (principal: string) => start(client, principal, clusterFiles.keys);
  for (const principal of ['rate', 'other']) {
    const runs = Array.from({ length: N + 1 }, () => drive(principal));
    const answers = await Promise.all(runs.map((r) => r.second));
    for (const r of runs) r.call.cancel();
    assert.equal(answers.filter(admitted).length, N, `${principal}: exactly ${N} admitted on the cluster`);
  }
});
