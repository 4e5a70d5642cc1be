/**
 * Waiting in tests: on a condition, never for a fixed time.
 *
 * `waitFor` polls a condition until it yields a value, and fails with a
 * message naming what was awaited when the deadline passes. The deadline is
 * an upper bound for a broken build, not a guess at how long things take:
 * a passing test returns as soon as the condition holds.
 *
 * `holdsFor` is the one sanctioned real-time wait: for a check that
 * something does NOT happen, where the code under test has no clock or
 * event to hook into (e.g. "a notification without a change is not a second
 * rejection" in another process). Callers say why in a comment, and keep the
 * window short: it is a spot check, not a proof.
 */

export interface WaitOptions {
  /** What is awaited, for the timeout message (a function: evaluated only on timeout, e.g. to include process output). */
  readonly what: string | (() => string);
  /** Give up after this long (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 20 ms). */
  readonly intervalMs?: number;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const describe = (what: WaitOptions['what']): string => (typeof what === 'function' ? what() : what);

/**
 * Resolves with the condition's first value that is not `false`, `null` or
 * `undefined` (so a condition can return what it found). A condition that
 * throws fails the wait at once: catch inside the condition what only means
 * "not yet" (e.g. connection refused while a server starts).
 */
export async function waitFor<T>(condition: () => T | false | null | undefined | Promise<T | false | null | undefined>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await condition();
    if (v !== false && v !== null && v !== undefined) return v;
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(opts.what)}`);
    await pause(intervalMs);
  }
}

/**
 * The promise's outcome, or a failure naming `what` when it has not settled
 * within `timeoutMs` (default 5000): for an answer that must come without
 * anything else happening first, so a bug shows as a clear failure instead
 * of a test hanging until the runner's timeout.
 */
export async function withDeadline<T>(p: Promise<T>, opts: { readonly what: string; readonly timeoutMs?: number }): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${opts.what}: not settled within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks `condition` repeatedly for `forMs` and fails as soon as it does not
 * hold. Only for negative checks that no injected clock or event can
 * replace; see the module comment.
 */
export async function holdsFor(
  condition: () => boolean | Promise<boolean>,
  opts: { readonly forMs: number; readonly intervalMs?: number; readonly what: string },
): Promise<void> {
  const until = performance.now() + opts.forMs;
  for (;;) {
    if (!(await condition())) throw new Error(`${opts.what}: stopped holding within ${opts.forMs} ms`);
    if (performance.now() >= until) return;
    await pause(opts.intervalMs ?? 20);
  }
}
