/**
 * A snapshot pushed by the control plane (admin `PUT /routing/snapshot`):
 * accepted only when signed by a trusted control-plane key and not older than
 * the snapshot in use; otherwise refused with the reasons, the current one
 * staying in place.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../../config/errors.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { parseSnapshot, replacementProblem, type SnapshotHolder, type SnapshotTrust } from './snapshot.ts';

export interface PushResult {
  readonly status: number;
  readonly body: object;
}

export function pushSnapshot(text: string, holder: SnapshotHolder, trust: SnapshotTrust, metrics: Metrics, log: Logger): PushResult {
  try {
    const next = parseSnapshot(text, 'pushed snapshot', trust);
    const problem = replacementProblem(holder.current(), next);
    if (problem !== null) throw new ConfigError('pushed snapshot', [problem]);
    const prev = holder.current();
    holder.replace(next);
    metrics.setSnapshot(next.version, next.loadedAt);
    log.info({ from: prev.version, to: next.version, signedBy: next.signedBy }, 'routing snapshot pushed');
    return { status: 200, body: { status: 'accepted', version: next.version } };
  } catch (err) {
    metrics.snapshotRejections.inc();
    const problems = err instanceof ConfigError ? err.problems : [String(err)];
    log.error({ problems, keeping: holder.current().version }, 'pushed routing snapshot rejected');
    return { status: 422, body: { status: 'rejected', problems, version: holder.current().version } };
  }
}
