/**
 * `npm run bench:pipeline`: the sidecar's own work per request, without
 * Envoy, gRPC or HTTP/2 — the request processor with the real stages and
 * stores (API key from a key file, the quota plan of `npm run bench` on the
 * in-memory store or a private redis-server, classification, routing, the
 * audit chain on a file with the configured durability), driven in-process
 * through the four phases of a non-streaming chat request (request head,
 * body, response head, buffered 12-token completion).
 *
 *   npm run bench:pipeline -- [--quota none|memory|redis] [--durability fsync|write]
 *                             [--concurrency 32] [--seconds 5] [--cpu-prof DIR] [--hold N]
 *                             [--tracing off|RATIO --tracing-endpoint URL]
 *                             [--model gpt-demo|demo-model] [--prompt-chars N]
 *
 * --model demo-model asks for the deployment by its own name, so a plain
 * request's body goes upstream as sent (no re-serialization, no body
 * mutation); gpt-demo (the default) is an alias the body is rewritten for.
 * --prompt-chars sets the user message's length (default: one sentence).
 *
 * With --tracing RATIO the pipeline exports request spans (the OpenTelemetry
 * SDK, OTLP/HTTP protobuf) to the collector at --tracing-endpoint, sampling
 * RATIO of the requests; `npm run bench:tracing` compares it with tracing off.
 *
 * Reports µs of this process's CPU (all threads: process.cpuUsage) per
 * request, and requests/s, after a warm-up. `concurrency` requests are in
 * flight at once (the saturation phase of `npm run bench` has 32). With
 * --cpu-prof a V8 CPU profile of the measured part is written to DIR.
 *
 * With --hold N (run with `node --expose-gc`) it then opens N streaming
 * requests and leaves them open after two chunks each, and reports the V8 heap
 * they hold per request (after full collections): what the pipeline keeps
 * for an open stream, without the transport's share.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildPipeline } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { loadSnapshotFile, SnapshotHolder } from '../src/control/snapshot.ts';
import { NO_CONNECTION_INFO } from '../src/pipeline/identity.ts';
import { SnapshotRoutes } from '../src/stages/route/resolver.ts';
import { Metrics } from '../src/telemetry/metrics.ts';
import { DEFAULT_MODELS, writeGatewayFiles } from '../test/helpers/fixtures.ts';
import { bufferedChat, chatHead, expectContinue } from './lib/in-process.ts';
import { BENCH_PLAN } from './lib/plan.ts';
import { startRedis } from '../test/helpers/redis.ts';

const { values } = parseArgs({
  options: {
    quota: { type: 'string', default: 'redis' },
    durability: { type: 'string', default: 'fsync' },
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '5' },
    'cpu-prof': { type: 'string' },
    hold: { type: 'string', default: '0' },
    tracing: { type: 'string', default: 'off' },
    'tracing-endpoint': { type: 'string' },
    model: { type: 'string', default: 'gpt-demo' },
    'prompt-chars': { type: 'string' },
  },
});
const tracing = values.tracing === 'off' ? null : Number(values.tracing);
if (tracing !== null && !(tracing >= 0 && tracing <= 1)) throw new Error('--tracing must be off or a ratio between 0 and 1');
if (tracing !== null && values['tracing-endpoint'] === undefined) throw new Error('--tracing needs --tracing-endpoint URL');
const quota = values.quota;
if (quota !== 'none' && quota !== 'memory' && quota !== 'redis') throw new Error('--quota must be none, memory or redis');
const durability = values.durability;
if (durability !== 'fsync' && durability !== 'write') throw new Error('--durability must be fsync or write');
const concurrency = Number(values.concurrency);
const seconds = Number(values.seconds);

const redis = quota === 'redis' ? await startRedis() : null;
const model = values.model;
if (model !== 'gpt-demo' && model !== 'demo-model') throw new Error('--model must be gpt-demo or demo-model');
const files = writeGatewayFiles({
  keys: [{ principal: 'bench', tier: 'bench' }],
  models: [...DEFAULT_MODELS, { id: 'demo-model', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model' }],
  config: {
    logging: { level: 'warn' },
    audit: { durability },
    ...(quota === 'none' ? {} : { quotas: { plans: [BENCH_PLAN] } }),
    ...(redis === null ? {} : { redis: { url: redis.url } }),
    ...(tracing === null ? {} : { tracing: { enabled: true, endpoint: values['tracing-endpoint'], sampleRatio: tracing } }),
  },
});
const config = loadConfig(files.configFile);
const log = pino({ level: 'warn' });
const metrics = new Metrics({ processMetrics: false });
const routes = new SnapshotRoutes(new SnapshotHolder(loadSnapshotFile(config.routing.snapshotFile, { keys: new Map() })));
const pipeline = await buildPipeline(config, { log, metrics, routes });
const { processor } = pipeline;

const apiKey = files.keys.bench ?? '';
const SENTENCE = 'Write one short sentence about latency benchmarks. ';
const promptChars = values['prompt-chars'] === undefined ? SENTENCE.length - 1 : Number(values['prompt-chars']);
const prompt = SENTENCE.repeat(Math.ceil(promptChars / SENTENCE.length)).slice(0, promptChars);
const body = Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], max_tokens: 64 }));

async function oneRequest(): Promise<void> {
  await bufferedChat(processor, apiKey, body);
}

async function run(ms: number): Promise<{ requests: number; cpuUs: number; wallMs: number }> {
  const until = performance.now() + ms;
  let requests = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await oneRequest();
        requests++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { requests, cpuUs: cpu.user + cpu.system, wallMs: performance.now() - t0 };
}

await run(1500); // warm-up: JIT, caches, the first Redis connection
let session: Session | null = null;
if (values['cpu-prof'] !== undefined) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const r = await run(seconds * 1000);
if (session !== null && values['cpu-prof'] !== undefined) {
  const { profile } = await session.post('Profiler.stop');
  const dir = values['cpu-prof'];
  const file = join(dir, `pipeline-${Date.now()}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  process.stdout.write(`profile: ${file}\n`);
}
const hold = Number(values.hold);
if (hold > 0) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('--hold needs node --expose-gc');
  const streamBody = Buffer.from(
    JSON.stringify({
      model: 'gpt-demo',
      messages: [{ role: 'user', content: 'Write one short sentence about latency benchmarks.' }],
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  const chunk = (text: string): Buffer =>
    Buffer.from(
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'demo-model', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`,
    );
  const SSE_HEAD = new Map([
    [':status', '200'],
    ['content-type', 'text/event-stream'],
  ]);
  const open = async (): Promise<unknown> => {
    const { state, result } = await processor.requestHeaders(chatHead(apiKey, streamBody.length), false, NO_CONNECTION_INFO);
    expectContinue(result, 'request head');
    expectContinue(await processor.requestBody(state, streamBody), 'request body');
    expectContinue(await processor.responseHeaders(state, SSE_HEAD, false), 'response head');
    expectContinue(await processor.responseBody(state, chunk('Hello'), false), 'chunk');
    expectContinue(await processor.responseBody(state, chunk(' world'), false), 'chunk');
    return state;
  };
  const held: unknown[] = [];
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < hold; i++) held.push(await open());
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  process.stdout.write(`held ${held.length} open streaming requests: ${((after - before) / held.length / 1024).toFixed(1)} KB of heap each\n`);
}
await pipeline.close();
await redis?.stop();
rmSync(files.dir, { recursive: true, force: true });
process.stdout.write(
  `pipeline (quota ${quota}, audit ${durability}, tracing ${tracing ?? 'off'}, model ${model}, ${body.length}-byte body, ${concurrency} in flight): ${(r.cpuUs / r.requests).toFixed(1)} µs CPU per request, ` +
    `${Math.round(r.requests / (r.wallMs / 1000))} requests/s, ${r.requests} requests; Node ${process.version}\n`,
);
