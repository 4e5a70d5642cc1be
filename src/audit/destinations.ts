/**
 * `audit export --by destination`: which requests went where, from the audit
 * records' destination evidence (docs/audit.md). One row per UTC day ×
 * logical model × serving deployment (its id; null when none served), with
 * the data classes those requests carried (found, and still sent after
 * redaction), the destination rules that constrained them, the deployments
 * their attempts were vetoed on, and outcomes. With a class, only requests
 * in which that class was found are counted: "which requests with PHI went
 * where". Checkpoints are skipped, other non-records counted as skipped.
 */
import { compareKeys, obj, RecordFold, str } from './records.ts';
import type { UsageRange } from './range.ts';
import type { SourceLine } from './verify.ts';

export interface DestinationRow {
  /** UTC date of `startedAt`, YYYY-MM-DD. */
  readonly day: string;
  readonly model: string | null;
  /** The id of the deployment that served the requests; null: none did (refused, failed before an answer). */
  readonly deployment: string | null;
  requests: number;
  /** Requests per data class found in them. */
  readonly found: Record<string, number>;
  /** Requests per data class still sent to the deployment after redaction. */
  readonly sent: Record<string, number>;
  /** Requests per destination rule that excluded a deployment of their route. */
  readonly constrainedBy: Record<string, number>;
  /** Attempts the sidecar vetoed, per deployment id (never sent there). */
  readonly vetoed: Record<string, number>;
  readonly outcomes: Record<string, number>;
  /** Requests per error code (no_authorized_deployment, authorized_deployment_unavailable, …). */
  readonly codes: Record<string, number>;
}

export interface DestinationReport {
  /** Sorted by day, model, deployment. */
  readonly rows: DestinationRow[];
  /** The class filter, or null. */
  readonly dataClass: string | null;
  readonly records: number;
  readonly outside: number;
  readonly skipped: number;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

export class DestinationAccumulator extends RecordFold {
  readonly #rows = new Map<string, DestinationRow>();
  readonly #class: string | null;

  constructor(range: UsageRange = {}, dataClass: string | null = null) {
    super(range);
    this.#class = dataClass;
  }

  protected fold(rec: Record<string, unknown>, started: number): boolean {
    const classes = obj(obj(rec.classification)?.classes);
    const found = strings(classes?.found);
    if (this.#class !== null && !found.includes(this.#class)) return false;
    const day = new Date(started).toISOString().slice(0, 10);
    const model = str(rec.model);
    const deployment = str(obj(rec.deployment)?.id);
    const key = JSON.stringify([day, model, deployment]);
    let row = this.#rows.get(key);
    if (row === undefined) {
      row = { day, model, deployment, requests: 0, found: {}, sent: {}, constrainedBy: {}, vetoed: {}, outcomes: {}, codes: {} };
      this.#rows.set(key, row);
    }
    row.requests++;
    for (const c of found) bump(row.found, c);
    for (const c of strings(classes?.sent)) bump(row.sent, c);
    for (const r of strings(obj(rec.destinations)?.constraining)) bump(row.constrainedBy, r);
    for (const a of Array.isArray(rec.attempts) ? rec.attempts : []) {
      const attempt = obj(a);
      if (attempt?.refused === true) bump(row.vetoed, str(attempt.id) ?? 'unknown');
    }
    bump(row.outcomes, str(rec.outcome) ?? 'unknown');
    const code = str(obj(rec.decision)?.code);
    if (code !== null) bump(row.codes, code);
    return true;
  }

  report(): DestinationReport {
    const cmp = compareKeys;
    const rows = [...this.#rows.values()].sort((a, b) => cmp(a.day, b.day) || cmp(a.model, b.model) || cmp(a.deployment, b.deployment));
    return { rows, dataClass: this.#class, ...this.counts };
  }
}

export async function exportDestinations(
  lines: AsyncIterable<SourceLine>,
  range: UsageRange = {},
  dataClass: string | null = null,
): Promise<DestinationReport> {
  const acc = new DestinationAccumulator(range, dataClass);
  for await (const l of lines) acc.addLine(l.text);
  return acc.report();
}
