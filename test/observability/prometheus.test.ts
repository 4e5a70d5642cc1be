/**
 * The dashboard and the alerting rules against a real Prometheus that
 * scraped a real sidecar: the end-to-end stack (Envoy + sidecar process +
 * demo model server) serves buffered and streamed requests, a 5xx from the
 * model server, an unknown model and a quota refusal; then a private
 * Prometheus (test/helpers/prometheus.ts; 1 s scrapes, the rules file
 * loaded) scrapes the sidecar's /metrics. Every panel query is sent to
 * Prometheus's query API (the dashboard's variables substituted) and must be
 * accepted; those whose metrics this run produces must return series. Every
 * rule must be loaded and evaluated without error, and the signal each alert
 * watches must have data.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { RULES_FILE, ROWS } from '../../scripts/observability.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { prometheusMissing, startPrometheus, type TestPrometheus } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = prometheusMissing();
const JOB = 'inference-gateway';

/**
 * Panel queries whose metrics this run cannot produce, and why. Every other
 * query must return series. Matched against the query text.
 */
const NO_DATA_IN_THIS_RUN: ReadonlyArray<readonly [RegExp, string]> = [
  [/inference_gateway_fallbacks_total/, 'the run has no target with fallbacks'],
  [/inference_gateway_stream_errors_total/, 'no ext_proc stream of the run ends abnormally'],
  [/inference_gateway_quota_store_errors_total|inference_gateway_quota_degraded_decisions_total/, 'the embedded in-memory quota store does not fail'],
];

/** What each alert watches (a part of its expression) — must have data after the run, so the alert can fire at all. */
const ALERT_SIGNALS: Record<string, string | null> = {
  InferenceGatewayAuditFailures: 'increase(inference_gateway_audit_failures_total[5m])',
  InferenceGatewaySidecarDown: 'up{job="inference-gateway"}',
  InferenceGatewaySidecarAbsent: 'up{job="inference-gateway"}',
  InferenceGatewayQuotaStoreDegraded: null, // no series until the store fails (NO_DATA_IN_THIS_RUN)
  InferenceGatewaySnapshotRejected: 'increase(inference_gateway_routing_snapshot_rejections_total[15m])',
  InferenceGatewaySnapshotStale: 'max by (job, instance) (inference_gateway_routing_snapshot_age_seconds)',
  InferenceGatewaySnapshotVersionSkew: 'count by (job, version) (inference_gateway_routing_snapshot_info)',
  InferenceGatewayBudgetNearExhaustion: 'max by (plan, budget, scope, tenant) (inference_gateway_budget_used_ratio)',
  InferenceGatewayBudgetExhausted: 'sum by (plan, limit) (increase(inference_gateway_quota_decisions_total{outcome="denied",limit=~"budget_.*"}[15m]))',
  InferenceGatewayHighErrorRate: 'sum by (job) (rate(inference_gateway_requests_total[5m]))',
  InferenceGatewayUpstreamErrors: 'sum by (cluster) (rate(inference_gateway_upstream_responses_total[5m]))',
};
/** Signals that exist but legitimately have no series in this run. */
const SIGNAL_WITHOUT_DATA = new Set<string>();

/** The dashboard's variables as Grafana substitutes them (All = .*). */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$job', JOB).replaceAll('$model', '.*').replaceAll('$tenant', '.*');
}

let stack: TestStack;
let prom: TestPrometheus;

interface Vector {
  resultType: string;
  result: Array<{ metric: Record<string, string>; value: [number, string] }>;
}

before(async () => {
  if (skip !== false) return;
  stack = await startTestStack({
    keys: [
      { principal: 'alice', org: 'acme', tenant: 'research' },
      { principal: 'limited', tier: 'one-rpm' },
      { principal: 'broke', tier: 'tiny-budget', tenant: 'frugal' },
    ],
    // gpt-demo has a price: cost per tenant; a plan whose budget no request fits: a budget refusal.
    models: [
      {
        id: 'gpt-demo',
        endpoints: ['chat', 'completions'],
        cluster: 'demo-upstream',
        model: 'demo-model',
        price: { inputPerMillion: '0.5', outputPerMillion: '1.5' },
      },
    ],
    config: {
      quotas: {
        plans: [
          { name: 'one-rpm', limits: [{ scope: 'key', rpm: 1 }] },
          { name: 'tiny-budget', limits: [{ scope: 'tenant', budgetDaily: '0.000001' }] },
        ],
      },
    },
  });
  const alice = stack.client('alice');
  const ask = { model: 'gpt-demo', messages: [{ role: 'user' as const, content: 'Hello there, how are you today?' }] };
  for (let i = 0; i < 3; i++) await alice.chat.completions.create(ask);
  // Streams whose events arrive apart: time to first token, inter-token latency and tokens/s.
  for (let i = 0; i < 2; i++) {
    const s = await stack.client('alice', { 'x-demo-chunk-delay-ms': '15', 'x-demo-words': '6' }).chat.completions.create({ ...ask, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta.content ?? '';
    assert.ok(text.length > 0);
  }
  await assert.rejects(stack.client('alice', { 'x-demo-status': '500' }).chat.completions.create(ask), { status: 500 });
  await assert.rejects(alice.chat.completions.create({ ...ask, model: 'no-such-model' }), { status: 404 });
  const limited = stack.client('limited');
  await limited.chat.completions.create(ask);
  await assert.rejects(limited.chat.completions.create(ask), { status: 429 });
  await assert.rejects(stack.client('broke').chat.completions.create(ask), { status: 429, code: 'budget_exceeded' });

  const sidecar = stack.sidecar;
  assert.ok(sidecar !== null);
  prom = await startPrometheus({ jobs: { [JOB]: [new URL(sidecar.adminUrl).host] }, ruleFiles: [RULES_FILE] });
  // The target is up, and two scrapes are in (rate() needs two samples).
  await waitFor(
    async () => {
      const t = await prom.api<{ activeTargets: Array<{ health: string; lastError: string }> }>('targets');
      return t.activeTargets.length === 1 && t.activeTargets[0]?.health === 'up';
    },
    { what: () => `the sidecar target up in Prometheus:\n${prom.output()}`, timeoutMs: 30_000, intervalMs: 100 },
  );
  await waitFor(async () => (await prom.api<Vector>('query', { query: `count_over_time(up{job="${JOB}"}[1m]) >= 2` })).result.length === 1, {
    what: 'two scrapes of the sidecar',
    timeoutMs: 30_000,
    intervalMs: 100,
  });
});

after(async () => {
  await prom?.stop();
  await stack?.stop();
});

test('every dashboard query is accepted by Prometheus; each one whose metrics the run produced returns series', { skip }, async () => {
  const queries = ROWS.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: substitute(t.expr) }))));
  assert.ok(queries.length >= 30);
  const empty: string[] = [];
  for (const { panel, expr } of queries) {
    let data: Vector;
    try {
      data = await prom.api<Vector>('query', { query: expr });
    } catch (err) {
      assert.fail(`${panel}: Prometheus refused ${expr}: ${(err as Error).message}`);
    }
    assert.equal(data.resultType, 'vector', `${panel}: ${expr}`);
    const excused = NO_DATA_IN_THIS_RUN.find(([re]) => re.test(expr));
    if (data.result.length === 0 && excused === undefined) empty.push(`${panel}: ${expr}`);
  }
  assert.deepEqual(empty, [], 'queries without data');
});

test(
  'the new metrics carry what the run did: ITL and tokens/s for the streams, upstream 2xx and 5xx on the demo cluster, the 429 by limit',
  { skip },
  async () => {
    const value = async (query: string): Promise<number> => {
      const r = await prom.api<Vector>('query', { query });
      assert.equal(r.result.length, 1, query);
      return Number(r.result[0]?.value[1]);
    };
    assert.equal(await value('sum(inference_gateway_inter_token_latency_seconds_count{model="gpt-demo"})'), 2);
    assert.equal(await value('sum(inference_gateway_output_tokens_per_second_count{model="gpt-demo"})'), 2);
    assert.ok((await value('sum(inference_gateway_inter_token_latency_seconds_sum)')) > 0);
    // 3 + 2 + 1 (limited) answered, 1 failed with 500; the refused and unknown-model requests never went upstream.
    assert.equal(await value('sum(inference_gateway_upstream_responses_total{cluster="demo-upstream",status_class="2xx"})'), 6);
    assert.equal(await value('sum(inference_gateway_upstream_responses_total{cluster="demo-upstream",status_class="5xx"})'), 1);
    assert.equal(await value('sum(inference_gateway_upstream_latency_seconds_count{cluster="demo-upstream"})'), 7);
    assert.equal(await value('sum(inference_gateway_quota_decisions_total{outcome="denied",limit="rpm"})'), 1);
    assert.ok((await value('inference_gateway_routing_snapshot_age_seconds')) >= 0);
    assert.ok((await value('rate(inference_gateway_process_cpu_seconds_total[1m])')) >= 0);
  },
);

test('every alerting rule is loaded and evaluated without error, and the signal each alert watches has data', { skip }, async () => {
  const rules = (YAML.parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap(
    (g) => g.rules,
  );
  assert.deepEqual(rules.map((r) => r.alert).sort(), Object.keys(ALERT_SIGNALS).sort(), 'a signal for every alert (ALERT_SIGNALS)');
  const loaded = await waitFor(
    async () => {
      const data = await prom.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> }>('rules');
      const all = data.groups.flatMap((g) => g.rules);
      return all.length === rules.length && all.every((r) => !r.lastEvaluation.startsWith('0001-')) ? all : false;
    },
    { what: 'every rule evaluated once', timeoutMs: 30_000, intervalMs: 100 },
  );
  for (const r of loaded) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);
  for (const rule of rules) {
    // The alert's own expression is accepted by the query API too.
    await prom.api<Vector>('query', { query: rule.expr });
    const signal = ALERT_SIGNALS[rule.alert];
    if (signal === null || signal === undefined) continue;
    assert.ok(rule.expr.includes(signal), `${rule.alert}: its expression contains ${signal}`);
    const data = await prom.api<Vector>('query', { query: signal });
    if (!SIGNAL_WITHOUT_DATA.has(rule.alert)) assert.ok(data.result.length > 0, `${rule.alert}: ${signal} has data`);
  }
  // Only what the run provoked on purpose is active: the tenant whose budget no request fits is past 80% of it (pending:
  // the alert waits 5 minutes). Nothing else fires against a healthy sidecar (one 5xx in a few requests stays under
  // the alerts' rate floors).
  const alerts = await prom.api<{ alerts: Array<{ labels: { alertname: string; tenant?: string }; state: string }> }>('alerts');
  assert.deepEqual(
    alerts.alerts.map((a) => `${a.labels.alertname} ${a.labels.tenant ?? ''} ${a.state}`),
    ['InferenceGatewayBudgetNearExhaustion frugal pending'],
  );
});
