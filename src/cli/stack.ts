/**
 * `inference-gateway stack` (`npm start`): the whole gateway on one machine
 * with embedded defaults — Envoy on :8080, the sidecar (in-memory state,
 * local audit file) and the demo model server — for trying it out.
 * Files go to .run/stack/; the demo API key is kept there across restarts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.ts';
import { startDemoUpstream } from '../demo/upstream.ts';
import { findEnvoy, PROJECT_ROOT } from '../envoy/binary.ts';
import { renderGatewayConfig, type AggregateCluster, type UpstreamCluster } from '../envoy/config.ts';
import { startEnvoy } from '../envoy/process.ts';
import { startSidecar } from '../app.ts';
import { generateApiKey, hashApiKey, parseApiKey } from '../crypto/api-key-format.ts';
import { createLogger } from '../telemetry/logger.ts';
import { missingServices, seedDemoModels, startStackControlPlane, type StackControlPlane } from './stack-control-plane.ts';
import { renderWalkthrough } from './stack-walkthrough.ts';

/** The local stack's routing snapshot: three logical models on the demo server, which speaks both APIs. */
export const DEMO_SNAPSHOT = {
  version: 'local-demo-1',
  models: [
    // An OpenAI-compatible deployment: OpenAI clients as is, Anthropic clients (messages) translated.
    // Prices (per million tokens, USD) make every record carry a cost (docs/cost.md); they are examples, not anyone's list price.
    {
      id: 'gpt-demo',
      endpoints: ['chat', 'completions', 'messages'],
      target: { cluster: 'demo-upstream', model: 'demo-model', price: { inputPerMillion: '0.5', outputPerMillion: '1.5' } },
    },
    { id: 'embed-demo', endpoints: ['embeddings'], target: { cluster: 'demo-upstream', model: 'demo-embedder' } },
    // An Anthropic Messages deployment: Anthropic clients as is, OpenAI clients (chat) translated.
    {
      id: 'claude-demo',
      endpoints: ['messages', 'count_tokens', 'chat'],
      target: {
        cluster: 'demo-upstream',
        model: 'demo-claude',
        provider: 'anthropic',
        price: { inputPerMillion: '3', cachedInputPerMillion: '0.3', outputPerMillion: '15' },
      },
    },
    // Fallback across providers: an Anthropic deployment that is always overloaded (529), then the OpenAI-compatible one.
    // Envoy retries the failed attempt on the next member of the aggregate cluster; the sidecar rewrites each attempt for its member.
    {
      id: 'ha-demo',
      endpoints: ['chat', 'messages'],
      target: {
        cluster: 'demo-overloaded',
        model: 'demo-fail-529',
        provider: 'anthropic',
        fallback: { cluster: 'demo-failover', to: [{ cluster: 'demo-upstream', model: 'demo-model' }] },
      },
    },
  ],
};

/** The stack's Envoy clusters: the demo server (twice: the fallback chain's members are told apart by cluster) and the failover aggregate. */
export function demoClusters(upstreamPort: number): Array<UpstreamCluster | AggregateCluster> {
  return [
    { name: 'demo-upstream', host: '127.0.0.1', port: upstreamPort },
    { name: 'demo-overloaded', host: '127.0.0.1', port: upstreamPort },
    { name: 'demo-failover', aggregate: ['demo-overloaded', 'demo-upstream'] },
  ];
}

const HELP = `Usage: inference-gateway stack [--port 8080] [--upstream-port 8000] [--admin-port 9464] [--envoy-admin-port 9901]
                              [--dir .run/stack]
                              [--control-plane [--control-plane-port 9470] [--xds-port 18000] [--redis-port 6380] [--postgres-port 5433]]
  Starts Envoy, the sidecar and the demo model server; Ctrl+C stops all three.
  --dir            where the stack keeps its files (the demo key, configs, audit logs)
  --control-plane  also starts a private PostgreSQL and redis-server and the control plane (admin API, xDS for Envoy);
                   the sidecar takes snapshots and keys from Redis, Envoy its clusters from the control plane, and
                   <dir>/admin-token holds an admin token (12 h). Needs PostgreSQL and redis-server installed.
`;

export async function stackCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      'upstream-port': { type: 'string', default: '8000' },
      'admin-port': { type: 'string', default: '9464' },
      'envoy-admin-port': { type: 'string', default: '9901' },
      dir: { type: 'string', default: join(PROJECT_ROOT, '.run', 'stack') },
      'control-plane': { type: 'boolean', default: false },
      'control-plane-port': { type: 'string', default: '9470' },
      'xds-port': { type: 'string', default: '18000' },
      'redis-port': { type: 'string', default: '6380' },
      'postgres-port': { type: 'string', default: '5433' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  const dir = resolve(values.dir);
  const say = (msg: string) => process.stdout.write(`${msg}\n`);
  const withControlPlane = values['control-plane'];
  if (withControlPlane) {
    // No silent fallback to the in-memory stack: the operator asked for the control plane.
    const missing = missingServices();
    if (missing.length > 0) {
      process.stderr.write(`stack --control-plane cannot start:\n${missing.map((m) => `  - ${m}\n`).join('')}`);
      return 1;
    }
  }
  mkdirSync(dir, { recursive: true });

  const envoyBin = await findEnvoy({ install: true, log: (m) => say(`[stack] ${m}`) });
  const key = demoKey(join(dir, 'demo-api-key'));
  const snapshotFile = join(dir, 'routing.yaml');
  const upstream = await startDemoUpstream({ host: '127.0.0.1', port: Number(values['upstream-port']), record: false });
  const log = createLogger('info');
  let cp: StackControlPlane | null = null;
  if (withControlPlane) {
    try {
      cp = await startStackControlPlane({
        dir,
        redisPort: Number(values['redis-port']),
        postgresPort: Number(values['postgres-port']),
        adminPort: Number(values['control-plane-port']),
        xdsPort: Number(values['xds-port']),
        staticClusters: demoClusters(upstream.port).map((c) => c.name),
        demoSnapshot: DEMO_SNAPSHOT,
        log,
        say,
      });
    } catch (err) {
      await upstream.close();
      throw err;
    }
  }
  writeFileSync(snapshotFile, cp === null ? stringify(DEMO_SNAPSHOT) : cp.signedDemoSnapshot);
  const socket = join(dir, 'sidecar.sock');
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(
    configFile,
    stringify({
      server: { grpc: { socket }, admin: { port: Number(values['admin-port']) } },
      auth: {
        apiKeys: [
          { id: parseKeyId(key), hash: hashApiKey(key), principal: 'demo-user', org: 'demo-org', tenant: 'demo-tenant', tier: 'standard', models: ['*'] },
        ],
        // With the control plane, the keys it creates reach the sidecar through Redis.
        ...(cp === null ? {} : { redisKeys: true }),
      },
      ...(cp === null ? {} : { redis: { url: cp.redisUrl } }),
      // With the control plane, snapshots signed by it arrive over Redis; the file holds the demo one until then.
      routing: cp === null ? { snapshotFile } : { snapshotFile, publicKeys: [cp.snapshotPublicKey], redis: {} },
      audit: { file: join(dir, 'audit.jsonl') },
      logging: { level: 'info' },
      // A demo plan and policy so the stack shows quotas and the data policy at work.
      quotas: {
        plans: [
          {
            name: 'standard',
            limits: [
              { scope: 'key', rpm: 600, concurrency: 16 },
              { scope: 'tenant', tpm: 200_000 },
            ],
          },
        ],
      },
      policy: {
        version: 'local-demo-1',
        rules: [
          { name: 'no-secrets', classes: ['SECRET'], action: 'deny' },
          { name: 'redact-cards', classes: ['PCI'], action: 'redact' },
        ],
      },
    }),
  );

  const config = loadConfig(configFile);
  const sidecar = await startSidecar(config, { log: createLogger(config.logging.level) });
  if (cp !== null) await seedDemoModels(cp.adminUrl, cp.token, `127.0.0.1:${upstream.port}`);
  const envoy = await startEnvoy({
    bin: envoyBin,
    workDir: join(dir, 'envoy'),
    configYaml: renderGatewayConfig({
      listenerPort: port,
      adminPort: Number(values['envoy-admin-port']),
      sidecarSocket: socket,
      clusters: demoClusters(upstream.port),
      // With the control plane, Envoy also takes clusters from it over xDS (the demo clusters stay static).
      ...(cp === null ? {} : { xds: { host: '127.0.0.1', port: cp.xdsPort } }),
    }),
    log: (line) => process.stderr.write(`[envoy] ${line}\n`),
  });

  const base = `http://127.0.0.1:${port}`;
  say(`
Inference Gateway is running (Envoy → sidecar → demo model server):

  base URL   ${base}/v1
  API key    ${key}
  models     gpt-demo (an OpenAI-compatible deployment), claude-demo (an Anthropic Messages one), embed-demo (embeddings);
             either client API reaches either chat model: the gateway translates when they differ;
             ha-demo falls back across providers: its Anthropic deployment always answers 529, Envoy retries
             the OpenAI-compatible one, and the audit record lists both attempts
  metrics    http://127.0.0.1:${sidecar.adminPort}/metrics
  audit log  ${relative(process.cwd(), config.audit.file)}  (check it: npx inference-gateway audit verify --keys ${relative(process.cwd(), config.audit.signingKeyFile)}.pub ${relative(process.cwd(), config.audit.file)})
  demo plan  600 requests/min, 16 concurrent per key; 200k tokens/min per tenant (see the x-ratelimit-* headers)
  policy     card numbers redacted, secrets refused (try "my card is 4111 1111 1111 1111")

Try it:
  curl -s ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H 'content-type: application/json' \\
    -d '{"model":"gpt-demo","messages":[{"role":"user","content":"Hello there"}]}'

  or with the OpenAI SDK: new OpenAI({ baseURL: '${base}/v1', apiKey: '${key}' })

  curl -s ${base}/v1/messages \\
    -H "x-api-key: ${key}" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\
    -d '{"model":"claude-demo","max_tokens":64,"messages":[{"role":"user","content":"Hello there"}]}'

  or with the Anthropic SDK: new Anthropic({ baseURL: '${base}', apiKey: '${key}' })

Press Ctrl+C to stop.`);
  if (cp !== null) {
    // Paths as the reader's shell sees them: relative below the working directory, else absolute.
    const shown = (p: string): string => {
      const r = relative(process.cwd(), p);
      return r === '' ? '.' : r.startsWith('..') ? p : r;
    };
    const places = { adminUrl: cp.adminUrl, baseUrl: base, upstreamAddress: `127.0.0.1:${upstream.port}`, dir: shown(dir) };
    say(`
The control plane is running too (PostgreSQL and Redis under ${shown(dir)}):

  admin API    ${cp.adminUrl}/v1  (OpenAPI: ${cp.adminUrl}/v1/openapi.json)
  admin token  ${shown(cp.tokenFile)}  (valid 12 h, a new one at every start; send it as "Authorization: Bearer …")
  models       gpt-demo, claude-demo and embed-demo are control plane resources now; ha-demo is not served in this mode

Register a model, add a backend and create a key at runtime, then call it:

${renderWalkthrough(places)}
`);
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  say('\nstopping…');
  await envoy.stop();
  await sidecar.shutdown('stack stopped');
  await cp?.stop();
  await upstream.close();
  return 0;
}

/** The demo key survives restarts so a copied curl command keeps working. */
function demoKey(file: string): string {
  if (existsSync(file)) {
    const saved = readFileSync(file, 'utf8').trim();
    if (parseApiKey(saved).ok) return saved;
  }
  const k = generateApiKey();
  writeFileSync(file, `${k.key}\n`, { mode: 0o600 });
  return k.key;
}

function parseKeyId(key: string): string {
  const parsed = parseApiKey(key);
  if (!parsed.ok) throw new Error('demo key is malformed');
  return parsed.id;
}
