/**
 * What a sidecar loads depends on its configuration (src/app.ts): a module
 * loaded once stays resident, so the default configuration must not load
 * the Redis client, jose, the OpenTelemetry SDK or proto-loader, and a
 * configuration that uses them must load them. Each case starts a sidecar in
 * a fresh process (test/helpers/loaded-packages.ts) and reads the npm
 * packages it loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeGatewayFiles } from '../helpers/fixtures.ts';

const CHILD = fileURLToPath(new URL('../helpers/loaded-packages.ts', import.meta.url));

/** Loaded only where the configuration asks for what they do. */
const OPTIONAL = [
  'ioredis',
  'jose',
  '@opentelemetry/sdk-trace',
  '@opentelemetry/otlp-transformer',
  '@opentelemetry/resources',
  '@grpc/proto-loader',
  'protobufjs',
];

async function loaded(config: Record<string, unknown>): Promise<{ packages: string[]; protoLoader: boolean }> {
  const files = writeGatewayFiles({ config });
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, files.configFile], { timeout: 60_000 });
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line !== undefined, `no report from the child: ${stdout}`);
  return JSON.parse(line) as { packages: string[]; protoLoader: boolean };
}

test('the default configuration loads none of the optional packages', async () => {
  const { packages, protoLoader } = await loaded({});
  for (const p of OPTIONAL) assert.ok(!packages.includes(p), `${p} loaded: ${packages.join(' ')}`);
  assert.equal(protoLoader, false);
  // The packages every sidecar needs are seen, so the hook does record loads.
  for (const p of ['yaml', 'zod', 'pino', 'prom-client']) assert.ok(packages.includes(p), `${p} not seen: ${packages.join(' ')}`);
});

test('JWT issuers, a token revocation list on Redis and tracing in the configuration load jose, ioredis and the OpenTelemetry SDK', async () => {
  const dir = writeGatewayFiles().dir;
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [] }));
  const { packages } = await loaded({
    // The revocation list is read with ioredis (the quota store alone would not load it: the next test).
    auth: { jwt: { issuers: [{ issuer: 'https://idp.test', audiences: ['gw'], jwksFile: jwks }] }, tokenRevocation: true },
    // Nothing listens there: the stores connect lazily and the sidecar starts without Redis.
    redis: { url: 'redis://127.0.0.1:1' },
    tracing: { enabled: true, endpoint: 'http://127.0.0.1:1/v1/traces' },
  });
  for (const p of ['jose', 'ioredis', '@opentelemetry/sdk-trace']) assert.ok(packages.includes(p), `${p} not loaded: ${packages.join(' ')}`);
});

test("quotas on a single Redis node use the store's own client: ioredis is not loaded; a Redis Cluster loads it", async () => {
  const plans = [{ name: 'p', limits: [{ scope: 'key', rpm: 100 }] }];
  // Nothing listens there: the stores connect lazily and the sidecar starts without Redis.
  const single = await loaded({ quotas: { plans }, redis: { url: 'redis://127.0.0.1:1' } });
  assert.ok(!single.packages.includes('ioredis'), `ioredis loaded: ${single.packages.join(' ')}`);
  const cluster = await loaded({ quotas: { plans }, redis: { clusterNodes: ['127.0.0.1:1'] } });
  assert.ok(cluster.packages.includes('ioredis'), `ioredis not loaded: ${cluster.packages.join(' ')}`);
});
