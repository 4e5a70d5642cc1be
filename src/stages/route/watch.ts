/**
 * Follows the routing snapshot file: a Kubernetes ConfigMap update swaps a
 * symlink (the file's identity changes), an editor rewrites it in place (its
 * size or mtime changes). Either way the new snapshot is validated whole; a
 * bad one is rejected with the path of each error and the last good snapshot
 * keeps serving. A request keeps the snapshot it started with.
 */
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../../config/errors.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { loadSnapshotFile, replacementProblem, type SnapshotHolder, type SnapshotTrust } from './snapshot.ts';

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

export function watchSnapshotFile(file: string, holder: SnapshotHolder, deps: { log: Logger; metrics: Metrics; trust: SnapshotTrust; intervalMs?: number }): SnapshotWatch {
  let seen = identity(file);
  const check = (): void => {
    const now = identity(file);
    if (now === null || now === seen) return;
    seen = now;
    try {
      const next = loadSnapshotFile(file, deps.trust);
      const prev = holder.current();
      const problem = replacementProblem(prev, next);
      if (problem !== null) throw new ConfigError(file, [problem]);
      holder.replace(next);
      deps.metrics.setSnapshot(next.version, next.loadedAt);
      deps.log.info({ from: prev.version, to: next.version, models: next.models.size }, 'routing snapshot replaced');
    } catch (err) {
      deps.metrics.snapshotRejections.inc();
      deps.log.error({ file, problems: err instanceof ConfigError ? err.problems : [String(err)], keeping: holder.current().version }, 'routing snapshot rejected; the last good one keeps serving');
    }
  };
  const timer = setInterval(check, deps.intervalMs ?? 1000);
  timer.unref();
  return { stop: () => clearInterval(timer), check };
}
