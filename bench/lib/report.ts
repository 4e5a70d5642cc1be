/** Renders results as a text table (stdout) and as a Markdown section (docs/benchmarks.md). */
import { describeMachine } from './machine.ts';
import type { BenchResults, MeasuredPhase, ProcessName, ScenarioResults } from './results.ts';

interface Row {
  label: string;
  a: number | null;
  b: number | null;
  digits: number;
  /** Show B − A and B / A. */
  compare: boolean;
}
type Line = Row | { heading: string };

function cpuOf(p: MeasuredPhase, name: ProcessName): number | null {
  return p.cpu[name]?.usPerRequest ?? null;
}

function proxyCpu(p: MeasuredPhase): number | null {
  const envoy = cpuOf(p, 'envoy');
  if (envoy === null) return null;
  return envoy + (cpuOf(p, 'sidecar') ?? 0);
}

function cpuRows(a: MeasuredPhase, b: MeasuredPhase): Row[] {
  return [
    { label: 'Envoy', a: cpuOf(a, 'envoy'), b: cpuOf(b, 'envoy'), digits: 0, compare: true },
    { label: 'sidecar', a: null, b: cpuOf(b, 'sidecar'), digits: 0, compare: false },
    { label: 'proxy total (Envoy + sidecar)', a: proxyCpu(a), b: proxyCpu(b), digits: 0, compare: true },
    { label: 'demo upstream', a: cpuOf(a, 'upstream'), b: cpuOf(b, 'upstream'), digits: 0, compare: true },
    { label: 'load generator', a: cpuOf(a, 'loadgen'), b: cpuOf(b, 'loadgen'), digits: 0, compare: true },
    { label: 'machine busy (% of one core)', a: a.machineBusyPercentOfCore, b: b.machineBusyPercentOfCore, digits: 0, compare: false },
    { label: '  of which other processes (%)', a: a.otherPercentOfCore, b: b.otherPercentOfCore, digits: 0, compare: false },
  ];
}

function scenarioLines(s: ScenarioResults, r: BenchResults): Line[] {
  const { plain: A, gateway: B } = s;
  const o = r.options;
  const fa = A.fixedRate.result.latency;
  const fb = B.fixedRate.result.latency;
  const sa = A.saturation.result.latency;
  const sb = B.saturation.result.latency;
  return [
    { heading: `Saturation: closed loop, ${o.connections} connections, ${o.durationS} s after ${o.warmupS} s warm-up` },
    { label: 'throughput (req/s)', a: A.saturation.requestsPerSecond, b: B.saturation.requestsPerSecond, digits: 0, compare: true },
    { label: 'latency p50 under saturation (ms)', a: sa.p50, b: sb.p50, digits: 2, compare: true },
    { label: 'latency p99 under saturation (ms)', a: sa.p99, b: sb.p99, digits: 2, compare: true },
    { heading: `Latency at a fixed ${o.rate} req/s: open loop, ${o.rateDurationS} s, from each request's scheduled send time (ms)` },
    { label: 'p50', a: fa.p50, b: fb.p50, digits: 2, compare: true },
    { label: 'p90', a: fa.p90, b: fb.p90, digits: 2, compare: true },
    { label: 'p99', a: fa.p99, b: fb.p99, digits: 2, compare: true },
    { label: 'max', a: fa.max, b: fb.max, digits: 2, compare: true },
    {
      label: 'generator send lateness p99 (ms)',
      a: A.fixedRate.result.sendLateness?.p99 ?? null,
      b: B.fixedRate.result.sendLateness?.p99 ?? null,
      digits: 2,
      compare: false,
    },
    { heading: `CPU per request at ${o.rate} req/s (µs)` },
    ...cpuRows(A.fixedRate, B.fixedRate),
    { heading: 'CPU per request at saturation (µs)' },
    ...cpuRows(A.saturation, B.saturation),
  ];
}

function fmt(v: number | null, digits: number): string {
  if (v === null || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function diffOf(row: Row): string {
  if (!row.compare || row.a === null || row.b === null) return '';
  const d = row.b - row.a;
  return (d > 0 ? '+' : '') + fmt(d, row.digits);
}

function ratioOf(row: Row): string {
  if (!row.compare || row.a === null || row.b === null || row.a === 0) return '';
  return `${(row.b / row.a).toFixed(2)}×`;
}

function errorBreakdown(r: BenchResults): string {
  const parts: string[] = [];
  for (const s of r.scenarios) {
    for (const sys of ['plain', 'gateway'] as const) {
      for (const phase of ['fixedRate', 'saturation'] as const) {
        const e = s[sys][phase].result.errors;
        if (e.total > 0) {
          const kinds = Object.entries(e.byKind)
            .map(([k, n]) => `${n} × ${k}`)
            .join(', ');
          parts.push(`${s.name} ${sys} ${phase === 'fixedRate' ? 'fixed rate' : 'saturation'}: ${kinds}`);
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

const TITLE: Record<string, string> = { a: 'A: plain Envoy', b: 'B: gateway', d: 'B − A', r: 'B / A' };

/** Fixed-width text table for stdout. */
export function textReport(r: BenchResults): string {
  const out: string[] = [];
  out.push(`Inference Gateway benchmark — ${r.date} (${r.mode})`);
  out.push(describeMachine(r.machine));
  out.push(`Idle CPU (ms per s, before the load): ${idleText(r)}`);
  for (const s of r.scenarios) {
    const lines = scenarioLines(s, r);
    const cells = lines.map((l) => ('heading' in l ? null : [`  ${l.label}`, fmt(l.a, l.digits), fmt(l.b, l.digits), diffOf(l), ratioOf(l)]));
    const widths = [0, 0, 0, 0, 0];
    const header = [`Scenario ${s.name}: ${s.description}`, TITLE.a ?? '', TITLE.b ?? '', TITLE.d ?? '', TITLE.r ?? ''];
    for (const row of [header.map((h, i) => (i === 0 ? '' : h)), ...cells]) {
      if (row === null) continue;
      row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
    }
    const render = (row: string[]): string =>
      row
        .map((c, i) => (i === 0 ? c.padEnd(widths[0] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    out.push('');
    out.push(header[0] ?? '');
    out.push(render(['', ...header.slice(1)]));
    lines.forEach((l, i) => {
      if ('heading' in l) out.push(l.heading);
      else {
        const c = cells[i];
        if (c !== null && c !== undefined) out.push(render(c));
      }
    });
  }
  return out.join('\n');
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
      `fixed rate ${o.rate} req/s, ${o.warmupS} s warm-up + ${o.rateDurationS} s; Envoy \`--concurrency 1\`; ` +
      `quota: ${o.quota === undefined || o.quota === 'none' ? 'none' : `a plan with rps/rpm/tpm/tpd/concurrency on every request, ${o.quota} store`}.`,
  );
  out.push(`- Idle CPU before the load (ms of CPU per second): ${idleText(r)}.`);
  out.push(
    `- Errors: ${r.errorCount === 0 ? 'none (every response was a valid 200)' : `**${r.errorCount} failed requests (${errorBreakdown(r)}): figures not valid**`}.`,
  );
  if (resultsFile !== null) out.push(`- Raw results: \`${resultsFile}\`.`);
  for (const w of r.warnings) out.push(`- Warning: ${w}`);
  for (const s of r.scenarios) {
    out.push('');
    out.push(`### ${s.name}: ${s.description}`);
    out.push('');
    out.push(`| | ${TITLE.a} | ${TITLE.b} | ${TITLE.d} | ${TITLE.r} |`);
    out.push('|---|--:|--:|--:|--:|');
    for (const l of scenarioLines(s, r)) {
      if ('heading' in l) out.push(`| **${l.heading}** | | | | |`);
      else out.push(`| ${l.label} | ${fmt(l.a, l.digits)} | ${fmt(l.b, l.digits)} | ${diffOf(l)} | ${ratioOf(l)} |`);
    }
  }
  out.push('');
  return out.join('\n');
}
