/**
 * `npm run bench`: plain Envoy (A), Envoy with a zero-work ext_proc server
 * (F, the floor) and the gateway (B: Envoy + ext_proc sidecar) in one run, on
 * the same machine, with the same requests.
 *
 *   A  load generator → Envoy (no ext_proc)                 → demo upstream
 *   F  load generator → Envoy (ext_proc) ⇄ zero-work server → demo upstream
 *   B  load generator → Envoy (ext_proc) ⇄ sidecar          → demo upstream
 *
 * The demo upstream, the ext_proc servers and the load generator are separate
 * processes; Envoy runs with --concurrency 1. Per system and scenario it
 * measures latency at a fixed request rate (open loop, latency from each
 * request's scheduled send time), throughput at saturation (closed loop), the
 * CPU time each process spent per request (from /proc), and for streams the
 * gaps between chunks and the ext_proc server's CPU per chunk; then the ext_proc
 * servers' RSS with many streams open. See docs/benchmarks.md for how to read
 * the output.
 */
import { once } from 'node:events';
import { createReadStream, existsSync, rmSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { envoyVersion, findEnvoy, PROJECT_ROOT } from '../src/envoy/binary.ts';
import { DEMO_CLUSTER, renderGatewayConfig, renderPlainConfig } from '../src/envoy/config.ts';
import { startEnvoy } from '../src/envoy/process.ts';
import type { EnvoyProcess } from '../src/envoy/process.ts';
import { DEFAULT_MODELS, writeGatewayFiles } from '../test/helpers/fixtures.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { cpuDeltaMs, machineBusyPercentOfCore, readAllProcesses, readMachineCpu, readProcCpu, topOthers } from './lib/cpu.ts';
import type { MachineCpu, ProcCpu } from './lib/cpu.ts';
import { buildRequest } from './lib/http1.ts';
import { BENCH_PLAN } from './lib/plan.ts';
import { machineInfo } from './lib/machine.ts';
import { freePort, killAllChildren, runLoadgen, startFloorProcess, startSidecarProcess, startUpstreamProcess } from './lib/procs.ts';
import type { BodyCheck, PhaseSpec } from './lib/protocol.ts';
import { markdownSection, textReport } from './lib/report.ts';
import { RESULTS_SCHEMA, SYSTEM_KEYS } from './lib/results.ts';
import type {
  BenchOptions,
  BenchResults,
  Check,
  CpuFigure,
  HeldRss,
  MeasuredPhase,
  ProcessName,
  ScenarioResults,
  SystemKey,
  SystemResults,
} from './lib/results.ts';
import { readRssMb } from './lib/rss.ts';

const HELP = `Usage: npm run bench -- [options]     (or: node bench/run.ts [options])

Compares plain Envoy (A), Envoy + a zero-work ext_proc server (F, the floor)
and the gateway (B: Envoy + sidecar) in one run.

Options:
  --quick                 ~1 min smoke run (0.3 s warm-up, 1.5 s phases, 200 held streams); does not touch docs/
  --check                 CI mode: verify the whole set-up works (every response 200,
                          the sidecar audited every request, ...); exit 0 only if so.
                          Writes no files unless --out/--docs are given.
  --connections N         saturation phase connections (default 32)
  --warmup S              warm-up before each phase, seconds (default 2; quick 0.3)
  --duration S            saturation phase, seconds (default 8; quick 1.5)
  --rate R                fixed-rate phase, requests/s (default 300)
  --rate-duration S       fixed-rate and paced phases, seconds (default 10; quick 1.5)
  --paced-rate R          streaming scenarios' paced phases, requests/s (default 100)
  --chunk-delay MS        paced phases: the upstream's pause between stream events (default 5)
  --short-words N         paced phases: the short reply, tokens (default 12)
  --long-words N          paced phases: the long reply, tokens (default 60); per-chunk CPU is the
                          difference between the two divided by the extra events
  --hold-streams N        streams held open at once for the loaded RSS (default 1000; quick 200; 0: skip)
  --hold S                how long they are held, seconds (default 1)
  --timeout S             per-request timeout, seconds (default 10)
  --scenarios LIST        comma-separated: chat,chat-stream,chat-as-sent,chat-translated,chat-stream-translated,chat-chain
                          (default chat,chat-stream)
  --out FILE              results JSON (default bench/results/<date>.json)
  --no-results            do not write a results JSON
  --docs / --no-docs      append the figures to docs/benchmarks.md (default: on for full runs)
  --quota none|memory|redis
                          the gateway also applies a quota plan (rps, rpm, tpm, tpd and
                          concurrency, never reached) on every request, with the in-memory
                          store or a private redis-server (default redis: the full pipeline
                          issue #15 measures; none leaves the quota stage out)
  --audit-durability M    the sidecar's audit.durability: fsync (the default, as shipped) or write
  --sidecar-node-args=S   options for the sidecar's node, e.g. --sidecar-node-args=--max-semi-space-size=4
                          (the memory/CPU trade-off in docs/benchmarks.md)
  --verbose               show Envoy/sidecar/upstream output
  --from FILE             run nothing: print the table of a saved results JSON
                          (with --docs: append its section to docs/benchmarks.md)
  -h, --help              this help
`;

interface Scenario {
  name: string;
  description: string;
  stream: boolean;
  check: BodyCheck;
  body: string;
}

const PROMPT = 'Write one short sentence about latency benchmarks.';
const SCENARIOS: Scenario[] = [
  {
    name: 'chat',
    description: 'POST /v1/chat/completions, non-streaming, small prompt (12-token reply)',
    stream: false,
    check: 'chat-json',
    body: JSON.stringify({ model: 'gpt-demo', messages: [{ role: 'user', content: PROMPT }], max_tokens: 64 }),
  },
  {
    name: 'chat-stream',
    description: 'POST /v1/chat/completions, stream: true (SSE, 12 content chunks + usage + [DONE])',
    stream: true,
    check: 'chat-sse',
    body: JSON.stringify({
      model: 'gpt-demo',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    }),
  },
  // The same requests for a model whose deployment speaks Anthropic's Messages API: the sidecar translates
  // the request and the answer (plain Envoy A sends them to the demo's OpenAI endpoint as they are).
  {
    name: 'chat-translated',
    description: 'POST /v1/chat/completions, non-streaming, served by an Anthropic Messages deployment (translated both ways)',
    stream: false,
    check: 'chat-json',
    body: JSON.stringify({ model: 'claude-translated', messages: [{ role: 'user', content: PROMPT }], max_tokens: 64 }),
  },
  {
    name: 'chat-stream-translated',
    description: 'POST /v1/chat/completions, stream: true, served by an Anthropic Messages deployment (its events re-framed as chunks)',
    stream: true,
    check: 'chat-sse',
    body: JSON.stringify({
      model: 'claude-translated',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    }),
  },
  // The model asked for by the deployment's own name: nothing in the body changes, so the sidecar sends the client's
  // bytes on (no body mutation, no content-length) and the answer, naming the same model, is passed on untouched.
  {
    name: 'chat-as-sent',
    description: 'POST /v1/chat/completions, non-streaming, the model by its deployment name (request and response bodies passed on as sent)',
    stream: false,
    check: 'chat-json',
    body: JSON.stringify({ model: 'demo-model', messages: [{ role: 'user', content: PROMPT }], max_tokens: 64 }),
  },
  // A target with a fallback chain whose first member answers: the steady-state price of a chain, i.e. the
  // aggregate's upstream ext_proc stream each attempt opens (its member's body, path and credential).
  {
    name: 'chat-chain',
    description: 'POST /v1/chat/completions, non-streaming, a target with a fallback chain (first member answers; one per-attempt ext_proc stream)',
    stream: false,
    check: 'chat-json',
    body: JSON.stringify({ model: 'gpt-chain', messages: [{ role: 'user', content: PROMPT }], max_tokens: 64 }),
  },
];

/** The chat-chain scenario's clusters: its first member (the demo server under another name) and the aggregate. */
const CHAIN_PRIMARY = 'bench-chain-primary';
const CHAIN_AGGREGATE = 'bench-chain';

/** What a run measures unless --scenarios says otherwise (the translated ones are opt-in: they double the run time). */
const DEFAULT_SCENARIOS = ['chat', 'chat-stream'];

const say = (msg: string): void => {
  process.stdout.write(`${msg}\n`);
};
const warn = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Bad command line: reported without a stack trace. */
class UsageError extends Error {}

function parseDurability(raw: string | undefined): 'fsync' | 'write' {
  if (raw === undefined || raw === 'fsync' || raw === 'write') return raw ?? 'fsync';
  throw new UsageError(`--audit-durability must be fsync or write, got "${raw}"`);
}

function parseQuota(raw: string | undefined): 'none' | 'memory' | 'redis' {
  if (raw === undefined || raw === 'none' || raw === 'memory' || raw === 'redis') return raw ?? 'redis';
  throw new UsageError(`--quota must be none, memory or redis, got "${raw}"`);
}

function parseOptions(argv: string[]): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      check: { type: 'boolean' },
      connections: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      'rate-duration': { type: 'string' },
      'paced-rate': { type: 'string' },
      'chunk-delay': { type: 'string' },
      'short-words': { type: 'string' },
      'long-words': { type: 'string' },
      'hold-streams': { type: 'string' },
      hold: { type: 'string' },
      timeout: { type: 'string' },
      scenarios: { type: 'string' },
      out: { type: 'string' },
      'no-results': { type: 'boolean' },
      docs: { type: 'boolean' },
      'no-docs': { type: 'boolean' },
      verbose: { type: 'boolean' },
      quota: { type: 'string' },
      'audit-durability': { type: 'string' },
      'sidecar-node-args': { type: 'string' },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return null;
  }
  const quick = values.quick === true;
  const check = values.check === true;
  const num = (name: string, raw: string | undefined, dflt: number, min: number, max: number): number => {
    if (raw === undefined) return dflt;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${raw}"`);
    return v;
  };
  const scenarios = (values.scenarios ?? DEFAULT_SCENARIOS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of scenarios) {
    if (!SCENARIOS.some((x) => x.name === s)) throw new UsageError(`unknown scenario "${s}" (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  }
  if (scenarios.length === 0) throw new UsageError('--scenarios: name at least one scenario');
  const writeResults = values['no-results'] !== true && (!check || values.out !== undefined);
  const opts: BenchOptions = {
    quick,
    check,
    connections: Math.round(num('connections', values.connections, 32, 1, 1000)),
    warmupS: num('warmup', values.warmup, quick ? 0.3 : 2, 0, 60),
    durationS: num('duration', values.duration, quick ? 1.5 : 8, 0.5, 600),
    rate: num('rate', values.rate, 300, 1, 100_000),
    rateDurationS: num('rate-duration', values['rate-duration'], quick ? 1.5 : 10, 0.5, 600),
    pacedRate: num('paced-rate', values['paced-rate'], 100, 1, 10_000),
    chunkDelayMs: Math.round(num('chunk-delay', values['chunk-delay'], 5, 1, 1000)),
    shortWords: Math.round(num('short-words', values['short-words'], 12, 1, 8192)),
    longWords: Math.round(num('long-words', values['long-words'], 60, 2, 8192)),
    holdStreams: Math.round(num('hold-streams', values['hold-streams'], quick ? 200 : 1000, 0, 5000)),
    holdMs: num('hold', values.hold, 1, 0.1, 60) * 1000,
    timeoutS: num('timeout', values.timeout, 10, 0.1, 120),
    scenarios,
    out: writeResults ? (values.out ?? '') : null,
    docs: values['no-docs'] === true ? false : values.docs === true ? true : !quick && !check,
    verbose: values.verbose === true,
    from: values.from ?? null,
    quota: parseQuota(values.quota),
    auditDurability: parseDurability(values['audit-durability']),
    sidecarNodeArgs: (values['sidecar-node-args'] ?? '').split(' ').filter((a) => a !== ''),
  };
  if (opts.longWords <= opts.shortWords) throw new UsageError('--long-words must be more than --short-words');
  return opts;
}

// ---------------------------------------------------------------- clean-up

const cleanups: Array<() => Promise<void>> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let fn = cleanups.pop(); fn !== undefined; fn = cleanups.pop()) {
      try {
        await fn();
      } catch (err) {
        warn(`clean-up: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

// Temp folders go even if the process dies without running the clean-ups.
const tempDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
// A closed stdout (e.g. `| head`) must not crash the run half-way.
process.stdout.on('error', () => undefined);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    warn(`\nbench: ${sig}: stopping everything`);
    killAllChildren();
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------- measuring

interface System {
  key: SystemKey;
  envoy: EnvoyProcess;
  port: number;
  /** Processes whose CPU is read for this system. */
  pids: Partial<Record<ProcessName, number>>;
}

interface Snapshot {
  at: number;
  procs: Partial<Record<ProcessName, ProcCpu>>;
  machine: MachineCpu;
  all: ReturnType<typeof readAllProcesses>;
}

function snapshot(pids: Partial<Record<ProcessName, number>>): Snapshot {
  const procs: Partial<Record<ProcessName, ProcCpu>> = {};
  for (const [name, pid] of Object.entries(pids) as Array<[ProcessName, number]>) {
    try {
      procs[name] = readProcCpu(pid);
    } catch {
      // gone: reported as missing
    }
  }
  return { at: performance.now(), procs, machine: readMachineCpu(), all: readAllProcesses() };
}

// Envoy counters kept per phase (whole phase, warm-up included): they explain
// failures, e.g. the sidecar closing its gRPC connection under load.
const ENVOY_COUNTERS =
  '^(http\\.gateway\\.(downstream_rq_[2-5]xx|ext_proc\\.(streams_started|streams_closed|streams_failed|server_half_closed))' +
  '|cluster\\.inference-gateway-sidecar\\.(upstream_cx_total|upstream_cx_close_notify|upstream_cx_destroy_remote_with_active_rq|upstream_rq_tx_reset|upstream_rq_rx_reset)' +
  '|cluster\\.demo-upstream\\.(upstream_rq_total|upstream_cx_total))$';

async function envoyCounters(adminUrl: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const res = await fetch(`${adminUrl}/stats?usedonly&filter=${encodeURIComponent(ENVOY_COUNTERS)}`, { signal: AbortSignal.timeout(5000) });
    for (const line of (await res.text()).split('\n')) {
      const m = /^(\S+): (\d+)$/.exec(line);
      if (m?.[1] !== undefined) out[m[1]] = Number(m[2]);
    }
  } catch {
    // diagnostics only
  }
  return out;
}

function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

async function measure(system: System, spec: PhaseSpec): Promise<MeasuredPhase> {
  const countersBefore = await envoyCounters(system.envoy.adminUrl);
  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  const run = runLoadgen(spec, (mark, loadgenPid) => {
    const snap = snapshot({ ...system.pids, loadgen: loadgenPid });
    if (mark === 'start') before = snap;
    else after = snap;
  });
  cleanups.push(async () => run.kill());
  const result = await run.result;
  cleanups.pop();
  const envoyCountersDelta = counterDelta(countersBefore, await envoyCounters(system.envoy.adminUrl));
  if (before === undefined || after === undefined) throw new Error('load generator reported no measurement window');
  const cpu: Partial<Record<ProcessName, CpuFigure>> = {};
  for (const name of Object.keys(after.procs) as ProcessName[]) {
    const b = before.procs[name];
    const a = after.procs[name];
    if (a === undefined || b === undefined) continue;
    const d = cpuDeltaMs(b, a);
    cpu[name] = { ms: d.ms, usPerRequest: result.requests > 0 ? (d.ms * 1000) / result.requests : Number.NaN, source: d.source };
  }
  const wallMs = after.at - before.at;
  const busy = machineBusyPercentOfCore(before.machine, after.machine, wallMs);
  const accounted = Object.values(cpu).reduce((sum, c) => sum + c.ms, 0);
  return {
    result,
    requestsPerSecond: result.windowMs > 0 ? result.requests / (result.windowMs / 1000) : 0,
    cpu,
    machineBusyPercentOfCore: busy,
    otherPercentOfCore: Math.max(0, busy - (accounted / wallMs) * 100),
    topOtherProcesses: topOthers(
      before.all,
      after.all,
      new Set([process.pid, ...Object.values(system.pids), ...Object.values(after.procs).map((p) => p.pid)]),
      wallMs,
    ),
    envoyCounters: envoyCountersDelta,
  };
}

/** How long opening the held streams may take before the ones still missing count as errors. */
const HOLD_OPEN_LIMIT_S = 30;
/** The demo upstream's longest pause between events: a held stream stays open ~15 × this, far beyond the hold. */
const HOLD_CHUNK_DELAY_MS = 10_000;

/**
 * Opens `opts.holdStreams` streaming requests at once through `sys` (the
 * upstream pausing 10 s between events, so they stay open), reads the
 * ext_proc server's RSS once all are open and again `opts.holdMs` later, then
 * the generator closes them all.
 */
async function holdStreams(
  sys: System,
  body: string,
  headers: Record<string, string>,
  pid: number,
  opts: BenchOptions,
): Promise<{ rss: HeldRss; errors: number; samples: string[] }> {
  const beforeMb = readRssMb(pid);
  const readings: number[] = [];
  const spec: PhaseSpec = {
    kind: 'hold',
    host: '127.0.0.1',
    port: sys.port,
    requestBase64: buildRequest({
      host: '127.0.0.1',
      port: sys.port,
      path: '/v1/chat/completions',
      headers: { ...headers, 'x-demo-chunk-delay-ms': String(HOLD_CHUNK_DELAY_MS) },
      body,
    }).toString('base64'),
    check: 'chat-sse',
    warmupMs: 0,
    durationMs: HOLD_OPEN_LIMIT_S * 1000,
    timeoutMs: 60_000,
    streams: opts.holdStreams,
    openConcurrency: 64,
    holdMs: opts.holdMs,
  };
  const run = runLoadgen(spec, () => readings.push(readRssMb(pid)));
  cleanups.push(async () => run.kill());
  const result = await run.result;
  cleanups.pop();
  const heldMb: [number, number] = [readings[0] ?? Number.NaN, readings[1] ?? Number.NaN];
  const streams = result.requests;
  return {
    rss: { beforeMb, heldMb, streams, mbPer1000Streams: streams > 0 ? ((heldMb[1] - beforeMb) * 1000) / streams : Number.NaN },
    errors: result.errors.total,
    samples: result.errors.samples,
  };
}

/** CPU each process burns while idle, in ms per second (timers, metrics collection, ...). */
async function idleCpu(pids: Record<string, number>, ms: number): Promise<{ perProcess: Record<string, number>; machinePercentOfCore: number }> {
  const before = new Map(Object.entries(pids).map(([k, pid]) => [k, readProcCpu(pid)] as const));
  const machine = readMachineCpu();
  const t0 = performance.now();
  await sleep(ms);
  const wallMs = performance.now() - t0;
  const perProcess: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) {
    const b = before.get(k);
    if (b !== undefined) perProcess[k] = cpuDeltaMs(b, readProcCpu(pid)).ms / (wallMs / 1000);
  }
  return { perProcess, machinePercentOfCore: machineBusyPercentOfCore(machine, readMachineCpu(), wallMs) };
}

// ---------------------------------------------------------------- preflight

async function post(port: number, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, text: await res.text() };
}

/** One request of each kind through each system, checked in full. Returns the gateway's successful count. */
async function preflight(systems: System[], headers: Record<string, string>, scenarios: Scenario[], checks: Check[]): Promise<number> {
  let gatewayOk = 0;
  for (const sys of systems) {
    for (const sc of scenarios) {
      const name = `preflight ${sys.key} ${sc.name}`;
      try {
        const r = await post(sys.port, headers, sc.body);
        let ok = r.status === 200;
        if (ok && !sc.stream) {
          const parsed = JSON.parse(r.text) as { object?: unknown; choices?: unknown };
          ok = parsed.object === 'chat.completion' && Array.isArray(parsed.choices) && parsed.choices.length === 1;
        }
        if (ok && sc.stream) ok = r.text.startsWith('data: ') && r.text.trimEnd().endsWith('data: [DONE]');
        checks.push({ name, ok, detail: ok ? `HTTP ${r.status}` : `HTTP ${r.status}: ${r.text.slice(0, 300)}` });
        if (ok && sys.key === 'gateway') gatewayOk++;
      } catch (err) {
        checks.push({ name, ok: false, detail: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  // The gateway really is in the path: no key, no answer.
  const gw = systems.find((s) => s.key === 'gateway');
  if (gw !== undefined) {
    const noKey = { ...headers };
    delete noKey.authorization;
    try {
      const r = await post(gw.port, noKey, SCENARIOS[0]?.body ?? '{}');
      checks.push({ name: 'preflight gateway rejects a request without a key', ok: r.status === 401, detail: `HTTP ${r.status}` });
    } catch (err) {
      checks.push({ name: 'preflight gateway rejects a request without a key', ok: false, detail: String(err) });
    }
  }
  return gatewayOk;
}

async function countLines(file: string): Promise<number> {
  if (!existsSync(file)) return 0;
  let n = 0;
  const stream = createReadStream(file);
  stream.on('data', (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  });
  await once(stream, 'end');
  return n;
}

// ---------------------------------------------------------------- main

const DOC = join(PROJECT_ROOT, 'docs', 'benchmarks.md');

async function appendToDocs(r: BenchResults): Promise<void> {
  if (!existsSync(DOC)) await writeFile(DOC, '# Benchmarks\n\nRun with `npm run bench`.\n\n# Results\n');
  await appendFile(DOC, `\n${markdownSection(r, r.options.out)}`);
  say(`bench: appended a section to ${relative(PROJECT_ROOT, DOC)}`);
}

/** --from FILE: re-print (and optionally append to the docs) a saved run. */
async function fromFile(file: string, docs: boolean): Promise<number> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as { schema?: unknown };
  if (raw.schema !== RESULTS_SCHEMA) {
    warn(
      `bench: ${file}: results schema ${String(raw.schema)}; this version reads schema ${String(RESULTS_SCHEMA)} only ` +
        '(schema 1 files, from before the floor system F, cannot be re-printed: check out the commit that wrote them)',
    );
    return 1;
  }
  const r = raw as BenchResults;
  say(textReport(r));
  for (const w of r.warnings) warn(`bench: warning: ${w}`);
  if (r.errorCount > 0) warn(`bench: ${r.errorCount} requests failed in that run: its figures are NOT valid`);
  if (docs) await appendToDocs(r);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  if (opts === null) return 0;
  if (opts.from !== null) return fromFile(opts.from, argv.includes('--docs'));
  const started = performance.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const scenarios = opts.scenarios.map((n) => SCENARIOS.find((s) => s.name === n)).filter((s): s is Scenario => s !== undefined);
  // Per scenario: fixed rate and saturation for A, F and B; streams also 5 paced phases (A, F, B short; F, B long).
  const phases = scenarios.reduce((n, sc) => n + 6 + (sc.stream ? 5 : 0), 0);
  const phaseS = scenarios.reduce(
    (n, sc) => n + 3 * (2 * opts.warmupS + opts.durationS + opts.rateDurationS) + (sc.stream ? 5 * (opts.warmupS + opts.rateDurationS) : 0),
    0,
  );
  const holdS = opts.holdStreams > 0 ? 2 * (opts.holdMs / 1000 + opts.holdStreams / 250 + 1) : 0;
  say(
    `bench: ${opts.quick ? 'quick' : 'full'} run${opts.check ? ' (check)' : ''}: ${scenarios.map((s) => s.name).join(', ')}; ` +
      `~${Math.ceil(phaseS + phases * 0.6 + holdS + 8)} s`,
  );

  // Whole-run watchdog: the benchmark always ends by itself.
  const watchdogMs = (phaseS + phases * (2 * opts.timeoutS + 5) + (opts.holdStreams > 0 ? 2 * (HOLD_OPEN_LIMIT_S + opts.holdMs / 1000 + 30) : 0) + 180) * 1000;
  const watchdog = setTimeout(() => {
    warn(`bench: still running after ${Math.round(watchdogMs / 1000)} s: giving up`);
    killAllChildren();
    void cleanup().finally(() => process.exit(1));
  }, watchdogMs);
  watchdog.unref();

  const checks: Check[] = [];
  const hints = new Set<string>();
  const warnings: string[] = [];
  const childLog = (prefix: string) => (opts.verbose ? (line: string) => warn(`[${prefix}] ${line}`) : undefined);

  // --- start everything
  const envoyBin = await findEnvoy({ install: true, log: (m) => warn(`[envoy] ${m}`) });
  const envoyVer = await envoyVersion(envoyBin);
  const machine = machineInfo({ version: envoyVer, bin: envoyBin }, PROJECT_ROOT);

  const workDir = await mkdtemp(join(tmpdir(), 'igw-bench-'));
  tempDirs.add(workDir);
  cleanups.push(() => rm(workDir, { recursive: true, force: true }));

  const upstream = await startUpstreamProcess(childLog('upstream'));
  cleanups.push(() => upstream.stop(2000));

  const adminPort = await freePort();
  let redisUrl: string | null = null;
  if (opts.quota === 'redis') {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    redisUrl = redis.url;
  }
  const quotaConfig =
    opts.quota === undefined || opts.quota === 'none' ? {} : { quotas: { plans: [BENCH_PLAN] }, ...(redisUrl === null ? {} : { redis: { url: redisUrl } }) };
  const files = writeGatewayFiles({
    keys: [{ principal: 'bench', tier: 'bench' }],
    models: [
      ...DEFAULT_MODELS,
      { id: 'demo-model', endpoints: ['chat'], cluster: DEMO_CLUSTER, model: 'demo-model' },
      { id: 'claude-translated', endpoints: ['chat'], cluster: DEMO_CLUSTER, model: 'demo-claude', provider: 'anthropic' },
      {
        id: 'gpt-chain',
        endpoints: ['chat'],
        cluster: CHAIN_PRIMARY,
        model: 'demo-model',
        fallback: { cluster: CHAIN_AGGREGATE, to: [{ cluster: DEMO_CLUSTER, model: 'demo-claude', provider: 'anthropic' }] },
      },
    ],
    config: { server: { admin: { port: adminPort } }, audit: { durability: opts.auditDurability ?? 'fsync' }, ...quotaConfig },
  });
  tempDirs.add(files.dir);
  cleanups.push(() => rm(files.dir, { recursive: true, force: true }));
  const apiKey = files.keys.bench;
  if (apiKey === undefined) throw new Error('fixture wrote no API key');

  // Idle RSS is read from the sidecar and F: each is started and stopped once before, so the measured ones start as
  // any restart does, from Node's compile cache (bin/compile-cache.js), not as the first start after a code change.
  await (await startSidecarProcess(files.configFile, adminPort, childLog('sidecar'), opts.sidecarNodeArgs ?? [])).stop(3000);
  await (await startFloorProcess(join(workDir, 'floor-warm.sock'), childLog('floor'))).stop(2000);
  const sidecar = await startSidecarProcess(files.configFile, adminPort, childLog('sidecar'), opts.sidecarNodeArgs ?? []);
  cleanups.push(() => sidecar.stop(3000));
  const floorSocket = join(workDir, 'floor.sock');
  const floor = await startFloorProcess(floorSocket, childLog('floor'));
  cleanups.push(() => floor.stop(2000));

  const cluster = { name: DEMO_CLUSTER, host: '127.0.0.1', port: upstream.port };
  const envoyLog = childLog('envoy');
  const envoyA = await startEnvoy({
    bin: envoyBin,
    workDir: join(workDir, 'envoy-plain'),
    concurrency: 1,
    configYaml: renderPlainConfig({ listenerPort: 0, adminPort: 0, cluster }),
    ...(envoyLog === undefined ? {} : { log: envoyLog }),
  });
  cleanups.push(() => envoyA.stop(2000));
  // F and B: the same gateway configuration; only the ext_proc cluster's socket differs.
  const gatewayEnvoy = async (name: string, socket: string): Promise<EnvoyProcess> =>
    startEnvoy({
      bin: envoyBin,
      workDir: join(workDir, name),
      concurrency: 1,
      configYaml: renderGatewayConfig({
        listenerPort: 0,
        adminPort: 0,
        sidecarSocket: socket,
        clusters: [cluster, { ...cluster, name: CHAIN_PRIMARY }, { name: CHAIN_AGGREGATE, aggregate: [CHAIN_PRIMARY, DEMO_CLUSTER] }],
      }),
      ...(envoyLog === undefined ? {} : { log: envoyLog }),
    });
  const envoyF = await gatewayEnvoy('envoy-floor', floorSocket);
  cleanups.push(() => envoyF.stop(2000));
  const envoyB = await gatewayEnvoy('envoy-gateway', files.socketPath);
  cleanups.push(() => envoyB.stop(2000));

  const systems: System[] = [
    { key: 'plain', envoy: envoyA, port: await envoyA.listenerPort(), pids: { envoy: envoyA.pid, upstream: upstream.pid } },
    { key: 'floor', envoy: envoyF, port: await envoyF.listenerPort(), pids: { envoy: envoyF.pid, extproc: floor.pid, upstream: upstream.pid } },
    { key: 'gateway', envoy: envoyB, port: await envoyB.listenerPort(), pids: { envoy: envoyB.pid, extproc: sidecar.pid, upstream: upstream.pid } },
  ];
  const systemOf = (key: SystemKey): System => {
    const sys = systems.find((x) => x.key === key);
    if (sys === undefined) throw new Error(`internal: no system ${key}`);
    return sys;
  };
  say(
    `bench: upstream pid ${upstream.pid}, floor pid ${floor.pid}, sidecar pid ${sidecar.pid}; ` +
      systems.map((x) => `Envoy ${x.key} pid ${x.envoy.pid} (:${x.port})`).join(', '),
  );

  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  let gatewayOk = await preflight(systems, headers, scenarios, checks);
  const preflightFailed = checks.filter((c) => !c.ok);
  if (preflightFailed.length > 0) {
    for (const c of preflightFailed) warn(`bench: FAILED ${c.name}: ${c.detail}`);
    throw new Error('preflight failed: the systems do not answer as expected (see above)');
  }

  const idleRssMb = { floor: readRssMb(floor.pid), gateway: readRssMb(sidecar.pid) };
  const idle = await idleCpu(
    { 'Envoy A': envoyA.pid, 'Envoy F': envoyF.pid, 'Envoy B': envoyB.pid, floor: floor.pid, sidecar: sidecar.pid, upstream: upstream.pid },
    opts.quick ? 500 : 2000,
  );
  const idleCpuMsPerS = idle.perProcess;
  if (idle.machinePercentOfCore > 20) {
    const msg = `before the load the machine was already ${Math.round(idle.machinePercentOfCore)} % of a core busy (other work): figures will be noisy`;
    warnings.push(msg);
    warn(`bench: warning: ${msg}`);
  }

  // --- phases
  let errorCount = 0;
  const results: ScenarioResults[] = [];
  const common = { host: '127.0.0.1', warmupMs: opts.warmupS * 1000, timeoutMs: opts.timeoutS * 1000 };
  type PhaseKind = 'fixedRate' | 'saturation' | 'pacedShort' | 'pacedLong';
  const phaseLabel = (kind: PhaseKind): string =>
    kind === 'fixedRate'
      ? `${opts.rate} req/s`
      : kind === 'saturation'
        ? `saturation (${opts.connections} conns)`
        : `paced ${opts.pacedRate} req/s, ${kind === 'pacedShort' ? opts.shortWords : opts.longWords} tokens`;
  // --- memory: many streams open at once through F, then B, before any other load (so the RSS grows from
  // the idle figure by what the open streams need, not by what a load phase left in the heap)
  let held: { floor: HeldRss; gateway: HeldRss } | null = null;
  if (opts.holdStreams > 0) {
    const stream = scenarios.find((sc) => sc.stream) ?? SCENARIOS.find((sc) => sc.name === 'chat-stream');
    if (stream === undefined) throw new Error('internal: no streaming scenario');
    const heldFor = async (key: 'floor' | 'gateway', pid: number): Promise<HeldRss> => {
      const sys = systemOf(key);
      process.stdout.write(`bench: ${key} holding ${opts.holdStreams} streams open … `);
      const h = await holdStreams(sys, stream.body, headers, pid, opts);
      say(`${h.rss.streams} open, RSS ${h.rss.beforeMb.toFixed(1)} → ${h.rss.heldMb[1].toFixed(1)} MB${h.errors > 0 ? `, ${h.errors} ERRORS` : ''}`);
      errorCount += h.errors;
      checks.push({
        name: `${key} held ${opts.holdStreams} streams open at once`,
        ok: h.errors === 0 && h.rss.streams === opts.holdStreams,
        detail: `${h.rss.streams} open, ${h.errors} errors${h.samples.length > 0 ? `: ${h.samples.join('; ')}` : ''}`,
      });
      await sleep(500);
      return h.rss;
    };
    held = { floor: await heldFor('floor', floor.pid), gateway: await heldFor('gateway', sidecar.pid) };
    await sleep(1000);
  }

  for (const sc of scenarios) {
    const partial: Record<SystemKey, Partial<Record<PhaseKind, MeasuredPhase>>> = { plain: {}, floor: {}, gateway: {} };
    const requestFor = (sys: System, extra: Record<string, string> = {}, body = sc.body): string =>
      buildRequest({ host: '127.0.0.1', port: sys.port, path: '/v1/chat/completions', headers: { ...headers, ...extra }, body }).toString('base64');
    // Paced streams: the upstream pauses between events (one read each), the reply `words` tokens long.
    const pacedRequest = (sys: System, words: number): string =>
      requestFor(
        sys,
        { 'x-demo-chunk-delay-ms': String(opts.chunkDelayMs), 'x-demo-words': String(words) },
        JSON.stringify({ ...(JSON.parse(sc.body) as Record<string, unknown>), max_tokens: Math.max(64, words) }),
      );
    // Fair interleaving: every kind of phase runs A, F, B back to back.
    const plan: Array<{ kind: PhaseKind; sys: System }> = [];
    for (const kind of ['fixedRate', 'saturation'] as const) for (const sys of systems) plan.push({ kind, sys });
    if (sc.stream) {
      for (const sys of systems) plan.push({ kind: 'pacedShort', sys });
      for (const key of ['floor', 'gateway'] as const) plan.push({ kind: 'pacedLong', sys: systemOf(key) });
    }
    for (const { kind, sys } of plan) {
      const spec: PhaseSpec =
        kind === 'saturation'
          ? {
              ...common,
              kind: 'closed',
              port: sys.port,
              requestBase64: requestFor(sys),
              check: sc.check,
              durationMs: opts.durationS * 1000,
              connections: opts.connections,
            }
          : {
              ...common,
              kind: 'open',
              port: sys.port,
              requestBase64: kind === 'fixedRate' ? requestFor(sys) : pacedRequest(sys, kind === 'pacedShort' ? opts.shortWords : opts.longWords),
              check: sc.check,
              durationMs: opts.rateDurationS * 1000,
              rate: kind === 'fixedRate' ? opts.rate : opts.pacedRate,
              initialConnections: 8,
              maxConnections: 512,
              chunkGaps: kind !== 'fixedRate',
            };
      process.stdout.write(`bench: ${sc.name} ${sys.key} ${phaseLabel(kind)} … `);
      const m = await measure(sys, spec);
      const r = m.result;
      say(
        `${Math.round(m.requestsPerSecond)} req/s, p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms` +
          (r.chunkGap === undefined ? '' : `, chunk gap p50 ${r.chunkGap.p50.toFixed(2)} ms`) +
          (r.errors.total > 0 ? `, ${r.errors.total} ERRORS` : ''),
      );
      errorCount += r.errors.total;
      if (r.errors.total > 0) {
        if ((m.envoyCounters['cluster.inference-gateway-sidecar.upstream_cx_destroy_remote_with_active_rq'] ?? 0) > 0) {
          hints.add(
            `the ${sys.key === 'floor' ? 'floor ext_proc server' : 'sidecar'} closed its gRPC connection to Envoy while requests were in flight ` +
              '(cluster.inference-gateway-sidecar.upstream_cx_destroy_remote_with_active_rq > 0): those requests failed with 503 gateway_unavailable',
          );
        }
        warn(`bench: errors in ${sc.name}/${sys.key}/${kind}: ${JSON.stringify(r.errors.byKind)}`);
        for (const e of r.errors.samples) warn(`  ${e}`);
        warn(`  Envoy counters over the phase: ${JSON.stringify(m.envoyCounters)}`);
      }
      if (m.otherPercentOfCore > 20) {
        const top = m.topOtherProcesses.filter((p) => p.percentOfCore >= 2);
        const listed = top.reduce((sum, p) => sum + p.percentOfCore, 0);
        const who = [
          ...top.map((p) => `${p.comm} ${Math.round(p.percentOfCore)} %`),
          ...(listed < m.otherPercentOfCore / 2 ? ['processes that started and ended inside the window'] : []),
        ].join(', ');
        warnings.push(
          `${sc.name} ${sys.key} ${kind}: other processes used ${Math.round(m.otherPercentOfCore)} % of a core during the window ` +
            `(${who}): the machine was not quiet, figures are noisy`,
        );
      }
      if (r.requests === 0) checks.push({ name: `${sc.name} ${sys.key} ${kind} completed requests`, ok: false, detail: 'no request completed in the window' });
      if (r.queued !== undefined && r.queued > 0) {
        warnings.push(`${sc.name} ${sys.key} ${kind}: ${r.queued} open-loop requests waited for a free connection (rate near saturation?)`);
      }
      for (const [name, c] of Object.entries(m.cpu)) {
        if (c.source === 'stat' && name !== 'loadgen')
          warnings.push(`${sc.name} ${sys.key} ${kind}: ${name} CPU from /proc/<pid>/stat (10 ms resolution): a thread exited mid-window`);
      }
      if (sys.key === 'gateway') gatewayOk += r.okTotal;
      partial[sys.key][kind] = m;
      await sleep(300);
    }
    const systemResults = (key: SystemKey): SystemResults => {
      const { fixedRate, saturation, pacedShort, pacedLong } = partial[key];
      if (fixedRate === undefined || saturation === undefined) throw new Error('internal: a phase is missing');
      return {
        fixedRate,
        saturation,
        ...(pacedShort === undefined ? {} : { paced: { short: pacedShort, ...(pacedLong === undefined ? {} : { long: pacedLong }) } }),
      };
    };
    const res: ScenarioResults = {
      name: sc.name,
      description: sc.description,
      stream: sc.stream,
      requestBodyBytes: Buffer.byteLength(sc.body),
      plain: systemResults('plain'),
      floor: systemResults('floor'),
      gateway: systemResults('gateway'),
    };
    const minSat = Math.min(...SYSTEM_KEYS.map((k) => res[k].saturation.requestsPerSecond));
    if (opts.rate > 0.5 * minSat) {
      warnings.push(
        `${sc.name}: the fixed rate (${opts.rate} req/s) is over half the lowest saturation throughput (${Math.round(minSat)} req/s); its latencies include queueing`,
      );
    }
    results.push(res);
  }

  // --- the sidecar must have audited every request it let through
  await sidecar.stop(5000);
  const audited = await countLines(files.auditFile);
  checks.push({
    name: 'sidecar audited every successful gateway request',
    ok: audited >= gatewayOk,
    detail: `${audited} audit records for ${gatewayOk} successful requests (plus 1 rejected)`,
  });
  checks.push({ name: 'no request failed', ok: errorCount === 0, detail: `${errorCount} errors` });

  for (const h of hints) warnings.push(`likely cause of the failed requests: ${h}`);
  const resultsFile =
    opts.out === null
      ? null
      : opts.out !== ''
        ? resolve(opts.out)
        : join(fileURLToPath(new URL('./results/', import.meta.url)), `${date.replace(/:/g, '-')}${opts.quick ? '-quick' : ''}.json`);
  const resultsRel = resultsFile === null ? null : relative(PROJECT_ROOT, resultsFile);
  const out: BenchResults = {
    schema: RESULTS_SCHEMA,
    date,
    mode: opts.quick ? 'quick' : 'full',
    options: { ...opts, out: resultsRel },
    machine,
    idleCpuMsPerS,
    idleMachinePercentOfCore: idle.machinePercentOfCore,
    scenarios: results,
    rss: { idleMb: idleRssMb, held },
    checks,
    warnings,
    errorCount,
    elapsedS: (performance.now() - started) / 1000,
  };

  say('');
  say(textReport(out));
  say('');
  for (const w of warnings) warn(`bench: warning: ${w}`);

  if (resultsFile !== null) {
    await mkdir(join(resultsFile, '..'), { recursive: true });
    await writeFile(resultsFile, `${JSON.stringify(out, null, 2)}\n`);
    say(`bench: results written to ${relative(PROJECT_ROOT, resultsFile)}`);
  }
  if (opts.docs) await appendToDocs(out);

  clearTimeout(watchdog);
  const failed = checks.filter((c) => !c.ok);
  if (errorCount > 0) {
    warn('');
    warn('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    warn(`!!! ${errorCount} REQUESTS FAILED: these figures are NOT valid`);
    for (const h of hints) warn(`!!! likely cause: ${h}`);
    warn('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
  }
  for (const c of failed) warn(`bench: FAILED ${c.name}: ${c.detail}`);
  if (opts.check) say(failed.length === 0 ? `bench check: OK (${checks.length} checks)` : `bench check: FAILED (${failed.length} of ${checks.length} checks)`);
  return failed.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  async (code) => {
    await cleanup();
    process.exitCode = code;
  },
  async (err: unknown) => {
    const usage = err instanceof UsageError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'));
    if (usage) warn(`bench: ${err.message}\n\n${HELP}`);
    else warn(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAllChildren();
    await cleanup();
    process.exitCode = 1;
  },
);
