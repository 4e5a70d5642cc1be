/** The shape of bench/results/<date>.json. */
import type { MachineInfo } from './machine.ts';
import type { PhaseResult } from './protocol.ts';

export type ProcessName = 'envoy' | 'sidecar' | 'upstream' | 'loadgen';

export interface CpuFigure {
  /** CPU time used inside the measurement window. */
  ms: number;
  /** ms × 1000 / requests in the window. */
  usPerRequest: number;
  source: 'schedstat' | 'stat';
}

export interface MeasuredPhase {
  result: PhaseResult;
  /** Requests in the window / window length. */
  requestsPerSecond: number;
  /** Per process (sidecar only for the gateway system). */
  cpu: Partial<Record<ProcessName, CpuFigure>>;
  /** Whole machine, in % of one core (100 × nproc = every core busy). */
  machineBusyPercentOfCore: number;
  /** Machine busy minus the processes measured (and the load generator): other work on the machine. */
  otherPercentOfCore: number;
  /** The busiest processes outside the benchmark during the window. */
  topOtherProcesses: Array<{ pid: number; comm: string; percentOfCore: number }>;
  /** Selected Envoy counters, change over the whole phase (warm-up included); diagnostics. */
  envoyCounters: Record<string, number>;
}

export interface SystemResults {
  fixedRate: MeasuredPhase;
  saturation: MeasuredPhase;
}

export interface ScenarioResults {
  name: string;
  description: string;
  stream: boolean;
  requestBodyBytes: number;
  plain: SystemResults;
  gateway: SystemResults;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface BenchOptions {
  quick: boolean;
  check: boolean;
  connections: number;
  warmupS: number;
  durationS: number;
  rate: number;
  rateDurationS: number;
  timeoutS: number;
  scenarios: string[];
  out: string | null;
  docs: boolean;
  verbose: boolean;
  /** --from: a saved results file to re-print instead of running. */
  from: string | null;
  /** --quota: the gateway also runs a quota plan (every request reserves and settles) in this store. */
  quota?: 'none' | 'memory' | 'redis';
}

export interface BenchResults {
  schema: 1;
  date: string;
  mode: 'full' | 'quick';
  options: BenchOptions;
  machine: MachineInfo;
  /** CPU used by each process while no load ran, ms per second (already included in the per-request figures). */
  idleCpuMsPerS: Record<string, number>;
  /** Whole machine while no load ran, % of one core (should be near 0). */
  idleMachinePercentOfCore: number;
  scenarios: ScenarioResults[];
  checks: Check[];
  warnings: string[];
  /** Errors over the whole run (preflight and every phase, warm-ups included). */
  errorCount: number;
  elapsedS: number;
}
