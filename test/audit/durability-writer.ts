/**
 * A child process that writes audit records the way the sidecar does: the
 * config is loaded with loadConfig and the chain built by createAuditChain
 * (src/stores/audit/index.ts), so `audit.sink` and `audit.durability` take
 * the same path as in `inference-gateway serve`. `CONCURRENCY` appenders run
 * until the process is killed; each prints `ack <requestId>` once its append
 * resolved (the moment a request would have been answered) and `fail <id>`
 * when it rejected (the request would have failed closed). stdout is a pipe,
 * written synchronously on Linux: a line the parent read was printed before
 * any kill. SIGTERM closes the chain (final checkpoint) and exits 0.
 *
 *   node test/audit/durability-writer.ts CONFIG_FILE [CONCURRENCY]
 */
import { loadConfig } from '../../src/config/load.ts';
import { createAuditChain } from '../../src/stores/audit/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

const [configFile, concurrencyArg] = process.argv.slice(2);
if (configFile === undefined) throw new Error('usage: durability-writer.ts CONFIG_FILE [CONCURRENCY]');
const config = loadConfig(configFile);
const log = createLogger('warn', process.stderr);
const chain = await createAuditChain(config, log);
const prefix = `${process.pid}-${Date.now()}`;
let next = 0;
let running = true;

function record(requestId: string): object {
  return {
    v: 1,
    requestId,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    startedAt: new Date().toISOString(),
    endedAt: new Date().toISOString(),
    method: 'POST',
    path: '/v1/chat/completions',
    endpoint: 'chat',
    identity: { methods: ['api_key'], principal: 'alice', keyId: 'AbCdEfGh', jwt: null, mtls: null },
    authorization: { org: 'acme', tenant: 'research', tier: 'standard', roles: [] },
    classification: { classes: {} },
    decision: { action: 'permit', code: null, policyVersion: null },
    model: 'gpt-demo',
    deployment: { cluster: 'demo-upstream', model: 'demo-model' },
    snapshotVersion: 'v1',
    status: 200,
    outcome: 'completed',
    latencyMs: { total: 4, firstByte: 2, firstToken: null },
    usage: { promptTokens: 12, completionTokens: 12, cachedPromptTokens: 0, source: 'counted' },
    quota: null,
  };
}

const workers = Array.from({ length: Number(concurrencyArg ?? 16) }, async () => {
  while (running) {
    const id = `${prefix}-${next++}`;
    try {
      await chain.append(record(id));
      process.stdout.write(`ack ${id}\n`);
    } catch {
      process.stdout.write(`fail ${id}\n`);
      // A failing sink (e.g. a replica gone) must not spin the CPU: the next try comes on a later turn.
      await new Promise((r) => setImmediate(r));
    }
  }
});

process.once('SIGTERM', () => {
  running = false;
  void Promise.all(workers)
    .then(() => chain.close())
    .then(() => process.exit(0));
});
process.stdout.write('ready\n');
