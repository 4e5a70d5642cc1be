/**
 * A snapshot pushed by the control plane (admin `PUT /routing/snapshot`):
 * accepted only when signed by a trusted control-plane key and not older than
 * the snapshot in use (`acceptSnapshot`); otherwise refused with the reasons,
 * the current one staying in place.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.ts';
import { acceptSnapshot } from './accept.ts';
import { parseSnapshot, type SnapshotHolder, type SnapshotTrust } from './snapshot.ts';

export interface PushResult {
  readonly status: number;
  readonly body: object;
}

export function pushSnapshot(text: string, holder: SnapshotHolder, trust: SnapshotTrust, metrics: Metrics, log: Logger): PushResult {
  const r = acceptSnapshot('admin_push', () => parseSnapshot(text, 'pushed snapshot', trust), { holder, metrics, log });
  return r.accepted
    ? { status: 200, body: { status: 'accepted', version: r.snapshot.version } }
    : { status: 422, body: { status: 'rejected', problems: r.problems, version: r.current.version } };
}
