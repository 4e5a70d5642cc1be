/**
 * The dashboard and the alerting rules as files: generated files up to date,
 * the ConfigMap's embedded JSON identical to the dashboard file, the k8s
 * objects valid, the rules accepted by `promtool check rules` and passing
 * their unit tests (`promtool test rules`), and every panel and alert
 * described in docs/observability.md. The same expressions against a real
 * Prometheus that scraped a sidecar: prometheus.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { OBSERVABILITY_DIR, outputs, ROWS, RULES_FILE } from '../../scripts/observability.ts';
import { build } from '../k8s/kustomize.ts';
import { prometheusMissing } from '../helpers/prometheus.ts';

const run = promisify(execFile);
const read = (name: string): string => readFileSync(join(OBSERVABILITY_DIR, name), 'utf8');
const skip = prometheusMissing();
const PROMTOOL_TESTS = join(PROJECT_ROOT, 'test', 'observability', 'alerts.promtool.yml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const rules = (YAML.parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups.flatMap((g) => g.rules);

test('the generated files are what scripts/observability.ts writes (run it after editing the panels or the rules)', () => {
  const expected = outputs();
  assert.deepEqual([...expected.keys()].sort(), ['grafana-dashboard.json', 'grafana-dashboard.yaml', 'prometheus-rule.yaml', 'prometheus-rules.yaml']);
  for (const [name, text] of expected) assert.equal(read(name), text, `k8s/observability/${name} is out of date: node scripts/observability.ts`);
});

test("the dashboard ConfigMap carries Grafana's sidecar label and exactly the dashboard JSON file", () => {
  const [cm] = YAML.parseAllDocuments(read('grafana-dashboard.yaml')).map((d) => d.toJS() as Record<string, unknown>);
  assert.ok(cm !== undefined);
  const model = new ConfigMap(cm);
  model.validate();
  assert.equal(model.metadata?.labels?.['grafana_dashboard'], '1');
  const data = model.data ?? {};
  assert.deepEqual(Object.keys(data), ['inference-gateway.json']);
  assert.equal(data['inference-gateway.json'], read('grafana-dashboard.json'), 'byte for byte');
  // And it is a dashboard: every panel of the panel list, each with a query.
  const dash = JSON.parse(read('grafana-dashboard.json')) as { uid: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }> };
  assert.equal(dash.uid, 'inference-gateway');
  const panels = dash.panels.filter((p) => p.type !== 'row');
  assert.deepEqual(
    panels.map((p) => p.title),
    ROWS.flatMap((r) => r.panels.map((p) => p.title)),
  );
  assert.ok(panels.every((p) => (p.targets ?? []).length > 0 && p.targets?.every((t) => t.expr.length > 0)));
});

test('the rules ConfigMap holds the rules file as is; the PrometheusRule holds the same groups', () => {
  const rulesText = readFileSync(RULES_FILE, 'utf8');
  const cm = new ConfigMap(YAML.parse(read('prometheus-rules.yaml')) as Record<string, unknown>);
  cm.validate();
  assert.equal(cm.data?.['inference-gateway.rules.yml'], rulesText);
  const pr = YAML.parse(read('prometheus-rule.yaml')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(pr).sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
  assert.equal(pr['apiVersion'], 'monitoring.coreos.com/v1');
  assert.equal(pr['kind'], 'PrometheusRule');
  assert.deepEqual(pr['spec'], { groups: (YAML.parse(rulesText) as { groups: unknown }).groups });
});

test('kustomize build of k8s/observability: the two ConfigMaps, valid against the Kubernetes schema', () => {
  const b = build(join(PROJECT_ROOT, 'k8s', 'observability'));
  assert.deepEqual(b.objects.map((o) => `${String(o.doc.kind)}/${String((o.doc.metadata as { name: string }).name)}`).sort(), [
    'ConfigMap/inference-gateway-alerts',
    'ConfigMap/inference-gateway-dashboard',
  ]);
  for (const o of b.objects) new ConfigMap(o.doc).validate();
});

test('every alert has a severity, a summary, a description and a runbook anchor that docs/observability.md has', () => {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'observability.md'), 'utf8');
  assert.ok(rules.length >= 8);
  for (const r of rules) {
    assert.match(r.labels['severity'] ?? '', /^(critical|warning)$/, r.alert);
    assert.ok((r.annotations['summary'] ?? '') !== '' && (r.annotations['description'] ?? '') !== '', r.alert);
    assert.equal(r.annotations['runbook'], `docs/observability.md#${r.alert.toLowerCase()}`);
    assert.ok(doc.includes(`### ${r.alert}\n`), `docs/observability.md has a section "### ${r.alert}"`);
  }
  for (const row of ROWS) for (const p of row.panels) assert.ok(doc.includes(`**${p.title}**`), `docs/observability.md describes the panel "${p.title}"`);
});

test('promtool check rules: the rules file and the PrometheusRule spec', { skip }, async () => {
  const { stdout } = await run('promtool', ['check', 'rules', RULES_FILE]);
  assert.match(stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  // A broken expression is refused (the check bites).
  const dir = mkdtempSync(join(tmpdir(), 'igw-rules-'));
  const broken = join(dir, 'broken.yml');
  writeFileSync(
    broken,
    YAML.stringify({ groups: [{ name: 'x', rules: [{ alert: 'Broken', expr: 'sum by (job) (rate(inference_gateway_requests_total[5m])' }] }] }),
  );
  await assert.rejects(run('promtool', ['check', 'rules', broken]), /parse error|unclosed/i);
  rmSync(dir, { recursive: true, force: true });
});

test('promtool test rules: each alert fires on its input series and stays quiet on the others', { skip }, async () => {
  const { stdout } = await run('promtool', ['test', 'rules', PROMTOOL_TESTS]);
  assert.match(stdout, /SUCCESS/);
  // Every alert is expected to fire somewhere in the unit tests.
  const tests = YAML.parse(readFileSync(PROMTOOL_TESTS, 'utf8')) as {
    tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
  };
  const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
  for (const r of rules) {
    assert.ok(fired.has(r.alert), `${r.alert} fires in a promtool test`);
    assert.ok(quiet.has(r.alert), `${r.alert} stays quiet in a promtool test`);
  }
});
