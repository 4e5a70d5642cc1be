/**
 * Routing snapshots over Redis through real Envoy: a signed snapshot
 * published with `inference-gateway snapshot publish` changes where the next
 * requests go, with no restart of the sidecar or Envoy; one written into
 * Redis without the control-plane key changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { generateSigningKey, signText, type SigningKey } from '../../src/crypto/signing.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { signedContent } from '../../src/control/snapshot.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { scrapeMetrics, startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
let redis: TestRedis;
let stack: TestStack;
let key: SigningKey;

function signed(version: string, issuedAt: string, model: string): string {
  const doc: Record<string, unknown> = { version, issuedAt, models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster: 'demo-upstream', model } }] };
  doc['signature'] = { kid: key.kid, sig: signText(key, signedContent(doc)) };
  return stringify(doc);
}

before(async () => {
  redis = await startRedis();
  stack = await startTestStack({
    withoutSidecar: true,
    config: { redis: { url: redis.url }, routing: { publicKeys: ['cp.pem.pub'], redis: {} } },
  });
  key = generateSigningKey(join(stack.files.dir, 'cp.pem'));
  // With publicKeys the file snapshot must be signed as well.
  writeFileSync(stack.files.snapshotFile, signed('file-1', '2026-01-01T00:00:00Z', 'file-model'));
  await stack.startSidecar();
});

after(async () => {
  await stack.stop();
  await redis.stop();
});

const upstreamModel = async (): Promise<string> => {
  await stack.client().chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'hi' }] });
  return (stack.upstream.requests.at(-1)?.body as { model: string }).model;
};

/** Sends requests until the upstream sees `want`; fails after `ms`. Returns the model seen. */
async function eventually(want: string, ms: number): Promise<string> {
  return waitFor(
    async () => {
      const got = await upstreamModel();
      return got === want ? got : undefined;
    },
    { what: `requests to reach model ${want}`, timeoutMs: ms, intervalMs: 50 },
  );
}

test('a published snapshot changes routing of real requests; one without the control-plane key does not', async () => {
  assert.equal(await upstreamModel(), 'file-model');

  const file = join(stack.files.dir, 'next.yaml');
  writeFileSync(file, signed('redis-1', '2026-02-01T00:00:00Z', 'redis-model'));
  const r = await run(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'snapshot', 'publish', '--redis', redis.url, file], { encoding: 'utf8' });
  assert.match(r.stdout, /\(1 subscriber notified\)/);
  assert.equal(await eventually('redis-model', 3000), 'redis-model');

  // Someone with Redis write access but without the control-plane key.
  const admin = await adminClient(redis.url);
  try {
    await admin
      .multi()
      .set(
        'igw:routing:snapshot',
        stringify({
          version: 'evil',
          issuedAt: '2026-03-01T00:00:00Z',
          models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'attacker-model' } }],
        }),
      )
      .publish('igw:routing:snapshot:published', 'evil')
      .exec();
  } finally {
    admin.disconnect();
  }
  const sidecar = stack.sidecar;
  assert.ok(sidecar !== null);
  const rejected = async () => (await scrapeMetrics(sidecar.adminUrl)).get('inference_gateway_routing_snapshot_rejections_total{source="redis"}') ?? 0;
  await waitFor(async () => (await rejected()) >= 1, { what: 'the unsigned snapshot to be refused', timeoutMs: 3000, intervalMs: 50 });
  assert.equal(await rejected(), 1, 'the unsigned snapshot was refused and counted');
  assert.equal(await upstreamModel(), 'redis-model', 'routing is unchanged');
});
