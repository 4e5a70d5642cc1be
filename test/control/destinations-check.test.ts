/**
 * Deployment trust in the snapshot format, and the destination rule checks
 * (src/control/destinations-check.ts) at `config validate`, at startup and
 * whenever a snapshot is offered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { acceptSnapshot } from '../../src/control/accept.ts';
import { lostDestinations, reviewSnapshot, unsatisfiable, type DestinationCheck } from '../../src/control/destinations-check.ts';
import { parseSnapshot, SnapshotHolder } from '../../src/control/snapshot.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import type { DestinationRule } from '../../src/pipeline/destinations.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { writeGatewayFiles } from '../helpers/fixtures.ts';

const HIPAA = { hosting: 'on-prem', attestations: ['hipaa'], residency: 'us' };
const HOSTED = { hosting: 'hosted', residency: 'us' };

const doc = (version: string, models: object[]): string => JSON.stringify({ version, models });
const care = (targets: object[]) => ({ id: 'care', endpoints: ['chat'], targets });

const PHI_HIPAA: DestinationRule = {
  name: 'phi-hipaa',
  match: { classes: ['PHI'] },
  require: { attestations: ['hipaa'] },
  forbid: {},
};

test('snapshot: trust, priorities and ids are parsed (ids default to cluster/model); one id naming two deployments is refused', () => {
  const s = parseSnapshot(
    doc('v1', [
      care([
        { id: 'onprem-1', cluster: 'a', model: 'x', trust: HIPAA, priorities: [HOSTED] },
        { cluster: 'b', model: 'y' },
      ]),
    ]),
    'test',
  );
  const [a, b] = s.models.get('care')?.targets ?? [];
  assert.equal(a?.id, 'onprem-1');
  assert.deepEqual(a?.trust, { region: null, residency: 'us', hosting: 'on-prem', attestations: ['hipaa'], retention: null, provider: null });
  assert.deepEqual(
    a?.priorities.map((p) => p.hosting),
    ['on-prem', 'hosted'],
  );
  assert.equal(b?.id, 'b/y');
  assert.deepEqual(b?.priorities, [b?.trust]);
  assert.throws(
    () =>
      parseSnapshot(
        doc('v1', [
          care([{ id: 'same', cluster: 'a', model: 'x', trust: HIPAA }]),
          { id: 'other', endpoints: ['chat'], target: { id: 'same', cluster: 'a', model: 'x', trust: HOSTED } },
        ]),
        'test',
      ),
    /deployment id "same" names two different deployments/,
  );
  // The same deployment under the same id in two models is fine.
  parseSnapshot(
    doc('v1', [
      care([{ id: 'same', cluster: 'a', model: 'x', trust: HIPAA }]),
      { id: 'other', endpoints: ['chat'], target: { id: 'same', cluster: 'a', model: 'x', trust: HIPAA } },
    ]),
    'test',
  );
  assert.throws(() => parseSnapshot(doc('v1', [care([{ cluster: 'a', model: 'x', trust: { hosting: 'cloud' } }])]), 'test'), /trust\.hosting/);
  assert.throws(() => parseSnapshot(doc('v1', [care([{ cluster: 'a', model: 'x', trust: { residency: 'EU' } }])]), 'test'), /lower case/);
});

test('a rule no deployment of a model it applies to satisfies is reported, by rule and model; a model it does not apply to is not', () => {
  const s = parseSnapshot(
    doc('v1', [care([{ cluster: 'a', model: 'x', trust: HOSTED }]), { id: 'emb', endpoints: ['embeddings'], target: { cluster: 'e', model: 'e' } }]),
    'test',
  );
  const onlyChat: DestinationRule = { ...PHI_HIPAA, match: { classes: ['PHI'], endpoints: ['chat'] } };
  const problems = unsatisfiable([onlyChat], s);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /"phi-hipaa": no deployment of model "care" satisfies it/);
  // A tenant override with a hipaa deployment makes the rule satisfiable for the model.
  const withOverride = parseSnapshot(
    doc('v1', [
      { ...care([{ cluster: 'a', model: 'x', trust: HOSTED }]), overrides: [{ tenants: ['clinic'], target: { cluster: 'h', model: 'h', trust: HIPAA } }] },
    ]),
    'test',
  );
  assert.deepEqual(unsatisfiable([PHI_HIPAA], withOverride), []);
});

/** Snapshot v1: model "care" on a hosted deployment and a HIPAA one (the next snapshot takes the HIPAA one away). */
function hostedAndHipaa(): ReturnType<typeof parseSnapshot> {
  return parseSnapshot(
    doc('v1', [
      care([
        { cluster: 'a', model: 'x', trust: HOSTED },
        { cluster: 'h', model: 'h', trust: HIPAA },
      ]),
    ]),
    'test',
  );
}

test('a new snapshot that takes away the last deployment a rule allowed is reported', () => {
  const before = hostedAndHipaa();
  const after = parseSnapshot(doc('v2', [care([{ cluster: 'a', model: 'x', trust: HOSTED }])]), 'test');
  assert.deepEqual(lostDestinations([PHI_HIPAA], before, before), []);
  const lost = lostDestinations([PHI_HIPAA], before, after);
  assert.equal(lost.length, 1);
  assert.match(lost[0] ?? '', /snapshot v2 leaves model "care" with no deployment that policy.destinations "phi-hipaa" authorizes \(snapshot v1 had one\)/);
  assert.deepEqual(reviewSnapshot({ rules: [PHI_HIPAA], mode: 'warn' }, before, after), { problems: lost, refuse: false });
  assert.deepEqual(reviewSnapshot({ rules: [PHI_HIPAA], mode: 'refuse' }, before, after), { problems: lost, refuse: true });
  assert.deepEqual(reviewSnapshot({ rules: [], mode: 'refuse' }, before, after), { problems: [], refuse: false });
});

test('acceptance: refuse keeps the current snapshot and counts the rejection; warn takes the new one', async () => {
  const before = hostedAndHipaa();
  const text = doc('v2', [care([{ cluster: 'a', model: 'x', trust: HOSTED }])]);
  for (const mode of ['refuse', 'warn'] as const) {
    const check: DestinationCheck = { rules: [PHI_HIPAA], mode };
    const holder = new SnapshotHolder(before, check);
    const metrics = new Metrics({ processMetrics: false });
    const r = acceptSnapshot('admin_push', () => parseSnapshot(text, 'pushed', { keys: new Map() }), { holder, metrics, log: pino({ enabled: false }) });
    assert.equal(r.accepted, mode === 'warn', mode);
    assert.equal(holder.current().version, mode === 'warn' ? 'v2' : 'v1', mode);
    if (!r.accepted) assert.match(r.problems[0] ?? '', /phi-hipaa/);
    const rejections = await metrics.registry.getSingleMetricAsString('inference_gateway_routing_snapshot_rejections_total');
    assert.equal(/source="admin_push"\} 1/.test(rejections), mode === 'refuse', rejections);
  }
});

test('config validate: warns on stderr with warn, fails naming the rule and model with refuse', () => {
  const files = writeGatewayFiles({
    models: [{ id: 'care', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model' }],
    config: { policy: { destinations: [{ name: 'phi-hipaa', match: { classes: ['PHI'] }, require: { attestations: ['hipaa'] } }] } },
  });
  const validate = () => spawnSync(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'config', 'validate', files.configFile], { encoding: 'utf8' });
  const warned = validate();
  assert.equal(warned.status, 0, warned.stderr);
  assert.match(warned.stderr, /^warning: policy.destinations "phi-hipaa": no deployment of model "care" satisfies it/);
  assert.match(warned.stdout, /: ok /);
  const config = join(files.dir, 'refuse.yaml');
  writeFileSync(
    config,
    stringify({
      routing: { snapshotFile: files.snapshotFile },
      policy: { destinationCheck: 'refuse', destinations: [{ name: 'phi-hipaa', match: { classes: ['PHI'] }, require: { attestations: ['hipaa'] } }] },
    }),
  );
  const refused = spawnSync(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'config', 'validate', config], { encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /policy.destinations "phi-hipaa": no deployment of model "care" satisfies it/);
});
