/**
 * Writes the observability files under k8s/observability from two sources:
 * the dashboard's panels (below) and the alerting rules
 * (k8s/observability/alerts.rules.yml, edited by hand). Generated:
 *
 *   grafana-dashboard.json   the Grafana dashboard (import it, or let the sidecar load the ConfigMap)
 *   grafana-dashboard.yaml   a ConfigMap with the grafana_dashboard: "1" label, the JSON embedded as is
 *   prometheus-rules.yaml    a ConfigMap with the rules file, for a Prometheus that loads rule files
 *   prometheus-rule.yaml     a PrometheusRule (prometheus-operator) with the same groups
 *
 * `node scripts/observability.ts` rewrites them; `--check` exits 1 naming any
 * file that differs from what would be written (test/observability checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

const ROOT = join(import.meta.dirname, '..');
export const OBSERVABILITY_DIR = join(ROOT, 'k8s', 'observability');
export const RULES_FILE = join(OBSERVABILITY_DIR, 'alerts.rules.yml');

const DS = { type: 'prometheus', uid: '${datasource}' } as const;
/** Every query's common selector: the scrape job chosen in the dashboard. */
const J = 'job=~"$job"';

interface Target {
  readonly expr: string;
  readonly legend: string;
}

export interface PanelSpec {
  readonly title: string;
  /** What the panel shows, in words (docs/observability.md lists every panel). */
  readonly description: string;
  readonly type: 'timeseries' | 'stat' | 'table';
  readonly unit: string;
  readonly targets: readonly Target[];
}

interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const q = (expr: string, legend = ''): Target => ({ expr, legend });
const quantiles = (metric: string, by: string, filter: string, qs: readonly number[] = [0.5, 0.95, 0.99]): Target[] =>
  qs.map((p) =>
    q(
      `histogram_quantile(${p}, sum by (le${by === '' ? '' : `, ${by}`}) (rate(${metric}_bucket{${filter}}[$__rate_interval])))`,
      `p${Math.round(p * 100)}${by === '' ? '' : ` {{${by}}}`}`,
    ),
  );

export const ROWS: readonly RowSpec[] = [
  {
    title: 'Traffic',
    panels: [
      {
        title: 'Requests per second by endpoint',
        description: 'Requests the sidecar finished, per second, by endpoint (chat, completions, messages, embeddings, ...).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [q(`sum by (endpoint) (rate(inference_gateway_requests_total{${J}, model=~"$model"}[$__rate_interval]))`, '{{endpoint}}')],
      },
      {
        title: 'Requests per second by model',
        description: 'The same requests by logical model (the id clients send; "none" before a model was resolved).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [q(`sum by (model) (rate(inference_gateway_requests_total{${J}, model=~"$model"}[$__rate_interval]))`, '{{model}}')],
      },
      {
        title: 'Open streams',
        description: 'ext_proc streams open now, one per HTTP request in flight, summed over the sidecars.',
        type: 'timeseries',
        unit: 'short',
        targets: [q(`sum(inference_gateway_active_streams{${J}})`, 'open')],
      },
    ],
  },
  {
    title: 'Errors',
    panels: [
      {
        title: 'Responses by status',
        description: 'Requests per second by the final HTTP status the client got ("none": the client left before an answer).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [q(`sum by (status) (rate(inference_gateway_requests_total{${J}, model=~"$model"}[$__rate_interval]))`, '{{status}}')],
      },
      {
        title: 'Error ratio',
        description: 'Share of requests that ended 5xx, and share refused by the gateway (decision deny: 4xx from authentication, validation, policy, quota).',
        type: 'timeseries',
        unit: 'percentunit',
        targets: [
          q(
            `sum(rate(inference_gateway_requests_total{${J}, model=~"$model", status=~"5.."}[$__rate_interval])) / sum(rate(inference_gateway_requests_total{${J}, model=~"$model"}[$__rate_interval]))`,
            '5xx',
          ),
          q(
            `sum(rate(inference_gateway_requests_total{${J}, model=~"$model", decision="deny"}[$__rate_interval])) / sum(rate(inference_gateway_requests_total{${J}, model=~"$model"}[$__rate_interval]))`,
            'denied',
          ),
        ],
      },
      {
        title: 'Upstream responses by deployment and status class',
        description:
          'Attempts per second on each deployment cluster by status class (2xx/4xx/5xx, none: no response); every attempt of a fallback chain counts.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [
          q(
            `sum by (cluster, status_class) (rate(inference_gateway_upstream_responses_total{${J}, model=~"$model"}[$__rate_interval]))`,
            '{{cluster}} {{status_class}}',
          ),
        ],
      },
      {
        title: 'Fallbacks and stream errors',
        description: 'Attempts that failed over to the next deployment, by provider and reason; ext_proc streams that ended abnormally, by reason.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          q(`sum by (provider, reason) (rate(inference_gateway_fallbacks_total{${J}, model=~"$model"}[$__rate_interval]))`, 'fallback {{provider}} {{reason}}'),
          q(`sum by (reason) (rate(inference_gateway_stream_errors_total{${J}}[$__rate_interval]))`, 'stream {{reason}}'),
        ],
      },
    ],
  },
  {
    title: 'Latency',
    panels: [
      {
        title: 'Sidecar time per ext_proc message (p99)',
        description: 'The time the sidecar took to answer one ext_proc message, 99th percentile by phase (request headers, body, response headers, body).',
        type: 'timeseries',
        unit: 's',
        targets: quantiles('inference_gateway_phase_duration_seconds', 'phase', J, [0.99]),
      },
      {
        title: 'Time to first token',
        description: 'From the request reaching the sidecar to the first generated token of a stream: p50, p95, p99.',
        type: 'timeseries',
        unit: 's',
        targets: quantiles('inference_gateway_time_to_first_token_seconds', '', `${J}, model=~"$model"`),
      },
      {
        title: 'Inter-token latency',
        description: 'Per streamed request, the mean gap between chunks carrying generated text: p50, p95, p99 over requests.',
        type: 'timeseries',
        unit: 's',
        targets: quantiles('inference_gateway_inter_token_latency_seconds', '', `${J}, model=~"$model"`),
      },
      {
        title: 'Output tokens per second',
        description: 'Per streamed request with a counted completion, completion tokens / (end − first token): median and the slowest 10% (p10).',
        type: 'timeseries',
        unit: 'short',
        targets: quantiles('inference_gateway_output_tokens_per_second', '', `${J}, model=~"$model"`, [0.5, 0.1]),
      },
      {
        title: 'Upstream latency by deployment (p95)',
        description: "From the request leaving the sidecar (or a fallback attempt starting) to the deployment's response headers, 95th percentile by cluster.",
        type: 'timeseries',
        unit: 's',
        targets: quantiles('inference_gateway_upstream_latency_seconds', 'cluster', J, [0.95]),
      },
    ],
  },
  {
    title: 'Tokens and cost',
    panels: [
      {
        title: 'Tokens per second by kind',
        description: 'Prompt and completion tokens per second, counted (reported by the model server) or estimated.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          q(`sum by (kind, source) (rate(inference_gateway_tokens_total{${J}, model=~"$model", tenant=~"$tenant"}[$__rate_interval]))`, '{{kind}} {{source}}'),
        ],
      },
      {
        title: 'Tokens per second by tenant',
        description: 'All tokens (prompt and completion) per second, by org and tenant.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          q(`sum by (org, tenant) (rate(inference_gateway_tokens_total{${J}, model=~"$model", tenant=~"$tenant"}[$__rate_interval]))`, '{{org}}/{{tenant}}'),
        ],
      },
      {
        title: 'Spend per hour by tenant',
        description: 'Cost per hour (in the currency of the deployment prices) by org, tenant and currency, from inference_gateway_cost_total.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          q(
            `sum by (org, tenant, currency) (rate(inference_gateway_cost_total{${J}, model=~"$model", tenant=~"$tenant"}[$__rate_interval])) * 3600`,
            '{{org}}/{{tenant}} {{currency}}',
          ),
        ],
      },
      {
        title: 'Spend over the last 24 hours',
        description: 'Cost over the last 24 hours by org, tenant, model and currency (a rolling window, not the calendar day budgets count).',
        type: 'table',
        unit: 'short',
        targets: [
          q(
            `sum by (org, tenant, model, currency) (increase(inference_gateway_cost_total{${J}, model=~"$model", tenant=~"$tenant"}[24h]))`,
            '{{org}}/{{tenant}} {{model}}',
          ),
        ],
      },
      {
        title: 'Budget used by tenant',
        description:
          'Share of each spend budget used (reservations included) at the last decision that checked it, by plan, period, scope and tenant; the near-exhaustion alert fires above 0.8.',
        type: 'timeseries',
        unit: 'percentunit',
        targets: [
          q(
            `max by (plan, budget, scope, tenant) (inference_gateway_budget_used_ratio{${J}, tenant=~"$tenant"})`,
            '{{tenant}} {{budget}} {{scope}} ({{plan}})',
          ),
        ],
      },
      {
        title: 'Budget refusals by plan',
        description: 'Requests refused by a spend budget (limit budget_daily or budget_monthly), per second, by quota plan and limit.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [
          q(
            `sum by (plan, limit) (rate(inference_gateway_quota_decisions_total{${J}, outcome="denied", limit=~"budget_.*"}[$__rate_interval]))`,
            '{{plan}} {{limit}}',
          ),
        ],
      },
    ],
  },
  {
    title: 'Quotas',
    panels: [
      {
        title: 'Quota refusals by limit',
        description: 'Requests refused by a quota, per second, by plan and the limit that refused (rps, rpm, tpm, tpd, concurrency, budget_*).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [q(`sum by (plan, limit) (rate(inference_gateway_quota_decisions_total{${J}, outcome="denied"}[$__rate_interval]))`, '{{plan}} {{limit}}')],
      },
      {
        title: 'Quota decisions',
        description: 'Quota decisions per second by outcome (admitted, denied).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [q(`sum by (outcome) (rate(inference_gateway_quota_decisions_total{${J}}[$__rate_interval]))`, '{{outcome}}')],
      },
      {
        title: 'Quota store health',
        description: "Quota store (Redis) errors by operation, and requests decided by a plan's store-down policy instead of the store.",
        type: 'timeseries',
        unit: 'short',
        targets: [
          q(`sum by (operation) (rate(inference_gateway_quota_store_errors_total{${J}}[$__rate_interval]))`, 'error {{operation}}'),
          q(`sum by (plan, policy) (rate(inference_gateway_quota_degraded_decisions_total{${J}}[$__rate_interval]))`, 'degraded {{plan}} {{policy}}'),
        ],
      },
    ],
  },
  {
    title: 'Audit',
    panels: [
      {
        title: 'Audit commit time',
        description: 'From handing a record to the audit sink to it being written (fsync, or Redis replication): p50 and p99.',
        type: 'timeseries',
        unit: 's',
        targets: quantiles('inference_gateway_audit_commit_duration_seconds', '', J, [0.5, 0.99]),
      },
      {
        title: 'Audit failures',
        description: 'Records that could not be committed in the range; each one is a request that failed closed. Anything above 0 needs attention.',
        type: 'stat',
        unit: 'short',
        targets: [q(`sum(increase(inference_gateway_audit_failures_total{${J}}[$__range]))`, 'failures')],
      },
    ],
  },
  {
    title: 'Sidecar process',
    panels: [
      {
        title: 'Sidecar CPU',
        description: 'CPU seconds per second used by each sidecar process (1 = one core).',
        type: 'timeseries',
        unit: 'short',
        targets: [q(`rate(inference_gateway_process_cpu_seconds_total{${J}}[$__rate_interval])`, '{{instance}}')],
      },
      {
        title: 'Sidecar memory',
        description: 'Resident memory and V8 heap in use of each sidecar process.',
        type: 'timeseries',
        unit: 'bytes',
        targets: [
          q(`inference_gateway_process_resident_memory_bytes{${J}}`, 'rss {{instance}}'),
          q(`inference_gateway_nodejs_heap_size_used_bytes{${J}}`, 'heap {{instance}}'),
        ],
      },
      {
        title: 'Event loop delay (p99)',
        description: "The 99th percentile of each sidecar's event loop delay: time requests wait before the sidecar can run them.",
        type: 'timeseries',
        unit: 's',
        targets: [q(`inference_gateway_nodejs_eventloop_lag_p99_seconds{${J}}`, '{{instance}}')],
      },
      {
        title: 'Sidecars up',
        description: 'Sidecars whose metrics Prometheus scraped successfully, out of those it knows.',
        type: 'stat',
        unit: 'short',
        targets: [q(`sum(up{${J}})`, 'up'), q(`count(up{${J}})`, 'known')],
      },
    ],
  },
  {
    title: 'Routing snapshot',
    panels: [
      {
        title: 'Snapshot in use',
        description: 'The routing snapshot version each sidecar serves (replicas should agree).',
        type: 'table',
        unit: 'short',
        targets: [q(`max by (instance, version) (inference_gateway_routing_snapshot_info{${J}})`, '{{instance}} {{version}}')],
      },
      {
        title: 'Snapshot age',
        description: 'Seconds since the snapshot in use was issued by the control plane (its load time when it carries no issue time).',
        type: 'timeseries',
        unit: 's',
        targets: [q(`inference_gateway_routing_snapshot_age_seconds{${J}}`, '{{instance}}')],
      },
      {
        title: 'Snapshot rejections',
        description: 'Routing snapshots refused (invalid, untrusted or older than the one in use) in the range, by how they arrived (file, admin_push, redis).',
        type: 'timeseries',
        unit: 'short',
        targets: [q(`sum by (source) (increase(inference_gateway_routing_snapshot_rejections_total{${J}}[$__rate_interval]))`, '{{source}}')],
      },
    ],
  },
];

// ── the dashboard JSON ──────────────────────────────────────────────────────

function variable(name: string, label: string, query: string): object {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query, refId: `${name}-values` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
  };
}

export function dashboard(): object {
  const panels: object[] = [];
  let id = 0;
  let y = 0;
  for (const row of ROWS) {
    panels.push({ id: ++id, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    const w = row.panels.length >= 3 ? 8 : 12;
    row.panels.forEach((p, i) => {
      const x = (i * w) % 24;
      if (i > 0 && x === 0) y += 8;
      panels.push({
        id: ++id,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource: DS,
        gridPos: { h: 8, w, x, y },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        options: p.type === 'stat' ? { reduceOptions: { calcs: ['lastNotNull'] } } : {},
        targets: p.targets.map((t, j) => ({
          refId: String.fromCharCode(65 + j),
          datasource: DS,
          expr: t.expr,
          legendFormat: t.legend,
          ...(p.type === 'table' ? { format: 'table', instant: true } : {}),
        })),
      });
    });
    y += 8;
  }
  return {
    uid: 'inference-gateway',
    title: 'Inference Gateway',
    description:
      'Traffic, errors, latency (TTFT, inter-token, tokens/s), tokens, cost and budgets, quotas, audit, the sidecar process and routing snapshots. docs/observability.md describes each panel.',
    tags: ['inference-gateway'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: '',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        {
          name: 'job',
          label: 'Job',
          type: 'query',
          datasource: DS,
          query: { query: 'label_values(inference_gateway_requests_total, job)', refId: 'job-values' },
          definition: 'label_values(inference_gateway_requests_total, job)',
          refresh: 2,
          includeAll: false,
          multi: false,
          current: { text: 'inference-gateway', value: 'inference-gateway' },
          sort: 1,
        },
        variable('model', 'Model', 'label_values(inference_gateway_requests_total{job=~"$job"}, model)'),
        variable('tenant', 'Tenant', 'label_values(inference_gateway_tokens_total{job=~"$job"}, tenant)'),
      ],
    },
    panels,
  };
}

// ── the k8s manifests ───────────────────────────────────────────────────────

const HEADER = '# Generated by scripts/observability.ts from {source}; do not edit (run `node scripts/observability.ts`).\n';
const LABELS = { 'app.kubernetes.io/name': 'inference-gateway', 'app.kubernetes.io/component': 'observability' };

export function outputs(): Map<string, string> {
  const json = `${JSON.stringify(dashboard(), null, 2)}\n`;
  const rulesText = readFileSync(RULES_FILE, 'utf8');
  const rules = YAML.parse(rulesText) as { groups: unknown[] };
  const yaml = (doc: object): string => YAML.stringify(doc, { lineWidth: 0 });
  return new Map([
    ['grafana-dashboard.json', json],
    [
      'grafana-dashboard.yaml',
      HEADER.replace('{source}', 'its panel list') +
        yaml({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'inference-gateway-dashboard', labels: { ...LABELS, grafana_dashboard: '1' } },
          data: { 'inference-gateway.json': json },
        }),
    ],
    [
      'prometheus-rules.yaml',
      HEADER.replace('{source}', 'alerts.rules.yml') +
        yaml({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'inference-gateway-alerts', labels: LABELS },
          data: { 'inference-gateway.rules.yml': rulesText },
        }),
    ],
    [
      'prometheus-rule.yaml',
      HEADER.replace('{source}', 'alerts.rules.yml') +
        yaml({
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'PrometheusRule',
          metadata: { name: 'inference-gateway', labels: LABELS },
          spec: { groups: rules.groups },
        }),
    ],
  ]);
}

if (import.meta.main) {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [name, text] of outputs()) {
    const file = join(OBSERVABILITY_DIR, name);
    let current: string | null;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = null;
    }
    if (current === text) continue;
    if (check) stale.push(name);
    else writeFileSync(file, text);
  }
  if (stale.length > 0) {
    process.stderr.write(`out of date (run node scripts/observability.ts): ${stale.join(', ')}\n`);
    process.exit(1);
  }
}
