/** Renders results as a text table (stdout) and as a Markdown section (docs/benchmarks.md). */
import { describeMachine } from './machine.ts';
import type { BenchResults, MeasuredPhase, ScenarioResults, SystemKey } from './results.ts';
import { cpuUs, evaluateTargets, perChunkUs } from './targets.ts';
import type { TargetResult } from './targets.ts';

interface Row {
  label: string;
  a: number | null;
  f: number | null;
  b: number | null;
  digits: number;
  /** Show B − A, B − F and the ratios B / A, B / F, F / A. */
  compare: boolean;
}
type Line = Row | { heading: string };

const COLUMNS = ['A: plain', 'F: floor', 'B: gateway', 'B − A', 'B − F', 'B / A', 'B / F', 'F / A'];

function proxyCpu(p: MeasuredPhase | undefined): number | null {
  const envoy = cpuUs(p, 'envoy');
  if (envoy === null) return null;
  return envoy + (cpuUs(p, 'extproc') ?? 0);
}

type PhasePick = (sys: ScenarioResults[SystemKey]) => MeasuredPhase | undefined;

function row(s: ScenarioResults, label: string, pick: PhasePick, value: (p: MeasuredPhase | undefined) => number | null, digits: number, compare = true): Row {
  return { label, a: value(pick(s.plain)), f: value(pick(s.floor)), b: value(pick(s.gateway)), digits, compare };
}

function cpuRows(s: ScenarioResults, pick: PhasePick): Row[] {
  return [
    row(s, 'Envoy', pick, (p) => cpuUs(p, 'envoy'), 0),
    row(s, 'ext_proc server (F: floor, B: sidecar)', pick, (p) => cpuUs(p, 'extproc'), 0),
    row(s, 'proxy total (Envoy + ext_proc server)', pick, proxyCpu, 0),
    row(s, 'demo upstream', pick, (p) => cpuUs(p, 'upstream'), 0),
    row(s, 'load generator', pick, (p) => cpuUs(p, 'loadgen'), 0),
    row(s, 'machine busy (% of one core)', pick, (p) => p?.machineBusyPercentOfCore ?? null, 0, false),
    row(s, '  of which other processes (%)', pick, (p) => p?.otherPercentOfCore ?? null, 0, false),
  ];
}

function pacedLines(s: ScenarioResults, r: BenchResults): Line[] {
  const o = r.options;
  if (s.gateway.paced === undefined) return [];
  const short: PhasePick = (x) => x.paced?.short;
  const long: PhasePick = (x) => x.paced?.long;
  return [
    {
      heading:
        `Paced streams: open loop, ${o.pacedRate} req/s, ${o.rateDurationS} s, the upstream pausing ${o.chunkDelayMs} ms between events; ` +
        `${o.shortWords}-token reply (${o.shortWords + 3} events)`,
    },
    row(s, 'inter-chunk gap p50 (ms)', short, (p) => p?.result.chunkGap?.p50 ?? null, 2),
    row(s, 'inter-chunk gap p99 (ms)', short, (p) => p?.result.chunkGap?.p99 ?? null, 2),
    row(s, 'client reads per stream', short, (p) => p?.result.readsPerResponse ?? null, 1, false),
    row(s, 'latency p50, whole stream (ms)', short, (p) => p?.result.latency.p50 ?? null, 2),
    row(s, `ext_proc CPU per stream, ${o.shortWords} tokens (µs)`, short, (p) => cpuUs(p, 'extproc'), 0),
    row(s, `ext_proc CPU per stream, ${o.longWords} tokens (µs)`, long, (p) => cpuUs(p, 'extproc'), 0),
    {
      label: `ext_proc CPU per chunk (µs): difference / ${o.longWords - o.shortWords} events`,
      a: null,
      f: perChunkUs(s.floor, o.shortWords, o.longWords),
      b: perChunkUs(s.gateway, o.shortWords, o.longWords),
      digits: 1,
      compare: true,
    },
  ];
}

function scenarioLines(s: ScenarioResults, r: BenchResults): Line[] {
  const o = r.options;
  const sat: PhasePick = (x) => x.saturation;
  const fixed: PhasePick = (x) => x.fixedRate;
  return [
    { heading: `Saturation: closed loop, ${o.connections} connections, ${o.durationS} s after ${o.warmupS} s warm-up` },
    row(s, 'throughput (req/s)', sat, (p) => p?.requestsPerSecond ?? null, 0),
    row(s, 'latency p50 under saturation (ms)', sat, (p) => p?.result.latency.p50 ?? null, 2),
    row(s, 'latency p99 under saturation (ms)', sat, (p) => p?.result.latency.p99 ?? null, 2),
    { heading: `Latency at a fixed ${o.rate} req/s: open loop, ${o.rateDurationS} s, from each request's scheduled send time (ms)` },
    row(s, 'p50', fixed, (p) => p?.result.latency.p50 ?? null, 2),
    row(s, 'p90', fixed, (p) => p?.result.latency.p90 ?? null, 2),
    row(s, 'p99', fixed, (p) => p?.result.latency.p99 ?? null, 2),
    row(s, 'max', fixed, (p) => p?.result.latency.max ?? null, 2),
    row(s, 'generator send lateness p99 (ms)', fixed, (p) => p?.result.sendLateness?.p99 ?? null, 2, false),
    { heading: `CPU per request at ${o.rate} req/s (µs)` },
    ...cpuRows(s, fixed),
    { heading: 'CPU per request at saturation (µs)' },
    ...cpuRows(s, sat),
    ...pacedLines(s, r),
  ];
}

function memoryLines(r: BenchResults): Line[] {
  const rss = r.rss;
  const held = rss.held;
  const lines: Line[] = [
    { heading: 'ext_proc server memory (VmRSS, MB)' },
    { label: 'idle, before the load', a: null, f: rss.idleMb.floor, b: rss.idleMb.gateway, digits: 1, compare: true },
  ];
  if (held !== null) {
    lines.push(
      { label: 'just before the hold', a: null, f: held.floor.beforeMb, b: held.gateway.beforeMb, digits: 1, compare: true },
      { label: `${held.gateway.streams} streams open at once`, a: null, f: held.floor.heldMb[1], b: held.gateway.heldMb[1], digits: 1, compare: true },
      { label: 'MB per 1,000 open streams', a: null, f: held.floor.mbPer1000Streams, b: held.gateway.mbPer1000Streams, digits: 1, compare: true },
    );
  }
  return lines;
}

function fmt(v: number | null, digits: number): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function diffOf(x: number | null, y: number | null, row: Row): string {
  if (!row.compare || x === null || y === null) return '';
  const d = x - y;
  return (d > 0 ? '+' : '') + fmt(d, row.digits);
}

function ratioOf(x: number | null, y: number | null, row: Row): string {
  if (!row.compare || x === null || y === null || y === 0 || !Number.isFinite(x / y)) return '';
  return `${(x / y).toFixed(2)}×`;
}

function cellsOf(l: Row): string[] {
  return [
    fmt(l.a, l.digits),
    fmt(l.f, l.digits),
    fmt(l.b, l.digits),
    diffOf(l.b, l.a, l),
    diffOf(l.b, l.f, l),
    ratioOf(l.b, l.a, l),
    ratioOf(l.b, l.f, l),
    ratioOf(l.f, l.a, l),
  ];
}

function errorBreakdown(r: BenchResults): string {
  const parts: string[] = [];
  for (const s of r.scenarios) {
    for (const sys of ['plain', 'floor', 'gateway'] as const) {
      const phases: Array<[string, MeasuredPhase | undefined]> = [
        ['fixed rate', s[sys].fixedRate],
        ['saturation', s[sys].saturation],
        ['paced', s[sys].paced?.short],
        ['paced long', s[sys].paced?.long],
      ];
      for (const [label, p] of phases) {
        const e = p?.result.errors;
        if (e !== undefined && e.total > 0) {
          const kinds = Object.entries(e.byKind)
            .map(([k, n]) => `${n} × ${k}`)
            .join(', ');
          parts.push(`${s.name} ${sys} ${label}: ${kinds}`);
        }
      }
    }
  }
  return parts.join('; ');
}

function idleText(r: BenchResults): string {
  const parts = Object.entries(r.idleCpuMsPerS).map(([k, v]) => `${k} ${fmt(v, 1)}`);
  return `${parts.join(', ')}; whole machine ${fmt(r.idleMachinePercentOfCore * 10, 0)}`;
}

function targetValue(t: TargetResult): string {
  if (t.value === null) return 'not measured';
  const digits = t.unit === '×' ? 2 : t.unit === 'ms' ? 2 : 1;
  const v = fmt(t.value, digits);
  return t.unit === '×' ? `${v}×` : `${t.unit === 'ms' && t.value > 0 ? '+' : ''}${v} ${t.unit}`;
}

function verdict(t: TargetResult): string {
  return t.ok === null ? '—' : t.ok ? 'pass' : 'FAIL';
}

/** The "targets (issue #15)" block, as text lines. */
function targetLines(r: BenchResults): string[] {
  const targets = evaluateTargets(r);
  const width = Math.max(...targets.map((t) => t.name.length));
  const valueWidth = Math.max(...targets.map((t) => targetValue(t).length));
  return [
    'Targets (issue #15; informational, a miss does not fail the run):',
    ...targets.map((t) => `  ${t.name.padEnd(width)}  ${targetValue(t).padStart(valueWidth)}  target ${t.target.padEnd(6)}  ${verdict(t)}`),
  ];
}

function renderTable(title: string, lines: Line[]): string[] {
  const cells = lines.map((l) => ('heading' in l ? null : [`  ${l.label}`, ...cellsOf(l)]));
  const widths = new Array<number>(COLUMNS.length + 1).fill(0);
  for (const r of [['', ...COLUMNS], ...cells]) {
    if (r === null) continue;
    r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  }
  const render = (r: string[]): string =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = ['', title, render(['', ...COLUMNS])];
  lines.forEach((l, i) => {
    if ('heading' in l) out.push(l.heading);
    else {
      const c = cells[i];
      if (c !== null && c !== undefined) out.push(render(c));
    }
  });
  return out;
}

/** Fixed-width text table for stdout. */
export function textReport(r: BenchResults): string {
  const out: string[] = [];
  out.push(`Inference Gateway benchmark — ${r.date} (${r.mode})`);
  out.push(describeMachine(r.machine));
  out.push('Systems: A = plain Envoy; F = Envoy + zero-work ext_proc server (floor); B = Envoy + sidecar (gateway)');
  out.push(`Idle CPU (ms per s, before the load): ${idleText(r)}`);
  for (const s of r.scenarios) out.push(...renderTable(`Scenario ${s.name}: ${s.description}`, scenarioLines(s, r)));
  out.push(...renderTable('Memory', memoryLines(r)));
  out.push('');
  out.push(...targetLines(r));
  return out.join('\n');
}

function markdownTable(lines: Line[]): string[] {
  const out = [`| | ${COLUMNS.join(' | ')} |`, `|---|${COLUMNS.map(() => '--:').join('|')}|`];
  const blanks = COLUMNS.map(() => ' |').join('');
  for (const l of lines) {
    if ('heading' in l) out.push(`| **${l.heading}** |${blanks}`);
    else out.push(`| ${l.label} | ${cellsOf(l).join(' | ')} |`);
  }
  return out;
}

/** A dated Markdown section for docs/benchmarks.md. */
export function markdownSection(r: BenchResults, resultsFile: string | null): string {
  const o = r.options;
  const m = r.machine;
  const out: string[] = [];
  out.push(`## ${r.date.slice(0, 10)} (${r.date.slice(11, 16)} UTC, ${r.mode} run)`);
  out.push('');
  out.push(`- Machine: ${describeMachine(m)}.`);
  if (m.git !== null) out.push(`- Code: commit \`${m.git.commit}\`${m.git.dirty ? ' plus uncommitted changes' : ''}.`);
  out.push(
    `- Settings: saturation ${o.connections} connections, ${o.warmupS} s warm-up + ${o.durationS} s; ` +
      `fixed rate ${o.rate} req/s, ${o.warmupS} s warm-up + ${o.rateDurationS} s; ` +
      `paced streams ${o.pacedRate} req/s, ${o.chunkDelayMs} ms between events, ${o.shortWords} and ${o.longWords} tokens; ` +
      `${o.holdStreams} streams held open for the RSS; Envoy \`--concurrency 1\`; ` +
      `quota: ${o.quota === undefined || o.quota === 'none' ? 'none' : `a plan with rps/rpm/tpm/tpd/concurrency on every request, ${o.quota} store`}; audit durability: ${o.auditDurability ?? 'fsync'}${o.sidecarNodeArgs === undefined || o.sidecarNodeArgs.length === 0 ? '' : `; sidecar node options: \`${o.sidecarNodeArgs.join(' ')}\``}.`,
  );
  out.push(`- Idle CPU before the load (ms of CPU per second): ${idleText(r)}.`);
  out.push(
    `- Errors: ${r.errorCount === 0 ? 'none (every response was a valid 200)' : `**${r.errorCount} failed requests (${errorBreakdown(r)}): figures not valid**`}.`,
  );
  if (resultsFile !== null) out.push(`- Raw results: \`${resultsFile}\`.`);
  for (const w of r.warnings) out.push(`- Warning: ${w}`);
  out.push('');
  out.push('### Targets (issue #15)');
  out.push('');
  out.push('| target | measured | limit | |');
  out.push('|---|--:|--:|---|');
  for (const t of evaluateTargets(r)) out.push(`| ${t.name} | ${targetValue(t)} | ${t.target} | ${verdict(t)} |`);
  for (const s of r.scenarios) {
    out.push('');
    out.push(`### ${s.name}: ${s.description}`);
    out.push('');
    out.push(...markdownTable(scenarioLines(s, r)));
  }
  out.push('');
  out.push('### Memory');
  out.push('');
  out.push(...markdownTable(memoryLines(r)));
  out.push('');
  return out.join('\n');
}
