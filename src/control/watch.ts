/**
 * Follows the routing snapshot file: a Kubernetes ConfigMap update swaps a
 * symlink (the file's identity changes), an editor rewrites it in place (its
 * size or mtime changes). Either way the new snapshot goes through
 * `acceptSnapshot` (validated whole, signature, no rollback); a bad one is
 * rejected with the path of each error and the last good snapshot keeps
 * serving. A request keeps the snapshot it started with.
 */
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.ts';
import { acceptSnapshot } from './accept.ts';
import { loadSnapshotFile, type SnapshotHolder, type SnapshotTrust } from './snapshot.ts';

/**
 * Starts calling `tick` every `intervalMs` and returns how to stop. The
 * default is an unref'd setInterval; tests pass their own to tick by hand.
 */
export type PollScheduler = (tick: () => void, intervalMs: number) => () => void;

const everyInterval: PollScheduler = (tick, intervalMs) => {
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
};

export interface SnapshotWatch {
  stop(): void;
  /** Checks the file now (also what the timer does). */
  check(): void;
}

function identity(file: string): string | null {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

export function watchSnapshotFile(
  file: string,
  holder: SnapshotHolder,
  deps: { log: Logger; metrics: Metrics; trust: SnapshotTrust; intervalMs?: number; schedule?: PollScheduler },
): SnapshotWatch {
  let seen = identity(file);
  const check = (): void => {
    const now = identity(file);
    if (now === null || now === seen) return;
    seen = now;
    acceptSnapshot('file', () => loadSnapshotFile(file, deps.trust), { holder, metrics: deps.metrics, log: deps.log }, { file });
  };
  const stop = (deps.schedule ?? everyInterval)(check, deps.intervalMs ?? 1000);
  return { stop, check };
}
