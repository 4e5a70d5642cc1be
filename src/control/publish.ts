/**
 * Publishing a signed snapshot over Redis (what `snapshot publish` and the
 * control plane do): WATCH the key, refuse to replace a snapshot issued
 * later (sidecars would refuse it as a rollback), then SET the key and
 * PUBLISH the version on the channel in one MULTI. Sidecars re-read the key
 * when notified (src/control/pubsub.ts).
 */
import type { Redis } from 'ioredis';
import type { Snapshot } from '../pipeline/snapshot.ts';
import { parseSnapshot } from './snapshot.ts';

export type PublishOutcome =
  | { readonly published: true; readonly receivers: number }
  | { readonly published: false; readonly reason: 'newer'; readonly current: Snapshot }
  | { readonly published: false; readonly reason: 'raced' };

export async function publishSnapshot(
  redis: Redis,
  opts: { readonly key: string; readonly channel: string; readonly text: string; readonly snapshot: Snapshot },
): Promise<PublishOutcome> {
  // WATCH makes the newer-snapshot check and the write one step: a concurrent publish aborts this one.
  await redis.watch(opts.key);
  const existing = await redis.get(opts.key);
  if (existing !== null) {
    let current: Snapshot | null = null;
    try {
      current = parseSnapshot(existing, `Redis key ${opts.key}`);
    } catch {
      // Not a valid snapshot: nothing a sidecar would have accepted, so it may be overwritten.
    }
    if (current?.issuedAt != null && current.issuedAt > (opts.snapshot.issuedAt ?? 0)) {
      await redis.unwatch();
      return { published: false, reason: 'newer', current };
    }
  }
  // The message is only a notification: sidecars re-read the key.
  const result = await redis.multi().set(opts.key, opts.text).publish(opts.channel, opts.snapshot.version).exec();
  if (result === null) return { published: false, reason: 'raced' };
  const failed = result.find(([err]) => err !== null);
  if (failed !== undefined) throw failed[0] as Error;
  return { published: true, receivers: Number(result[1]?.[1] ?? 0) };
}
