/**
 * Usage and cost export from audit records: one row per UTC day × org ×
 * tenant × API key × logical model × currency, with request count, prompt and
 * completion tokens (and how many requests / tokens were estimated rather
 * than counted by the upstream), cost, and outcome counts. The day is the UTC
 * date of `startedAt`. Costs are summed exactly (integers of 10⁻¹² units,
 * src/pipeline/cost.ts) and written as decimal strings; a row's currency is
 * null when none of its requests had a price.
 *
 * Checkpoint lines are skipped; lines that are not JSON or not records are
 * counted as `skipped` (run `audit verify` to learn why). Export does not
 * verify the chain.
 */
import { formatUnits, parseUnits } from '../pipeline/cost.ts';
import { compareKeys, num, obj, RecordFold, str } from './records.ts';
import type { UsageRange } from './range.ts';
import type { SourceLine } from './verify.ts';

/** A row while records are folded in: costs as integers until the report. */
type Accumulating = Omit<UsageRow, 'cost' | 'estimatedCost'> & { costUnits: bigint; estimatedCostUnits: bigint };

export interface UsageRow {
  /** UTC date, YYYY-MM-DD. */
  readonly day: string;
  /** null: not authenticated (e.g. a denied request without credentials). */
  readonly org: string | null;
  readonly tenant: string | null;
  /** The API key's public id; null for requests without one (JWT or mTLS only, or not authenticated). */
  readonly key: string | null;
  /** Logical model (routing id); null when the request was not routed. */
  readonly model: string | null;
  /** ISO 4217 code of `cost`; null when no request of the row had a price. */
  readonly currency: string | null;
  /** Sum of the requests' costs, an exact decimal string ("0" when none had a price). */
  cost: string;
  /** Of `cost`, what was computed from estimated usage. */
  estimatedCost: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Requests whose usage was estimated (`usage.source` = `estimated`). */
  estimatedRequests: number;
  /** Prompt + completion tokens of those requests. */
  estimatedTokens: number;
  /** Requests per outcome (`completed`, `denied`, `failed`, `aborted`, …). */
  readonly outcomes: Record<string, number>;
}

export interface UsageReport {
  /** Sorted by day, org, tenant, model. */
  readonly rows: UsageRow[];
  readonly totals: {
    readonly requests: number;
    readonly promptTokens: number;
    readonly completionTokens: number;
    readonly estimatedRequests: number;
    readonly estimatedTokens: number;
    /** Cost per currency, exact decimal strings. */
    readonly cost: Record<string, string>;
    readonly outcomes: Record<string, number>;
  };
  /** Request records read (in the time range). */
  readonly records: number;
  /** Records outside the time range. */
  readonly outside: number;
  /** Lines that are neither a record nor a checkpoint. */
  readonly skipped: number;
}

/** Folds records into usage rows. */
export class UsageAccumulator extends RecordFold {
  readonly #rows = new Map<string, Accumulating>();

  protected fold(rec: Record<string, unknown>, started: number): boolean {
    const day = new Date(started).toISOString().slice(0, 10);
    const authz = obj(rec.authorization);
    const org = str(authz?.org);
    const tenant = str(authz?.tenant);
    const model = str(rec.model);
    const apiKey = str(obj(rec.identity)?.keyId);
    const cost = obj(rec.cost);
    const costUnits = cost === null ? null : parseUnits(str(cost.amount) ?? '');
    const currency = costUnits === null ? null : str(cost?.currency);
    const rowKey = JSON.stringify([day, org, tenant, apiKey, model, currency]);
    let row = this.#rows.get(rowKey);
    if (row === undefined) {
      row = {
        day,
        org,
        tenant,
        key: apiKey,
        model,
        currency,
        costUnits: 0n,
        estimatedCostUnits: 0n,
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
        estimatedRequests: 0,
        estimatedTokens: 0,
        outcomes: {},
      };
      this.#rows.set(rowKey, row);
    }
    row.requests++;
    if (costUnits !== null && currency !== null) {
      row.costUnits += costUnits;
      if (cost?.estimated === true) row.estimatedCostUnits += costUnits;
    }
    const usage = obj(rec.usage);
    if (usage !== null) {
      const p = num(usage.promptTokens);
      const c = num(usage.completionTokens);
      row.promptTokens += p;
      row.completionTokens += c;
      if (usage.source === 'estimated') {
        row.estimatedRequests++;
        row.estimatedTokens += p + c;
      }
    }
    const outcome = str(rec.outcome) ?? 'unknown';
    row.outcomes[outcome] = (row.outcomes[outcome] ?? 0) + 1;
    return true;
  }

  report(): UsageReport {
    const cmp = compareKeys;
    const rows = [...this.#rows.values()].sort(
      (a, b) => cmp(a.day, b.day) || cmp(a.org, b.org) || cmp(a.tenant, b.tenant) || cmp(a.key, b.key) || cmp(a.model, b.model) || cmp(a.currency, b.currency),
    );
    const outcomes: Record<string, number> = {};
    const costs = new Map<string, bigint>();
    let requests = 0;
    let promptTokens = 0;
    let completionTokens = 0;
    let estimatedRequests = 0;
    let estimatedTokens = 0;
    for (const r of rows) {
      requests += r.requests;
      promptTokens += r.promptTokens;
      completionTokens += r.completionTokens;
      estimatedRequests += r.estimatedRequests;
      estimatedTokens += r.estimatedTokens;
      if (r.currency !== null) costs.set(r.currency, (costs.get(r.currency) ?? 0n) + r.costUnits);
      for (const [k, v] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
    }
    const cost = Object.fromEntries([...costs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, u]) => [c, formatUnits(u)]));
    return {
      rows: rows.map(({ costUnits, estimatedCostUnits, ...r }) => ({
        ...r,
        cost: formatUnits(costUnits),
        estimatedCost: formatUnits(estimatedCostUnits),
        outcomes: { ...r.outcomes },
      })),
      totals: { requests, promptTokens, completionTokens, estimatedRequests, estimatedTokens, cost, outcomes },
      ...this.counts,
    };
  }
}

/** Usage over every line of the sources. */
export async function exportUsage(lines: AsyncIterable<SourceLine>, range: UsageRange = {}): Promise<UsageReport> {
  const acc = new UsageAccumulator(range);
  for await (const l of lines) acc.addLine(l.text);
  return acc.report();
}

/** Pretty JSON, with a trailing newline. */
export function usageToJson(report: UsageReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The fixed outcome columns of the CSV; any other outcome goes to `other`. */
export const CSV_OUTCOMES = ['completed', 'denied', 'failed', 'aborted'] as const;

export const CSV_HEADER = [
  'day',
  'org',
  'tenant',
  'key',
  'model',
  'requests',
  'prompt_tokens',
  'completion_tokens',
  'estimated_requests',
  'estimated_tokens',
  'currency',
  'cost',
  'estimated_cost',
  ...CSV_OUTCOMES,
  'other',
] as const;

/** RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (quotes doubled). */
export function csvField(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a header row, CRLF line ends (RFC 4180). */
export function usageToCsv(report: UsageReport): string {
  const lines = [CSV_HEADER.join(',')];
  for (const r of report.rows) {
    const known = CSV_OUTCOMES.map((o) => r.outcomes[o] ?? 0);
    const other = Object.entries(r.outcomes)
      .filter(([k]) => !(CSV_OUTCOMES as readonly string[]).includes(k))
      .reduce((sum, [, v]) => sum + v, 0);
    const fields: Array<string | number | null> = [
      r.day,
      r.org,
      r.tenant,
      r.key,
      r.model,
      r.requests,
      r.promptTokens,
      r.completionTokens,
      r.estimatedRequests,
      r.estimatedTokens,
      r.currency,
      r.cost,
      r.estimatedCost,
      ...known,
      other,
    ];
    lines.push(fields.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
