/**
 * The gateway's cost targets of issue #15, judged on a run's figures. They
 * compare B (the gateway) with F (Envoy + a zero-work ext_proc server), so
 * what they bound is the sidecar's own work, not the protocol's price. They
 * are informational: a missed target does not fail the run.
 */
import type { BenchResults, MeasuredPhase, ProcessName, SystemResults } from './results.ts';

export interface TargetResult {
  name: string;
  /** The measured figure, null when the run did not measure it. */
  value: number | null;
  unit: string;
  /** e.g. "≤ 1.5". */
  target: string;
  /** null when not measured. */
  ok: boolean | null;
}

export function cpuUs(p: MeasuredPhase | undefined, name: ProcessName): number | null {
  const v = p?.cpu[name]?.usPerRequest;
  return v === undefined || !Number.isFinite(v) ? null : v;
}

/**
 * The ext_proc server's CPU per stream event (µs): the paced phase with the
 * long reply minus the one with the short reply, per request, divided by the
 * number of extra events (one per extra token: the demo sends one event per
 * token). Everything else about the two phases is the same (rate, pause,
 * request), so the difference is the cost of the extra chunks alone.
 */
export function perChunkUs(sys: SystemResults, shortWords: number, longWords: number): number | null {
  const short = cpuUs(sys.paced?.short, 'extproc');
  const long = cpuUs(sys.paced?.long, 'extproc');
  if (short === null || long === null || longWords <= shortWords) return null;
  return (long - short) / (longWords - shortWords);
}

const ratio = (b: number | null, f: number | null): number | null => (b === null || f === null || f === 0 ? null : b / f);
const diff = (b: number | null, f: number | null): number | null => (b === null || f === null ? null : b - f);

function judge(name: string, value: number | null, unit: string, op: '≤' | '≥', limit: number): TargetResult {
  const ok = value === null || !Number.isFinite(value) ? null : op === '≤' ? value <= limit : value >= limit;
  return { name, value: value !== null && Number.isFinite(value) ? value : null, unit, target: `${op} ${limit}`, ok };
}

export function evaluateTargets(r: BenchResults): TargetResult[] {
  const out: TargetResult[] = [];
  const o = r.options;
  for (const s of r.scenarios) {
    const F = s.floor;
    const B = s.gateway;
    out.push(
      judge(`${s.name}: sidecar CPU per request at saturation, B / F`, ratio(cpuUs(B.saturation, 'extproc'), cpuUs(F.saturation, 'extproc')), '×', '≤', 1.5),
      judge(`${s.name}: sidecar CPU per request at ${o.rate} req/s, B / F`, ratio(cpuUs(B.fixedRate, 'extproc'), cpuUs(F.fixedRate, 'extproc')), '×', '≤', 1.5),
      judge(`${s.name}: Envoy CPU per request at saturation, B / F`, ratio(cpuUs(B.saturation, 'envoy'), cpuUs(F.saturation, 'envoy')), '×', '≤', 1.15),
      judge(`${s.name}: Envoy CPU per request at ${o.rate} req/s, B / F`, ratio(cpuUs(B.fixedRate, 'envoy'), cpuUs(F.fixedRate, 'envoy')), '×', '≤', 1.15),
      judge(`${s.name}: throughput at saturation, B / F`, ratio(B.saturation.requestsPerSecond, F.saturation.requestsPerSecond), '×', '≥', 0.85),
      judge(`${s.name}: added latency p50 at ${o.rate} req/s, B − F`, diff(B.fixedRate.result.latency.p50, F.fixedRate.result.latency.p50), 'ms', '≤', 0.25),
      judge(`${s.name}: added latency p99 at ${o.rate} req/s, B − F`, diff(B.fixedRate.result.latency.p99, F.fixedRate.result.latency.p99), 'ms', '≤', 1),
    );
    if (s.stream) out.push(judge(`${s.name}: sidecar CPU per stream chunk (B)`, perChunkUs(B, o.shortWords, o.longWords), 'µs', '≤', 30));
  }
  out.push(judge('sidecar idle RSS', r.rss.idleMb.gateway, 'MB', '≤', 80));
  out.push(judge('sidecar RSS per 1,000 open streams', r.rss.held?.gateway.mbPer1000Streams ?? null, 'MB', '≤', 15));
  return out;
}
