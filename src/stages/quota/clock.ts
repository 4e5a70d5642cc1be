/** UTC offset of a time zone at an instant, for calendar-day limits (DST-aware, cached per minute). */
export class ZoneOffset {
  readonly #fmt: Intl.DateTimeFormat | null;
  #minute = -1;
  #offset = 0;

  constructor(timeZone: string) {
    // UTC, the default, is always offset 0: no formatter, so a sidecar on the default never loads ICU's time zone
    // data, which stays resident once loaded (issue #15; docs/benchmarks.md, "2026-12-06: idle RSS").
    this.#fmt =
      timeZone === 'UTC'
        ? null
        : new Intl.DateTimeFormat('en-US', {
            timeZone,
            hourCycle: 'h23',
            year: 'numeric',
            month: 'numeric',
            day: 'numeric',
            hour: 'numeric',
            minute: 'numeric',
            second: 'numeric',
          });
  }

  at(epochMs: number): number {
    if (this.#fmt === null) return 0;
    const minute = Math.floor(epochMs / 60_000);
    if (minute === this.#minute) return this.#offset;
    const p: Record<string, number> = {};
    for (const part of this.#fmt.formatToParts(epochMs)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const wall = Date.UTC(p['year'] ?? 1970, (p['month'] ?? 1) - 1, p['day'] ?? 1, p['hour'] ?? 0, p['minute'] ?? 0, p['second'] ?? 0);
    this.#minute = minute;
    this.#offset = wall - (epochMs - (epochMs % 1000));
    return this.#offset;
  }
}
