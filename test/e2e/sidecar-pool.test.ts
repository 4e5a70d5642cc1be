/**
 * Several sidecar processes behind one Envoy (one socket each: a Node process
 * uses one core). Envoy spreads the per-request gRPC streams over them; with
 * the quota store in Redis the limits stay exact across processes; a dead
 * process is taken out of rotation by outlier detection after a few failed
 * requests instead of failing every other one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { DEFAULT_MODELS, readAudit, writeGatewayFiles, type GatewayFiles } from '../helpers/fixtures.ts';
import { formatUnits, parseUnits } from '../../src/pipeline/cost.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { replica, startSidecarProcess, type SidecarProcess } from '../helpers/stack.ts';

let redis: TestRedis;
let upstream: DemoUpstream;
let files: GatewayFiles;
let envoy: EnvoyProcess;
let client: OpenAI;
const sidecars: SidecarProcess[] = [];
const socket = (i: number) => replica(files.dir, i).socket;
const auditFile = (i: number) => replica(files.dir, i).auditFile;
const processEnv = (i: number): Record<string, string> => replica(files.dir, i).env;

before(async () => {
  redis = await startRedis();
  upstream = await startDemoUpstream({ port: 0 });
  files = writeGatewayFiles({
    keys: [
      { principal: 'alice', tier: 'metered' },
      { principal: 'bob', tier: 'budgeted', tenant: 'spenders' },
    ],
    models: [
      ...DEFAULT_MODELS,
      // A flat fee and no token price: the most a request can cost is what it costs, so a budget admits an exact count.
      {
        id: 'fee-demo',
        endpoints: ['chat'],
        cluster: 'demo-upstream',
        model: 'demo-model',
        price: { inputPerMillion: '0', outputPerMillion: '0', perRequest: '0.01' },
      },
    ],
    config: {
      redis: { url: redis.url },
      quotas: {
        plans: [
          { name: 'metered', limits: [{ scope: 'key', rpm: 40 }] },
          { name: 'budgeted', limits: [{ scope: 'tenant', budgetDaily: '0.4' }] },
        ],
      },
    },
  });
  for (const i of [0, 1]) sidecars.push(await startSidecarProcess(files.configFile, processEnv(i)));
  envoy = await startEnvoy({
    workDir: join(files.dir, 'envoy'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: [socket(0), socket(1)],
      clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: upstream.port }],
    }),
  });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${await envoy.listenerPort()}/v1`, apiKey: files.keys['alice'] ?? '', maxRetries: 0 });
});

after(async () => {
  await envoy.stop();
  for (const s of sidecars) await s.stop();
  await upstream.close();
  await redis.stop();
});

const ask = () => client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });

test('streams are spread over both processes, and the Redis quota is exact across them', async () => {
  const outcomes = await Promise.allSettled(Array.from({ length: 60 }, () => ask()));
  const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
  const limited = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof OpenAI.APIError && o.reason.status === 429).length;
  assert.equal(ok, 40, 'rpm 40 admits exactly 40 of 60, whichever process decided');
  assert.equal(limited, 20);
  const per = [0, 1].map((i) => readAudit(auditFile(i)).length);
  assert.equal(per[0]! + per[1]!, 60, 'every request audited once, by the process that handled it');
  assert.ok(per[0]! >= 15 && per[1]! >= 15, `both processes took a share: ${per.join(' / ')}`);
});

test('a spend budget is exact across both processes: 0.4 admits 40 requests of 0.01 out of 60 sent at once, then budget_exceeded', async () => {
  const bob = new OpenAI({ baseURL: client.baseURL, apiKey: files.keys['bob'] ?? '', maxRetries: 0 });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 60 }, () => bob.chat.completions.create({ model: 'fee-demo', messages: [{ role: 'user', content: 'hi' }] })),
  );
  const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
  const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof OpenAI.APIError && o.reason.code === 'budget_exceeded').length;
  assert.equal(ok, 40, 'a budget of 0.4 admits exactly 40 requests of 0.01, whichever process decided');
  assert.equal(refused, 20);
  const spent = [0, 1]
    .flatMap((i) => readAudit(auditFile(i)) as unknown as Array<{ authorization: { tenant: string } | null; cost: { amount: string } | null }>)
    .filter((r) => r.authorization?.tenant === 'spenders' && r.cost !== null)
    .reduce((sum, r) => sum + (parseUnits(r.cost?.amount ?? '0') ?? 0n), 0n);
  assert.equal(formatUnits(spent), '0.4', 'the audited costs add up to the budget exactly');
});

test('a dead process is ejected after a few failures; the other serves the rest', async () => {
  const admin = await adminClient(redis.url);
  await admin.flushall(); // a fresh minute for the rpm limit
  admin.disconnect();
  await sidecars[1]!.kill();
  const results: Array<number | 'ok'> = [];
  for (let i = 0; i < 20; i++) {
    try {
      await ask();
      results.push('ok');
    } catch (err) {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.code, 'gateway_unavailable', 'requests on the dead process fail closed');
      results.push(err.status as number);
    }
  }
  const failed = results.filter((r) => r !== 'ok').length;
  assert.ok(failed <= 3, `at most 3 requests failed before ejection: ${results.join(',')}`);
  assert.ok(
    results.slice(-12).every((r) => r === 'ok'),
    `served after ejection: ${results.join(',')}`,
  );
});
