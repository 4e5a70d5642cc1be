/**
 * Whether this process has just been stalled: its event loop did not turn
 * for a long while (a long GC pause, CPU throttling, SIGSTOP). Envoy kept
 * its own clock meanwhile and may have given up on streams whose answers
 * were due (the ext_proc message timeout); what it sent before giving up
 * and the end of the stream arrive together when the process resumes. A
 * stream that sees the stall first lets that pending I/O in before it
 * answers, so it learns the request was cut instead of completing it.
 */
import { performance } from 'node:perf_hooks';

const TICK_MS = 50;
/** A loop that has not turned for this long was stalled (well above any synchronous work a request does). */
const STALL_MS = 250;

/** How long after a stall streams keep checking for an end Envoy sent meanwhile (its frames may come a few loop turns later). */
const AFTER_STALL_MS = 1000;

let lastTick = performance.now();
let stallEndedAt = Number.NEGATIVE_INFINITY;
let timer: NodeJS.Timeout | null = null;

function start(): void {
  if (timer !== null) return;
  lastTick = performance.now();
  timer = setInterval(() => {
    const now = performance.now();
    if (now - lastTick > STALL_MS) stallEndedAt = now;
    lastTick = now;
  }, TICK_MS);
  timer.unref();
}

/** True while the loop is catching up after a stall: the watch timer has not run for STALL_MS, or ran late less than a second ago. */
export function loopStalled(): boolean {
  start();
  const now = performance.now();
  return now - lastTick > STALL_MS || now - stallEndedAt < AFTER_STALL_MS;
}
