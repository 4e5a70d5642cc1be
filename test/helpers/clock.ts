/**
 * Time under the test's control, for code that takes an injected clock or
 * poll scheduler: a cooldown passes when the test moves the clock, a poll
 * happens when the test ticks it. No waiting, and the edges (1 ms before,
 * exactly at) can be checked.
 */

export interface TestClock {
  /** Epoch milliseconds, as Date.now. */
  readonly now: () => number;
  advance(ms: number): void;
  set(epochMs: number): void;
}

export function testClock(start: number): TestClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (epochMs) => {
      t = epochMs;
    },
  };
}

/** A poll scheduler (`(tick, intervalMs) => stop`) that only ticks when the test says so. */
export interface ManualPoll {
  readonly schedule: (tick: () => void, intervalMs: number) => () => void;
  /** The interval each poll was started with. */
  readonly intervals: readonly number[];
  /** Polls still running (started and not stopped). */
  readonly running: number;
  /** Runs every running poll's tick once. */
  tick(): void;
}

export function manualPoll(): ManualPoll {
  const ticks = new Set<() => void>();
  const intervals: number[] = [];
  return {
    schedule: (tick, intervalMs) => {
      intervals.push(intervalMs);
      const entry = (): void => tick();
      ticks.add(entry);
      return () => {
        ticks.delete(entry);
      };
    },
    intervals,
    get running() {
      return ticks.size;
    },
    tick: () => {
      for (const t of [...ticks]) t();
    },
  };
}
