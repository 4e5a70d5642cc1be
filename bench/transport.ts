/**
 * `npm run bench:transport`: the sidecar's own gRPC server transport
 * (src/server/transport/http2-server.ts on node:http2, with framing.ts and the
 * proto-loader codecs) against @grpc/grpc-js's Server, on the same ext_proc
 * workload, in one run.
 *
 * Two servers, each in its own process (bench/transport-server.ts), run the
 * same zero-work ExternalProcessor/Process handler (CONTINUE for every phase),
 * so what differs is the transport alone. This process is the client for
 * both: raw node:http2, one HTTP/2 connection per server (as Envoy keeps one
 * per worker), one stream per simulated HTTP request with Envoy's four
 * messages sent one at a time, each after the previous answer (request
 * headers, request body, response headers, response body), then a half-close
 * and the OK status; N streams in flight (closed loop). Every answer must be
 * byte for byte the expected CONTINUE and every status OK, or the request
 * counts as failed.
 *
 * Per transport it reports the server process's CPU per request (from /proc:
 * all threads, GC and libuv included), requests/s, per-stream latency
 * p50/p99 (stream opened → status received) and the client's CPU per request.
 * The two servers are measured alternately in rounds (A B, B A, A B, ...) on
 * the same connection type, and each round pairs them: the reported ratio is
 * the median over rounds of http2 / grpc-js, and the figures are medians with
 * their range, so the VM's drift shows instead of skewing one side.
 * docs/benchmarks.md has the results and how to read them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FrameDecoder } from '../src/server/transport/framing.ts';
import { cpuDeltaMs, machineBusyPercentOfCore, readAllProcesses, readMachineCpu, readProcCpu, topOthers } from './lib/cpu.ts';
import type { ProcCpu } from './lib/cpu.ts';
import { encodedStream, PROCESS_METHOD } from './lib/extproc-workload.ts';
import { machineInfo } from './lib/machine.ts';
import { Samples } from './lib/stats.ts';
import type { Summary } from './lib/stats.ts';

const HELP = `Usage: npm run bench:transport -- [options]     (or: node bench/transport.ts [options])

The sidecar's gRPC server on node:http2 against @grpc/grpc-js's Server, same
zero-work ext_proc handler, same client, alternating rounds.

Options:
  --quick            short smoke run (2 rounds of 2,000 requests, Unix socket only)
  --check            exit 0 only if every request succeeded (CI); same figures otherwise
  --rounds N         measured rounds per transport and socket type (default 7; quick 2)
  --requests N       requests (streams) per measured round (default 20000; quick 2000)
  --warmup N         unmeasured requests before each round (default 1000; quick 300);
                     the first round of each server gets 3× as many
  --concurrency N    streams in flight (default 16)
  --sockets LIST     uds,tcp (default both; quick uds)
  --timeout S        a round not finished after S seconds fails its requests (default 60)
  -h, --help         this help
`;

type Impl = 'http2' | 'grpc-js';
type SocketKind = 'uds' | 'tcp';
const IMPLS: readonly Impl[] = ['http2', 'grpc-js'];
const IMPL_LABEL: Record<Impl, string> = { http2: 'node:http2 (Http2GrpcServer)', 'grpc-js': 'grpc-js Server' };
const SOCKET_LABEL: Record<SocketKind, string> = { uds: 'Unix socket', tcp: 'loopback TCP' };

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER_SCRIPT = fileURLToPath(new URL('./transport-server.ts', import.meta.url));

const say = (msg: string): void => {
  process.stdout.write(`${msg}\n`);
};
const warn = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

class UsageError extends Error {}

interface Options {
  quick: boolean;
  check: boolean;
  rounds: number;
  requests: number;
  warmup: number;
  concurrency: number;
  sockets: SocketKind[];
  timeoutS: number;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      check: { type: 'boolean' },
      rounds: { type: 'string' },
      requests: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      sockets: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return null;
  }
  const quick = values.quick === true;
  const int = (name: string, raw: string | undefined, dflt: number, min: number, max: number): number => {
    if (raw === undefined) return dflt;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    return v;
  };
  const sockets = (values.sockets ?? (quick ? 'uds' : 'uds,tcp'))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of sockets) if (s !== 'uds' && s !== 'tcp') throw new UsageError(`--sockets: unknown socket type "${s}" (uds, tcp)`);
  if (sockets.length === 0) throw new UsageError('--sockets: name at least one of uds, tcp');
  return {
    quick,
    check: values.check === true,
    rounds: int('rounds', values.rounds, quick ? 2 : 7, 1, 100),
    requests: int('requests', values.requests, quick ? 2000 : 20_000, 10, 10_000_000),
    warmup: int('warmup', values.warmup, quick ? 300 : 1000, 0, 10_000_000),
    concurrency: int('concurrency', values.concurrency, 16, 1, 10_000),
    sockets: [...new Set(sockets)] as SocketKind[],
    timeoutS: int('timeout', values.timeout, 60, 1, 3600),
  };
}

// ---------------------------------------------------------------- servers

interface ServerProc {
  impl: Impl;
  pid: number;
  socketPath: string;
  tcpPort: number;
  child: ChildProcess;
}

const children = new Set<ChildProcess>();
/** Holds the servers' sockets; removed however the run ends. */
let socketDir: string | undefined;
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
});

async function startServer(impl: Impl, socketPath: string): Promise<ServerProc> {
  // process.execPath is the node binary itself, so the pid is the process doing the work.
  // stdin stays open: the server exits when it closes (if this process dies without signalling).
  const child = spawn(process.execPath, [SERVER_SCRIPT, impl, socketPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start the ${impl} server`);
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server not ready within 20 s:\n${out}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-16 * 1024);
      const m = /\{"ready":true[^\n]*\}/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve((JSON.parse(m[0]) as { tcpPort: number }).tcpPort);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      out = (out + chunk.toString('utf8')).slice(-16 * 1024);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${impl} server exited during start-up (${signal ?? `code ${String(code)}`}):\n${out}`));
    });
  });
  const tcpPort = await ready;
  return { impl, pid: child.pid, socketPath, tcpPort, child };
}

async function stopServer(s: ServerProc): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = once(s.child, 'exit');
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- client

const { requests: REQUEST_FRAMES, messageBytes: MESSAGE_BYTES, expectedAnswers: EXPECTED_ANSWERS } = encodedStream();
const STREAM_HEADERS: http2.OutgoingHttpHeaders = Object.freeze({
  ':method': 'POST',
  ':path': PROCESS_METHOD.path,
  'content-type': 'application/grpc',
  te: 'trailers',
});

async function connect(server: ServerProc, socket: SocketKind): Promise<http2.ClientHttp2Session> {
  // Envoy names the cluster as :authority; the socket comes from createConnection either way.
  const session = http2.connect('http://inference-gateway-sidecar', {
    createConnection: () => (socket === 'uds' ? net.connect(server.socketPath) : net.connect({ host: '127.0.0.1', port: server.tcpPort, noDelay: true })),
  });
  session.on('error', () => undefined);
  await Promise.race([
    once(session, 'connect'),
    once(session, 'close').then(() => {
      throw new Error(`could not connect to the ${server.impl} server over ${socket}`);
    }),
  ]);
  return session;
}

interface BatchResult {
  ok: number;
  failed: number;
  failures: Map<string, number>;
  wallMs: number;
  latency: Summary;
}

/**
 * One stream: the four messages in turn, each sent once the previous answer
 * is in, then a half-close; resolves with null if every answer and the status
 * were right, else with what went wrong.
 */
function oneStream(session: http2.ClientHttp2Session, latency: Samples): Promise<string | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(STREAM_HEADERS);
    } catch (err) {
      resolve(`request: ${(err as Error).message}`);
      return;
    }
    const decoder = new FrameDecoder(1 << 20);
    let answers = 0;
    let status: string | undefined;
    let problem: string | null = null;
    const fail = (what: string): void => {
      problem ??= what;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    stream.on('response', (headers) => {
      // A trailers-only answer carries the status in the headers.
      if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
    });
    stream.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind !== 'message') return fail(`answer frame ${frame.kind}`);
        const expected = EXPECTED_ANSWERS[answers];
        if (expected === undefined || !frame.bytes.equals(expected)) return fail(`wrong answer to message ${answers + 1}`);
        answers++;
        const next = REQUEST_FRAMES[answers];
        if (next !== undefined) stream.write(next);
        else stream.end();
      }
    });
    stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      status = String(trailers['grpc-status']);
    });
    stream.on('error', (err: Error) => {
      problem ??= `stream error: ${err.message}`;
    });
    stream.on('close', () => {
      if (problem === null && answers !== REQUEST_FRAMES.length) problem = `stream closed after ${answers} answers`;
      if (problem === null && status !== '0') problem = `grpc-status ${String(status)}`;
      if (problem === null) latency.add(performance.now() - t0);
      resolve(problem);
    });
    stream.write(REQUEST_FRAMES[0]);
  });
}

/** `total` streams, `concurrency` at a time; the session is destroyed if the batch outlives `timeoutMs`. */
async function runBatch(session: http2.ClientHttp2Session, total: number, concurrency: number, timeoutMs: number): Promise<BatchResult> {
  const latency = new Samples();
  const failures = new Map<string, number>();
  let started = 0;
  let ok = 0;
  let failed = 0;
  const deadline = setTimeout(() => session.destroy(new Error('round timed out')), timeoutMs);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (started < total) {
        started++;
        const problem = await oneStream(session, latency);
        if (problem === null) ok++;
        else {
          failed++;
          failures.set(problem, (failures.get(problem) ?? 0) + 1);
        }
      }
    }),
  );
  const wallMs = performance.now() - t0;
  clearTimeout(deadline);
  return { ok, failed, failures, wallMs, latency: latency.summary() };
}

// ---------------------------------------------------------------- measurement

interface RoundFigure {
  round: number;
  /** Position in the round: 0 = measured first. */
  position: number;
  serverCpuUs: number;
  clientCpuUs: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Whole machine, % of one core. */
  machineBusy: number;
  /** Machine busy minus both servers and this process, % of one core. */
  otherBusy: number;
  cpuSource: 'schedstat' | 'stat';
}

interface SocketResults {
  socket: SocketKind;
  figures: Record<Impl, RoundFigure[]>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] ?? Number.NaN) : ((s[n / 2 - 1] ?? 0) + (s[n / 2] ?? 0)) / 2;
};

const fmt = (v: number, digits = 0): string =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';

interface Tally {
  requests: number;
  failed: number;
  failures: Map<string, number>;
}

function tallyBatch(t: Tally, b: BatchResult): void {
  t.requests += b.ok + b.failed;
  t.failed += b.failed;
  for (const [k, n] of b.failures) t.failures.set(k, (t.failures.get(k) ?? 0) + n);
}

async function measureSocket(socket: SocketKind, servers: Record<Impl, ServerProc>, opts: Options, tally: Tally, warnings: string[]): Promise<SocketResults> {
  const timeoutMs = opts.timeoutS * 1000;
  const sessions = {} as Record<Impl, http2.ClientHttp2Session>;
  const session = async (impl: Impl): Promise<http2.ClientHttp2Session> => {
    const s = sessions[impl] as http2.ClientHttp2Session | undefined;
    if (s !== undefined && !s.destroyed && !s.closed) return s;
    sessions[impl] = await connect(servers[impl], socket);
    return sessions[impl];
  };
  const figures: Record<Impl, RoundFigure[]> = { http2: [], 'grpc-js': [] };
  // Rounds during which other processes were busy, and the busiest of them (highest % of a core in one round).
  const busyRounds: number[] = [];
  const outsiders = new Map<string, number>();
  try {
    // A longer first warm-up: JIT and the connection's first streams are not what is being measured.
    for (const impl of IMPLS) tallyBatch(tally, await runBatch(await session(impl), opts.warmup * 3, opts.concurrency, timeoutMs));
    for (let round = 0; round < opts.rounds; round++) {
      const order: readonly Impl[] = round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
      for (const [position, impl] of order.entries()) {
        const s = await session(impl);
        if (opts.warmup > 0) tallyBatch(tally, await runBatch(s, opts.warmup, opts.concurrency, timeoutMs));
        const pids = [servers.http2.pid, servers['grpc-js'].pid, process.pid];
        const all0 = readAllProcesses();
        const before = pids.map(readProcCpu);
        const m0 = readMachineCpu();
        const t0 = performance.now();
        const batch = await runBatch(s, opts.requests, opts.concurrency, timeoutMs);
        const wallMs = performance.now() - t0;
        const m1 = readMachineCpu();
        const after = pids.map(readProcCpu);
        const all1 = readAllProcesses();
        tallyBatch(tally, batch);
        const deltas = pids.map((_, i) => cpuDeltaMs(before[i] as ProcCpu, after[i] as ProcCpu));
        const serverDelta = deltas[impl === 'http2' ? 0 : 1] as { ms: number; source: 'schedstat' | 'stat' };
        const ourMs = deltas.reduce((sum, d) => sum + d.ms, 0);
        const machineBusy = machineBusyPercentOfCore(m0, m1, wallMs);
        const figure: RoundFigure = {
          round: round + 1,
          position,
          serverCpuUs: (serverDelta.ms * 1000) / opts.requests,
          clientCpuUs: ((deltas[2]?.ms ?? 0) * 1000) / opts.requests,
          requestsPerSecond: batch.ok / (batch.wallMs / 1000),
          p50Ms: batch.latency.p50,
          p99Ms: batch.latency.p99,
          machineBusy,
          otherBusy: Math.max(0, machineBusy - (ourMs / wallMs) * 100),
          cpuSource: serverDelta.source,
        };
        figures[impl].push(figure);
        if (serverDelta.source === 'stat')
          warnings.push(`${SOCKET_LABEL[socket]} round ${round + 1} ${impl}: server CPU from /proc/<pid>/stat (10 ms resolution): a thread exited mid-round`);
        if (figure.otherBusy > 20) {
          busyRounds.push(figure.otherBusy);
          for (const o of topOthers(all0, all1, new Set(pids), wallMs)) outsiders.set(o.comm, Math.max(outsiders.get(o.comm) ?? 0, o.percentOfCore));
        }
        say(
          `  ${SOCKET_LABEL[socket]} round ${round + 1}/${opts.rounds} ${impl.padEnd(7)}: server ${fmt(figure.serverCpuUs)} µs CPU/request, ` +
            `${fmt(figure.requestsPerSecond)} req/s, p50 ${fmt(figure.p50Ms, 2)} ms, p99 ${fmt(figure.p99Ms, 2)} ms` +
            `${batch.failed > 0 ? `, ${batch.failed} FAILED` : ''}`,
        );
      }
    }
  } finally {
    for (const s of Object.values(sessions)) s.close();
  }
  if (busyRounds.length > 0) {
    const busiest = [...outsiders]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([comm, pct]) => `${comm} up to ${fmt(pct)} %`);
    warnings.push(
      `${SOCKET_LABEL[socket]}: other processes used more than 20 % of a core in ${busyRounds.length} of ${opts.rounds * IMPLS.length} measured batches ` +
        `(median ${fmt(median(busyRounds))} %, max ${fmt(Math.max(...busyRounds))} %; busiest: ${busiest.join(', ')}): ` +
        'the absolute figures (latency and requests/s most of all) carry that contention; compare the per-round ratios',
    );
  }
  return { socket, figures };
}

// ---------------------------------------------------------------- report

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown OS';
  } catch {
    return 'unknown OS';
  }
}

function grpcJsVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function socketSection(r: SocketResults, opts: Options): string[] {
  const a = r.figures.http2;
  const b = r.figures['grpc-js'];
  const rounds = Math.min(a.length, b.length);
  const paired = (pick: (f: RoundFigure) => number): number =>
    median(Array.from({ length: rounds }, (_, i) => pick(a[i] as RoundFigure) / pick(b[i] as RoundFigure)));
  const cell = (fs: RoundFigure[], pick: (f: RoundFigure) => number, digits = 0): string => {
    const xs = fs.map(pick);
    return `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;
  };
  const row = (name: string, pick: (f: RoundFigure) => number, digits = 0): string =>
    `| ${name} | ${cell(a, pick, digits)} | ${cell(b, pick, digits)} | ${fmt(paired(pick), 2)}× |`;
  const lines = [
    `### ${SOCKET_LABEL[r.socket]}: ${opts.concurrency} stream${opts.concurrency === 1 ? '' : 's'} in flight, ${rounds} rounds of ${fmt(opts.requests)} requests per server`,
    '',
    `| median (min–max) of ${rounds} rounds | ${IMPL_LABEL.http2} | ${IMPL_LABEL['grpc-js']} | http2 / grpc-js (median of per-round ratios) |`,
    '|---|--:|--:|--:|',
    row('**server CPU µs / request**', (f) => f.serverCpuUs),
    row('requests/s', (f) => f.requestsPerSecond),
    row('per-stream latency p50 (ms)', (f) => f.p50Ms, 2),
    row('per-stream latency p99 (ms)', (f) => f.p99Ms, 2),
    row('client CPU µs / request', (f) => f.clientCpuUs),
    '',
    'Per round, in run order (server CPU µs / request; machine busy and other processes in % of one core):',
    '',
    '| round | order | http2 | grpc-js | http2 / grpc-js | machine busy | other processes |',
    '|--:|---|--:|--:|--:|--:|--:|',
  ];
  for (let i = 0; i < rounds; i++) {
    const fa = a[i] as RoundFigure;
    const fb = b[i] as RoundFigure;
    const order = fa.position === 0 ? 'http2, grpc-js' : 'grpc-js, http2';
    lines.push(
      `| ${i + 1} | ${order} | ${fmt(fa.serverCpuUs)} | ${fmt(fb.serverCpuUs)} | ${fmt(fa.serverCpuUs / fb.serverCpuUs, 2)} | ` +
        `${fmt(fa.machineBusy)} / ${fmt(fb.machineBusy)} | ${fmt(fa.otherBusy)} / ${fmt(fb.otherBusy)} |`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------- main

async function main(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  if (opts === null) return 0;
  const started = performance.now();
  const date = new Date();
  const perServer = opts.warmup * 3 + opts.rounds * (opts.warmup + opts.requests);
  const totalRequests = perServer * 2 * opts.sockets.length;
  // The run always ends by itself: a generous bound of 1 ms per request plus start-up.
  const watchdogMs = 60_000 + totalRequests;
  const watchdog = setTimeout(() => {
    warn(`bench:transport: still running after ${Math.round(watchdogMs / 1000)} s: giving up`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();

  const machine = machineInfo({ version: '', bin: '' }, PROJECT_ROOT);
  const machineLine =
    `${machine.nproc} CPU (nproc), ${machine.cpuModel}, ${(machine.memTotalBytes / 2 ** 30).toFixed(1)} GiB RAM, ${osName()}, ${machine.kernel}, ` +
    `Node ${machine.node}, @grpc/grpc-js ${grpcJsVersion()}`;
  const code = machine.git === null ? 'unknown' : `\`${machine.git.commit}\`${machine.git.dirty ? ' plus uncommitted changes' : ''}`;
  say(
    `bench:transport: ${opts.quick ? 'quick' : 'full'} run${opts.check ? ' (check)' : ''}: ${opts.sockets.join(', ')}; ${opts.rounds} rounds × ` +
      `${opts.requests} requests per server (+${opts.warmup} warm-up), ${opts.concurrency} streams in flight; ~${fmt(totalRequests)} requests in all`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'igw-bench-transport-'));
  socketDir = dir;
  const servers = {} as Record<Impl, ServerProc>;
  const tally: Tally = { requests: 0, failed: 0, failures: new Map() };
  const warnings: string[] = [];
  const results: SocketResults[] = [];
  try {
    for (const impl of IMPLS) servers[impl] = await startServer(impl, join(dir, `${impl}.sock`));
    for (const socket of opts.sockets) results.push(await measureSocket(socket, servers, opts, tally, warnings));
  } finally {
    for (const s of Object.values(servers)) await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
    clearTimeout(watchdog);
  }

  const when = `${date.toISOString().slice(0, 10)} (${date.toISOString().slice(11, 16)} UTC, ${opts.quick ? 'quick' : 'full'} run)`;
  const out = [
    '',
    `## gRPC server transport: node:http2 vs grpc-js — ${when}`,
    '',
    `\`npm run bench:transport${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\` (\`bench/transport.ts\`), ${fmt((performance.now() - started) / 1000)} s.`,
    '',
    `- Machine: ${machineLine}.`,
    `- Code: commit ${code}.`,
    `- Workload: one ext_proc stream per request, Envoy's 4 messages (${MESSAGE_BYTES.join(' + ')} bytes of protobuf) each answered ` +
      'with CONTINUE by a zero-work handler, then half-close and OK status; one HTTP/2 connection per server; the same raw node:http2 client for both.',
    `- Errors: ${tally.failed === 0 ? `none (${fmt(tally.requests)} requests, warm-ups included, every answer and status as expected)` : `${fmt(tally.failed)} of ${fmt(tally.requests)} requests FAILED`}.`,
    '',
  ];
  for (const r of results) out.push(...socketSection(r, opts), '');
  say(out.join('\n'));
  for (const w of warnings) warn(`bench:transport: warning: ${w}`);

  if (tally.failed > 0) {
    warn('');
    warn('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    warn(`!!! ${tally.failed} REQUESTS FAILED: these figures are NOT valid`);
    for (const [what, n] of tally.failures) warn(`!!! ${n} × ${what}`);
    warn('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
  }
  if (opts.check) say(tally.failed === 0 ? `bench:transport check: OK (${fmt(tally.requests)} requests)` : 'bench:transport check: FAILED');
  return tally.failed === 0 ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'));
    if (usage) warn(`bench:transport: ${err.message}\n\n${HELP}`);
    else warn(`bench:transport: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    for (const c of children) c.kill('SIGKILL');
    process.exitCode = 1;
  },
);
