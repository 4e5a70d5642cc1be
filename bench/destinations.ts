/**
 * `npm run bench:destinations`: the sidecar CPU that destination rules add to
 * a request (issue 18: ≤ 5 µs). Two in-process pipelines (as in
 * `npm run bench:pipeline`: the real stages, quota off, the audit chain on a
 * file written without fsync) over the same routing snapshot — a split
 * between an EU and a US deployment with trust attributes — one without
 * `policy.destinations`, one with three rules of which the caller's tenant
 * (`eu-bench`) makes one apply and constrain the pick. Requests go one at a
 * time (no overlap to blur the CPU), in rounds that alternate between the two
 * pipelines; the figure is the median over rounds of (with − without) µs of
 * this process's CPU per request, so drift on a shared machine hits both
 * sides of each pair alike.
 *
 *   npm run bench:destinations -- [--rounds 61] [--requests 2000] [--out FILE]
 *
 * It also times the decision alone (the rules that apply, the authorized
 * targets, the weighted pick among them) in a tight loop, a figure free of
 * the pipeline's noise. --out appends the summary line to FILE.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildPipeline, type Pipeline } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { loadSnapshotFile, SnapshotHolder } from '../src/control/snapshot.ts';
import { authorizeRoute } from '../src/pipeline/destinations.ts';
import { DestinationPolicy } from '../src/stages/policy/destinations.ts';
import { pickAmong, SnapshotRoutes } from '../src/stages/route/resolver.ts';
import { Metrics } from '../src/telemetry/metrics.ts';
import { writeGatewayFiles } from '../test/helpers/fixtures.ts';
import { bufferedChat } from './lib/in-process.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '61' },
    requests: { type: 'string', default: '2000' },
    out: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const perRound = Number(values.requests);
if (!Number.isSafeInteger(rounds) || rounds < 1 || !Number.isSafeInteger(perRound) || perRound < 1)
  throw new Error('--rounds and --requests must be positive integers');

const RULES = [
  { name: 'phi-hipaa', match: { classes: ['PHI'] }, require: { attestations: ['hipaa'], hosting: ['on-prem', 'private'] } },
  { name: 'eu-residency', match: { tenants: ['eu-*'] }, require: { residency: ['eu'] } },
  { name: 'secret-not-hosted', match: { classes: ['SECRET'] }, forbid: { hosting: ['hosted'] } },
];
const ROUTING = {
  targets: [
    { id: 'eu-1', cluster: 'demo-upstream', model: 'demo-model', weight: 1, trust: { hosting: 'private', residency: 'eu', region: 'eu-central-1' } },
    { id: 'us-1', cluster: 'us-pool', model: 'demo-model', weight: 3, trust: { hosting: 'hosted', residency: 'us', region: 'us-east-1' } },
  ],
};

async function pipelineWith(destinations: object[]): Promise<{ pipeline: Pipeline; key: string; dir: string }> {
  const files = writeGatewayFiles({
    keys: [{ principal: 'bench', tier: 'bench', tenant: 'eu-bench' }],
    models: [{ id: 'gpt-demo', endpoints: ['chat'], cluster: '', model: '', routing: ROUTING }],
    config: { logging: { level: 'warn' }, audit: { durability: 'write' }, policy: { destinations } },
  });
  const config = loadConfig(files.configFile);
  const routes = new SnapshotRoutes(new SnapshotHolder(loadSnapshotFile(config.routing.snapshotFile, { keys: new Map() })));
  const pipeline = await buildPipeline(config, { log: pino({ level: 'warn' }), metrics: new Metrics({ processMetrics: false }), routes });
  return { pipeline, key: files.keys.bench ?? '', dir: files.dir };
}

const body = Buffer.from(
  JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: 'Write one short sentence about latency benchmarks.' }], max_tokens: 64 }),
);
/** One buffered chat request; returns the cluster it was sent to. */
async function oneRequest(p: Pipeline, key: string): Promise<string> {
  const sent = await bufferedChat(p.processor, key, body);
  return sent.kind === 'continue' ? (new Map(sent.headers?.set ?? []).get('x-gateway-target-cluster') ?? '') : '';
}

async function round(p: Pipeline, key: string): Promise<{ usPerRequest: number; clusters: Set<string> }> {
  const clusters = new Set<string>();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < perRound; i++) clusters.add(await oneRequest(p, key));
  const cpu = process.cpuUsage(cpu0);
  return { usPerRequest: (cpu.user + cpu.system) / perRound, clusters };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const without = await pipelineWith([]);
const withRules = await pipelineWith(RULES);
// Warm-up: JIT and caches on both sides.
for (let i = 0; i < 3; i++) {
  await round(without.pipeline, without.key);
  await round(withRules.pipeline, withRules.key);
}
const offUs: number[] = [];
const onUs: number[] = [];
const diffs: number[] = [];
const routedOn = new Set<string>();
for (let r = 0; r < rounds; r++) {
  // Alternate which side goes first, so neither always follows the other.
  const first = r % 2 === 0;
  const a = first ? await round(without.pipeline, without.key) : null;
  const b = await round(withRules.pipeline, withRules.key);
  const c = first ? null : await round(without.pipeline, without.key);
  const off = (a ?? c) as { usPerRequest: number };
  offUs.push(off.usPerRequest);
  onUs.push(b.usPerRequest);
  diffs.push(b.usPerRequest - off.usPerRequest);
  for (const cl of b.clusters) routedOn.add(cl);
}
// The rules did constrain: the EU tenant's requests all went to the EU deployment.
if (routedOn.size !== 1 || !routedOn.has('demo-upstream')) throw new Error(`with rules the EU tenant was routed to ${[...routedOn].join(', ')}`);

// The decision alone: what the processor adds between classification and the pick.
const cfg = loadConfig(withRules.dir + '/gateway.yaml');
const policy = new DestinationPolicy(cfg.policy);
const route = loadSnapshotFile(cfg.routing.snapshotFile).models.get('gpt-demo');
if (route === undefined) throw new Error('no route');
const subject = { endpoint: 'chat' as const, model: 'gpt-demo', tenant: 'eu-bench', org: 'acme', roles: [] };
const sent = new Set<string>();
const LOOPS = 1_000_000;
let sink = 0;
const t0 = process.cpuUsage();
for (let i = 0; i < LOOPS; i++) {
  const rules = policy.rulesFor(subject, sent);
  const auth = authorizeRoute(route, rules);
  sink += pickAmong(route, auth.targets, (i % 100) / 100).weight;
}
const t1 = process.cpuUsage(t0);
const decisionNs = ((t1.user + t1.system) * 1000) / LOOPS;
if (sink === 0) throw new Error('unreachable');

await without.pipeline.close();
await withRules.pipeline.close();
rmSync(without.dir, { recursive: true, force: true });
rmSync(withRules.dir, { recursive: true, force: true });

const line =
  `${new Date().toISOString()} destinations (${rounds} rounds of ${perRound} sequential requests, ${cpus().length} cores, Node ${process.version}): ` +
  `median CPU per request without rules ${median(offUs).toFixed(1)} µs, with ${median(onUs).toFixed(1)} µs; ` +
  `median paired difference ${median(diffs) >= 0 ? '+' : ''}${median(diffs).toFixed(1)} µs (target ≤ +5 µs); ` +
  `the decision alone ${decisionNs.toFixed(0)} ns per request\n`;
process.stdout.write(line);
if (values.out !== undefined) appendFileSync(values.out, line);
