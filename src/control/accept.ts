/**
 * The one place a new routing snapshot is let in, whatever delivered it (the
 * watched file, an admin push, Redis): parse and verify it, refuse one older
 * than the snapshot in use (no rollback), review it against the data policy's
 * destination rules (src/control/destinations-check.ts: warn, or refuse when
 * configured), swap it in, and report it — or
 * count and log the rejection, leaving the current snapshot serving.
 * Keeping this in one function keeps the rules identical for every channel.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config/errors.ts';
import type { Metrics, SnapshotSource } from '../telemetry/metrics.ts';
import { reviewSnapshot } from './destinations-check.ts';
import { replacementProblem, type RoutingSnapshot as Snapshot, type SnapshotHolder } from './snapshot.ts';

export interface AcceptDeps {
  readonly holder: SnapshotHolder;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export type AcceptOutcome =
  | { readonly accepted: true; readonly snapshot: Snapshot; readonly previous: Snapshot }
  | { readonly accepted: false; readonly problems: readonly string[]; readonly current: Snapshot };

/**
 * `load` parses (and verifies) the candidate; it throws a ConfigError listing
 * the problems when the document is invalid or its signature is not trusted.
 * `fields` are added to the log lines (e.g. `{ key }`); `source` labels the rejection counter and the log lines.
 */
export function acceptSnapshot(source: SnapshotSource, load: () => Snapshot, deps: AcceptDeps, fields: Readonly<Record<string, unknown>> = {}): AcceptOutcome {
  const previous = deps.holder.current();
  let problems: readonly string[];
  try {
    const next = load();
    const problem = replacementProblem(previous, next);
    const review = deps.holder.destinations === null ? null : reviewSnapshot(deps.holder.destinations, previous, next);
    if (problem === null && review?.refuse !== true) {
      if (review !== null && review.problems.length > 0)
        deps.log.warn({ source, ...fields, to: next.version, problems: review.problems }, 'routing snapshot accepted with destination rule warnings');
      deps.holder.replace(next);
      deps.metrics.setSnapshot(next.version, next.loadedAt, next.issuedAt);
      deps.log.info(
        { source, ...fields, from: previous.version, to: next.version, signedBy: next.signedBy, models: next.models.size },
        'routing snapshot replaced',
      );
      return { accepted: true, snapshot: next, previous };
    }
    problems = problem === null ? (review?.problems ?? []) : [problem];
  } catch (err) {
    // Anything else thrown while parsing is still a bad snapshot, never a reason to stop serving.
    problems = err instanceof ConfigError ? err.problems : [String(err)];
  }
  deps.metrics.snapshotRejections.inc({ source });
  deps.log.error({ source, ...fields, problems, keeping: previous.version }, 'routing snapshot rejected; the last good one keeps serving');
  return { accepted: false, problems, current: previous };
}
