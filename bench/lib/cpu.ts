/**
 * CPU time of other processes, read from /proc (Linux), so the measured
 * programs need no instrumentation.
 *
 * Precise source: the sum over the process's threads of
 * /proc/<pid>/task/<tid>/schedstat (first field: ns on CPU). Threads that exit
 * take their time with them, so when a thread has disappeared between two
 * readings the delta falls back to /proc/<pid>/stat utime+stime, which keeps
 * exited threads' time but only has clock-tick (usually 10 ms) resolution.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcCpu {
  pid: number;
  /** tid → ns on CPU (schedstat); empty when schedstat is unavailable. */
  threads: Map<number, number>;
  /** utime + stime of the whole process, in ns (tick resolution). */
  statNs: number;
}

/** utime+stime (ns) from a /proc/.../stat line; the command name may contain spaces and parentheses. */
function statCpuNs(text: string): number {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(0) ppid(1) ... utime(11) stime(12).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e9) / clockTicks();
}

export function readProcCpu(pid: number): ProcCpu {
  const statNs = statCpuNs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const threads = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        if (Number.isFinite(ns)) threads.set(Number(tid), ns);
      } catch {
        // the thread exited while we listed them
      }
    }
  } catch {
    threads.clear();
  }
  return { pid, threads, statNs };
}

/** CPU time (ms) used between two readings of the same process. */
export function cpuDeltaMs(before: ProcCpu, after: ProcCpu): { ms: number; source: 'schedstat' | 'stat' } {
  let lost = before.threads.size === 0 || after.threads.size === 0;
  for (const tid of before.threads.keys()) {
    if (!after.threads.has(tid)) {
      lost = true;
      break;
    }
  }
  if (lost) return { ms: (after.statNs - before.statNs) / 1e6, source: 'stat' };
  let ns = 0;
  // A thread born in between spent all its time inside the window.
  for (const [tid, t] of after.threads) ns += t - (before.threads.get(tid) ?? 0);
  return { ms: ns / 1e6, source: 'schedstat' };
}

export interface MachineCpu {
  busyTicks: number;
  totalTicks: number;
}

/** Whole-machine CPU counters from /proc/stat. */
export function readMachineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const nums = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = nums.reduce((a, b) => a + b, 0);
  const idle = (nums[3] ?? 0) + (nums[4] ?? 0);
  return { busyTicks: total - idle, totalTicks: total };
}

/** Busy share of all cores between two readings, in percent of one core (200 = two cores fully busy). */
export function machineBusyPercentOfCore(before: MachineCpu, after: MachineCpu, wallMs: number): number {
  return ((after.busyTicks - before.busyTicks) / clockTicks() / (wallMs / 1000)) * 100;
}

/** CPU time (ns, tick resolution) of every process on the machine, with its command name. */
export function readAllProcesses(): Map<number, { comm: string; ns: number }> {
  const out = new Map<number, { comm: string; ns: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      out.set(Number(entry), { comm, ns: statCpuNs(text) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The processes (other than `exclude`) that used the most CPU between two readings, in % of one core. */
export function topOthers(
  before: Map<number, { comm: string; ns: number }>,
  after: Map<number, { comm: string; ns: number }>,
  exclude: Set<number>,
  wallMs: number,
  n = 3,
): Array<{ pid: number; comm: string; percentOfCore: number }> {
  const list: Array<{ pid: number; comm: string; percentOfCore: number }> = [];
  for (const [pid, a] of after) {
    if (exclude.has(pid)) continue;
    const ns = a.ns - (before.get(pid)?.ns ?? 0);
    if (ns > 0) list.push({ pid, comm: a.comm, percentOfCore: (ns / 1e6 / wallMs) * 100 });
  }
  return list.sort((x, y) => y.percentOfCore - x.percentOfCore).slice(0, n);
}
