/**
 * The attempts of requests with fallbacks, in this process: the upstream
 * phase writes, the downstream phase reads them back when the response comes
 * (by then every earlier attempt has been answered or has failed to connect).
 * An entry nobody takes (the downstream stream ran in another sidecar
 * process, or the request was aborted) expires; the map is bounded.
 */
import type { AttemptEntry, AttemptLedger } from '../../pipeline/ports.ts';
import type { Deployment } from '../../pipeline/snapshot.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';

/** Longer than the route's whole-exchange timeout (120 s in envoy/gateway.yaml) plus retries. */
const TTL_MS = 10 * 60_000;

export class MemoryAttemptLedger implements AttemptLedger {
  readonly #byRequest: BoundedCache<string, AttemptEntry[]>;
  readonly #now: () => number;
  readonly #hr: () => bigint;

  constructor(opts: { maxRequests?: number; now?: () => number; hr?: () => bigint } = {}) {
    this.#byRequest = new BoundedCache(opts.maxRequests ?? 100_000);
    this.#now = opts.now ?? Date.now;
    this.#hr = opts.hr ?? (() => process.hrtime.bigint());
  }

  started(requestId: string, n: number | null, deployment: Deployment, refused = false): number {
    const now = this.#now();
    const list = this.#byRequest.get(requestId, now) ?? [];
    const number = n ?? (list.at(-1)?.n ?? 0) + 1;
    const entry: AttemptEntry = { n: number, deployment, startedHr: this.#hr(), status: null, answeredHr: null, refused };
    const at = list.findIndex((e) => e.n === number);
    if (at >= 0) list[at] = entry;
    else list.push(entry);
    list.sort((a, b) => a.n - b.n);
    this.#byRequest.set(requestId, list, now + TTL_MS);
    return number;
  }

  answered(requestId: string, n: number, status: number): void {
    const entry = this.#byRequest.get(requestId, this.#now())?.find((e) => e.n === n);
    if (entry === undefined) return;
    entry.status = status;
    entry.answeredHr = this.#hr();
  }

  take(requestId: string): AttemptEntry[] {
    const list = this.#byRequest.get(requestId, this.#now()) ?? [];
    this.#byRequest.delete(requestId);
    return list;
  }
}
