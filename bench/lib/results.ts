/** The shape of bench/results/<date>.json. */
import type { MachineInfo } from './machine.ts';
import type { PhaseResult } from './protocol.ts';

/** A: plain Envoy; F: Envoy + the zero-work ext_proc server (floor); B: Envoy + the sidecar (gateway). */
export type SystemKey = 'plain' | 'floor' | 'gateway';
export const SYSTEM_KEYS: readonly SystemKey[] = ['plain', 'floor', 'gateway'];

/** `extproc` is the sidecar for B, the floor server for F (A has none). */
export type ProcessName = 'envoy' | 'extproc' | 'upstream' | 'loadgen';

/** The version of this file's shape; --from refuses others. */
export const RESULTS_SCHEMA = 2;

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
  /** Per process (extproc only for F and B). */
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

/**
 * Streaming scenarios only: open loop at `pacedRate` with the demo upstream
 * pausing `chunkDelayMs` between events, so each event is its own read
 * (inter-chunk gaps), with a short and (F and B only) a long reply (per-chunk
 * CPU: the difference between the two, per extra event).
 */
export interface PacedResults {
  short: MeasuredPhase;
  long?: MeasuredPhase;
}

export interface SystemResults {
  fixedRate: MeasuredPhase;
  saturation: MeasuredPhase;
  paced?: PacedResults;
}

export interface ScenarioResults {
  name: string;
  description: string;
  stream: boolean;
  requestBodyBytes: number;
  plain: SystemResults;
  floor: SystemResults;
  gateway: SystemResults;
}

/** RSS of one ext_proc server (MB = 2^20 bytes) while `streams` streams were held open at once. */
export interface HeldRss {
  /** Just before the hold phase (which runs before the load phases, after the idle readings). */
  beforeMb: number;
  /** Once every held stream was open, and again `holdMs` later. */
  heldMb: [number, number];
  /** Streams that were open at once. */
  streams: number;
  /** (the later held reading − beforeMb) × 1000 / streams. */
  mbPer1000Streams: number;
}

/** The ext_proc servers' memory: F's (floor) and the sidecar's (gateway). */
export interface RssResults {
  /** VmRSS before any load (after start-up and the preflight), MB. */
  idleMb: { floor: number; gateway: number };
  /** null when --hold-streams 0. */
  held: { floor: HeldRss; gateway: HeldRss } | null;
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
  /** Paced streaming phases: requests/s, pause between events (ms), reply lengths (tokens). */
  pacedRate: number;
  chunkDelayMs: number;
  shortWords: number;
  longWords: number;
  /** Streams held open at once for the loaded RSS (0: skipped), and for how long (ms). */
  holdStreams: number;
  holdMs: number;
  timeoutS: number;
  scenarios: string[];
  out: string | null;
  docs: boolean;
  verbose: boolean;
  /** --from: a saved results file to re-print instead of running. */
  from: string | null;
  /** --quota: the gateway also runs a quota plan (every request reserves and settles) in this store. */
  quota?: 'none' | 'memory' | 'redis';
  /** The sidecar's audit.durability (absent in runs before it was an option: fsync). */
  auditDurability?: 'fsync' | 'write';
  /** Options given to the sidecar's node (none in runs before it was an option). */
  sidecarNodeArgs?: readonly string[];
}

export interface BenchResults {
  schema: typeof RESULTS_SCHEMA;
  date: string;
  mode: 'full' | 'quick';
  options: BenchOptions;
  machine: MachineInfo;
  /** CPU used by each process while no load ran, ms per second (already included in the per-request figures). */
  idleCpuMsPerS: Record<string, number>;
  /** Whole machine while no load ran, % of one core (should be near 0). */
  idleMachinePercentOfCore: number;
  scenarios: ScenarioResults[];
  rss: RssResults;
  checks: Check[];
  warnings: string[];
  /** Errors over the whole run (preflight and every phase, warm-ups included). */
  errorCount: number;
  elapsedS: number;
}
