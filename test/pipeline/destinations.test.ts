/**
 * Destination rules (src/pipeline/destinations.ts) over plain values, the
 * policy stage that picks the applicable ones, and the processor and upstream
 * attempt with them over fake ports. Through real Envoy:
 * test/e2e/destinations.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../../src/config/schema.ts';
import {
  applicableRules,
  authorizeRoute,
  deploymentSatisfies,
  tenantMatches,
  trustSatisfies,
  type DestinationRule,
  type DestinationSubject,
} from '../../src/pipeline/destinations.ts';
import { ATTEMPT_HEADER, decodeMark, decodeTicket, FALLBACK_HEADER } from '../../src/pipeline/fallback.ts';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import type { PhaseResult } from '../../src/pipeline/phase-result.ts';
import type { Price } from '../../src/pipeline/cost.ts';
import type { Deployment, TrustAttributes } from '../../src/pipeline/snapshot.ts';
import { DestinationPolicy } from '../../src/stages/policy/destinations.ts';
import { pickAmong } from '../../src/stages/route/resolver.ts';
import { deployment, identity, NO_TRUST_STATED, rig, route, snapshot, USER_KEY, type Rig } from './fakes.ts';

const trust = (over: Partial<TrustAttributes>): TrustAttributes => ({ ...NO_TRUST_STATED, ...over });
const rule = (name: string, over: Partial<DestinationRule>): DestinationRule => ({ name, match: {}, require: {}, forbid: {}, ...over });
const subject: DestinationSubject = { endpoint: 'chat', model: 'care', tenant: 'eu-berlin', org: 'acme', roles: ['user'] };

const PHI_HIPAA = rule('phi-hipaa', { match: { classes: ['PHI'] }, require: { attestations: ['hipaa'], hosting: ['on-prem', 'private'] } });
const EU = rule('eu-residency', { match: { tenants: ['eu-*'] }, require: { residency: ['eu'] } });
const NOT_HOSTED = rule('secret-not-hosted', { match: { classes: ['SECRET'] }, forbid: { hosting: ['hosted'] } });

test('tenant patterns: * stands for any characters, everything else is literal', () => {
  for (const [p, t, want] of [
    ['eu-*', 'eu-berlin', true],
    ['eu-*', 'eu-', true],
    ['eu-*', 'us-east', false],
    ['eu-*', 'xeu-berlin', false],
    ['*-prod', 'eu-prod', true],
    ['*-prod', 'eu-prod-2', false],
    ['a*b*c', 'a-b-c', true],
    ['a*b*c', 'acb', false],
    ['a*a', 'a', false],
    ['*', 'anything', true],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    ['e.u', 'eux', false],
  ] as const)
    assert.equal(tenantMatches(p, t), want, `${p} ~ ${t}`);
});

test('require: one of the values for a single-valued attribute, every one for attestations; forbid: stated and none of them', () => {
  const onPrem = trust({ hosting: 'on-prem', attestations: ['hipaa', 'pci'], residency: 'us' });
  assert.equal(trustSatisfies(onPrem, PHI_HIPAA), true);
  assert.equal(trustSatisfies(trust({ hosting: 'hosted', attestations: ['hipaa'] }), PHI_HIPAA), false, 'hosting not among the required');
  assert.equal(trustSatisfies(trust({ hosting: 'private', attestations: ['pci'] }), PHI_HIPAA), false, 'no hipaa');
  assert.equal(trustSatisfies(onPrem, rule('both', { require: { attestations: ['hipaa', 'pci'] } })), true);
  assert.equal(trustSatisfies(trust({ attestations: ['hipaa'] }), rule('both', { require: { attestations: ['hipaa', 'pci'] } })), false);
  assert.equal(trustSatisfies(onPrem, EU), false);
  assert.equal(trustSatisfies(trust({ hosting: 'hosted' }), NOT_HOSTED), false);
  assert.equal(trustSatisfies(trust({ hosting: 'private' }), NOT_HOSTED), true);
  // Not stated: satisfies no requirement and no prohibition.
  assert.equal(trustSatisfies(NO_TRUST_STATED, EU), false);
  assert.equal(trustSatisfies(NO_TRUST_STATED, NOT_HOSTED), false);
  assert.equal(trustSatisfies(NO_TRUST_STATED, rule('no-pci', { forbid: { attestations: ['pci'] } })), true, 'holding no attestation holds none of them');
  assert.equal(trustSatisfies(onPrem, rule('no-pci', { forbid: { attestations: ['pci'] } })), false);
  for (const label of ['region', 'retention', 'provider'] as const) {
    const r = rule(label, { require: { [label]: ['x'] } });
    assert.equal(trustSatisfies(trust({ [label]: 'x' }), r), true, label);
    assert.equal(trustSatisfies(trust({ [label]: 'y' }), r), false, label);
  }
});

test('a deployment satisfies a rule only at every priority of its cluster', () => {
  const t = trust({ hosting: 'on-prem', attestations: ['hipaa'] });
  const spill = deployment('c', 'm', { trust: t, priorities: [t, trust({ hosting: 'hosted', attestations: ['hipaa'] })] });
  assert.equal(deploymentSatisfies(spill, PHI_HIPAA), false);
  assert.equal(deploymentSatisfies(deployment('c', 'm', { trust: t, priorities: [t, t] }), PHI_HIPAA), true);
});

test('a rule applies when its filters match and, if it names classes, one of them is still sent', () => {
  const rules = [PHI_HIPAA, EU, NOT_HOSTED, rule('ops-only', { match: { roles: ['ops'] }, require: { region: ['x'] } })];
  assert.deepEqual(
    applicableRules(rules, subject, new Set()).map((r) => r.name),
    ['eu-residency'],
  );
  assert.deepEqual(
    applicableRules(rules, subject, new Set(['PHI', 'PII'])).map((r) => r.name),
    ['phi-hipaa', 'eu-residency'],
  );
  assert.deepEqual(
    applicableRules(rules, { ...subject, tenant: 'us-east', roles: ['ops'] }, new Set(['SECRET'])).map((r) => r.name),
    ['secret-not-hosted', 'ops-only'],
  );
  const filtered = rule('f', { match: { endpoints: ['embeddings'], models: ['care'], orgs: ['acme'] }, require: { region: ['x'] } });
  assert.equal(applicableRules([filtered], subject, new Set()).length, 0, 'endpoint differs');
  assert.equal(applicableRules([filtered], { ...subject, endpoint: 'embeddings' }, new Set()).length, 1);
  assert.equal(applicableRules([filtered], { ...subject, endpoint: 'embeddings', org: 'other' }, new Set()).length, 0);
});

const HIPAA_TRUST = trust({ hosting: 'on-prem', attestations: ['hipaa'], residency: 'eu' });
const hosted = deployment('hosted', 'gen', { id: 'hosted', trust: trust({ hosting: 'hosted', residency: 'us' }), weight: 1000 });
const onPrem = deployment('onprem', 'hip', { id: 'onprem', trust: HIPAA_TRUST, priorities: [HIPAA_TRUST], weight: 1 });

test('authorizeRoute: the authorized targets, every authorized deployment (chain members too) and the rules that excluded one', () => {
  const r = route('care', ['chat'], [hosted, onPrem]);
  const a = authorizeRoute(r, [PHI_HIPAA]);
  assert.deepEqual([...a.targets], [onPrem]);
  assert.deepEqual(
    a.deployments.map((d) => d.id),
    ['onprem'],
  );
  assert.deepEqual(a.constraining, ['phi-hipaa']);
  const none = authorizeRoute(r, []);
  assert.deepEqual([...none.targets], [hosted, onPrem]);
  assert.deepEqual(none.constraining, []);
  // A chain is entered through its first member; later members are authorized one by one.
  const member = (id: string, t: TrustAttributes): Deployment => deployment(id, id, { id, trust: t, priorities: [t], weight: 0 });
  const eu1 = member('eu-1', trust({ residency: 'eu' }));
  const us1 = member('us-1', trust({ residency: 'us' }));
  const eu2 = member('eu-2', trust({ residency: 'eu' }));
  const chained: Deployment = { ...eu1, weight: 1, fallback: { cluster: 'agg', chain: [eu1, us1, eu2] } };
  const c = authorizeRoute(route('regional', ['chat'], [chained]), [EU]);
  assert.deepEqual([...c.targets], [chained]);
  assert.deepEqual(
    c.deployments.map((d) => d.id),
    ['eu-1', 'eu-2'],
  );
  const usFirst: Deployment = { ...us1, weight: 1, fallback: { cluster: 'agg2', chain: [us1, eu1] } };
  assert.equal(authorizeRoute(route('r', ['chat'], [usFirst]), [EU]).targets.size, 0);
});

test('pickAmong keeps the weights of the authorized targets, never picks a drained one', () => {
  const a = deployment('a', 'a', { weight: 3 });
  const b = deployment('b', 'b', { weight: 1 });
  const c = deployment('c', 'c', { weight: 0 });
  const r = route('m', ['chat'], [a, b, c]);
  const among = new Set([a, b, c]);
  assert.equal(pickAmong(r, among, 0), a);
  assert.equal(pickAmong(r, among, 0.74), a);
  assert.equal(pickAmong(r, among, 0.75), b);
  assert.equal(pickAmong(r, among, 0.9999999), b);
  assert.equal(pickAmong(r, new Set([b, c]), 0), b);
  assert.throws(() => pickAmong(r, new Set([c]), 0.5), /no authorized target has a weight/);
});

test('config: destination rules must require or forbid something, names are unique; destinationCheck defaults to warn', () => {
  const parse = (destinations: unknown[]) => ConfigSchema.safeParse({ policy: { destinations } });
  assert.equal(parse([{ name: 'x', match: { classes: ['PHI'] } }]).success, false);
  assert.equal(parse([{ name: 'x', require: { hosting: ['cloud'] } }]).success, false, 'hosting is one of on-prem, private, hosted');
  assert.equal(
    parse([
      { name: 'x', require: { region: ['eu'] } },
      { name: 'x', forbid: { region: ['us'] } },
    ]).success,
    false,
  );
  assert.equal(parse([{ name: 'x', match: { tenants: ['eu-*'] }, require: { residency: ['eu'] } }]).success, true);
  const ok = ConfigSchema.parse({});
  assert.equal(ok.policy.destinationCheck, 'warn');
  assert.deepEqual(ok.policy.destinations, []);
});

test('the policy stage returns the rules that apply to the request', () => {
  const cfg = ConfigSchema.parse({
    policy: {
      destinations: [
        { name: 'phi-hipaa', match: { classes: ['PHI'] }, require: { attestations: ['hipaa'] } },
        { name: 'eu', match: { tenants: ['eu-*'] }, require: { residency: ['eu'] } },
      ],
    },
  });
  const p = new DestinationPolicy(cfg.policy);
  assert.deepEqual(
    p.rulesFor({ ...subject, tenant: 'us-1' }, new Set(['PII'])).map((r) => r.name),
    [],
  );
  assert.deepEqual(
    p.rulesFor(subject, new Set(['PHI'])).map((r) => r.name),
    ['phi-hipaa', 'eu'],
  );
});

function cont(r: PhaseResult): Extract<PhaseResult, { kind: 'continue' }> {
  if (r.kind !== 'continue') assert.fail(`expected continue, got ${r.status}: ${r.body.toString()}`);
  return r;
}

async function send(g: Rig, content: string, model = 'care') {
  const headers = new Map(
    Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }),
  );
  const head = await g.processor.requestHeaders(headers, false, NO_CONNECTION_INFO);
  for (const [k, v] of cont(head.result).headers?.set ?? []) headers.set(k, v);
  const result = await g.processor.requestBody(head.state, Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content }] })));
  if (result.kind === 'continue') for (const [k, v] of result.headers?.set ?? []) headers.set(k, v);
  return { state: head.state, headers, result };
}

const guard = (...rules: DestinationRule[]): DestinationPolicy => new DestinationPolicy({ destinations: rules as never });

test('processor: a PHI request goes to the authorized target whatever the split, and is audited with the authorized set', async () => {
  const g = rig({ snapshot: snapshot([route('care', ['chat'], [hosted, onPrem])]), destinations: guard(PHI_HIPAA) });
  const { result } = await send(g, 'about PHI-diagnosis');
  assert.equal(new Map(cont(result).headers?.set ?? []).get('x-gateway-target-cluster'), 'onprem');
  const plain = await send(g, 'nothing sensitive');
  assert.equal(new Map(cont(plain.result).headers?.set ?? []).get('x-gateway-target-cluster'), 'hosted');
  const metrics = await g.metrics.registry.getSingleMetricAsString('inference_gateway_destination_routings_total');
  assert.match(metrics, /rule="phi-hipaa",result="constrained"\} 1/);
});

test('processor: no authorized deployment is a 403 naming the rule, audited with an empty authorized set and no deployment', async () => {
  const g = rig({ snapshot: snapshot([route('care', ['chat'], [hosted])]), destinations: guard(PHI_HIPAA) });
  const { result } = await send(g, 'PHI-x');
  assert.equal(result.kind, 'respond');
  if (result.kind !== 'respond') return;
  assert.equal(result.status, 403);
  const body = JSON.parse(result.body.toString()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'no_authorized_deployment');
  assert.match(body.error.message, /phi-hipaa/);
  assert.doesNotMatch(body.error.message, /hosted/);
  const rec = g.audit.records.at(-1);
  assert.deepEqual(rec?.destinations, { rules: ['phi-hipaa'], constraining: ['phi-hipaa'], authorized: [] });
  assert.equal(rec?.deployment, null);
  assert.deepEqual(rec?.classification.classes, { found: ['PHI'], sent: ['PHI'] });
});

test('processor: authorized targets that are all drained (weight 0) are a 503 authorized_deployment_unavailable', async () => {
  const g = rig({ snapshot: snapshot([route('care', ['chat'], [hosted, { ...onPrem, weight: 0 }])]), destinations: guard(PHI_HIPAA) });
  const { result } = await send(g, 'PHI-x');
  assert.equal(result.kind === 'respond' ? result.status : 0, 503);
  assert.equal(g.audit.records.at(-1)?.decision.code, 'authorized_deployment_unavailable');
});

test('processor: a tenant override without an authorized target gives way to the model route; with one it is kept', async () => {
  const tenantOwn = deployment('tenant-own', 'own', { id: 'tenant-own', trust: trust({ hosting: 'hosted' }) });
  const overrides = new Map([['research', route('care', ['chat'], [tenantOwn])]]);
  const g = rig({ snapshot: snapshot([route('care', ['chat'], [hosted, onPrem], overrides)]), destinations: guard(PHI_HIPAA) });
  assert.equal(new Map(cont((await send(g, 'PHI-x')).result).headers?.set ?? []).get('x-gateway-target-cluster'), 'onprem');
  assert.equal(new Map(cont((await send(g, 'plain')).result).headers?.set ?? []).get('x-gateway-target-cluster'), 'tenant-own');
});

test('processor: soft degradation to a model without an authorized deployment keeps the original model', async () => {
  const small = deployment('small', 'small', { id: 'small', trust: trust({ hosting: 'hosted' }) });
  const g = rig({
    snapshot: snapshot([route('care', ['chat'], [onPrem]), route('care-small', ['chat'], [small])]),
    destinations: guard(PHI_HIPAA),
  });
  g.quota.ticket = { soft: { fallbackModel: 'care-small', maxTokens: null } };
  const phi = new Map(cont((await send(g, 'PHI-x')).result).headers?.set ?? []);
  assert.equal(phi.get('x-gateway-target-cluster'), 'onprem');
  assert.equal(phi.get('x-gateway-model'), 'care');
  assert.equal(phi.get('x-gateway-degraded'), 'max_tokens_capped');
  const plain = new Map(cont((await send(g, 'plain')).result).headers?.set ?? []);
  assert.equal(plain.get('x-gateway-target-cluster'), 'small');
  assert.equal(plain.get('x-gateway-degraded'), 'fallback');
});

test('fallback chain: the ticket carries the authorized members, Envoy is told to stop at the last one, and an attempt on another is vetoed', async () => {
  const t = (residency: string) => trust({ residency });
  const eu1 = deployment('eu-1', 'm1', { id: 'eu-1', trust: t('eu'), priorities: [t('eu')] });
  const us1 = deployment('us-1', 'm2', { id: 'us-1', trust: t('us'), priorities: [t('us')], weight: 0 });
  const eu2 = deployment('eu-2', 'm3', { id: 'eu-2', trust: t('eu'), priorities: [t('eu')], weight: 0 });
  const chained: Deployment = { ...eu1, fallback: { cluster: 'agg', chain: [eu1, us1, eu2] } };
  const g = rig({
    snapshot: snapshot([route('regional', ['chat'], [chained])]),
    ids: { [USER_KEY]: identity({ tenant: 'eu-berlin' }) },
    destinations: guard(EU),
  });
  const { state, headers, result } = await send(g, 'hi', 'regional');
  const set = new Map(cont(result).headers?.set ?? []);
  assert.equal(set.get('x-envoy-max-retries'), '2');
  const ticket = decodeTicket(set.get(FALLBACK_HEADER));
  assert.deepEqual([ticket?.allowed, ticket?.rules, ticket?.tenant], [['eu-1', 'eu-2'], ['eu-residency'], 'eu-berlin']);
  // Attempt 1 on eu-1 goes; attempt 2 on us-1 is answered by the sidecar itself.
  headers.set('x-envoy-attempt-count', '1');
  const first = g.attempts.begin(headers, 'eu-1');
  assert.ok(first.state !== null);
  headers.set('x-envoy-attempt-count', '2');
  const vetoed = g.attempts.begin(headers, 'us-1');
  assert.equal(vetoed.state, null);
  assert.equal(vetoed.result.kind, 'respond');
  if (vetoed.result.kind !== 'respond') return;
  assert.equal(vetoed.result.status, 503);
  const mark = decodeMark(new Map(vetoed.result.headers).get(ATTEMPT_HEADER));
  assert.deepEqual(mark, { n: 2, cluster: 'us-1', error: 'authorized_deployment_unavailable' });
  assert.match(vetoed.result.body.toString(), /eu-residency/);
  // The downstream phase gets the veto as the response, and records both attempts.
  const resp = new Map([
    [':status', '503'],
    [ATTEMPT_HEADER, vetoed.result.headers.find(([k]) => k === ATTEMPT_HEADER)?.[1] ?? ''],
  ]);
  await g.processor.responseHeaders(state, resp, false);
  await g.processor.responseBody(state, vetoed.result.body, true);
  const rec = g.audit.records.at(-1);
  assert.deepEqual(
    rec?.attempts?.map((a) => [a.n, a.id, a.refused]),
    [
      [1, 'eu-1', false],
      [2, 'us-1', true],
    ],
  );
  assert.equal(rec?.decision.code, 'authorized_deployment_unavailable');
  assert.deepEqual(rec?.destinations?.authorized, ['eu-1', 'eu-2']);
});

test('an Envoy "no healthy upstream" reply for a constrained request is our 503 naming the rule; unconstrained it stays upstream_unavailable', async () => {
  const g = rig({ snapshot: snapshot([route('care', ['chat'], [hosted, onPrem])]), destinations: guard(PHI_HIPAA) });
  const envoyReply = Buffer.from(
    JSON.stringify({ error: { message: 'The upstream service is unavailable.', type: 'server_error', code: 'upstream_unavailable', param: null } }),
  );
  for (const [content, code] of [
    ['PHI-x', 'authorized_deployment_unavailable'],
    ['plain', 'upstream_unavailable'],
  ] as const) {
    const { state } = await send(g, content);
    await g.processor.responseHeaders(state, new Map([[':status', '503']]), false);
    const out = await g.processor.responseBody(state, envoyReply, true);
    const body = out.kind === 'respond' ? out.body : envoyReply;
    assert.equal((JSON.parse(body.toString()) as { error: { code: string } }).error.code, code, content);
  }
});

test('with destination rules configured, a tenant with an override reserves spend for the model route too (it may be served there)', async () => {
  const price = (micros: bigint): Price => ({
    currency: 'USD',
    inputMicrosPerMillion: micros,
    cachedInputMicrosPerMillion: micros,
    outputMicrosPerMillion: micros,
    perRequestMicros: 0n,
  });
  const cheap = price(1n);
  const dear = price(1000n);
  const own = deployment('tenant-own', 'own', { price: cheap });
  const overrides = new Map([['research', route('care', ['chat'], [own])]]);
  const snap = snapshot([route('care', ['chat'], [{ ...onPrem, price: dear }], overrides)]);
  const withRules = rig({ snapshot: snap, destinations: guard(PHI_HIPAA) });
  await send(withRules, 'plain');
  assert.deepEqual(withRules.quota.admitted.at(-1)?.prices, [cheap, dear]);
  const withoutRules = rig({ snapshot: snap, destinations: guard() });
  await send(withoutRules, 'plain');
  assert.deepEqual(withoutRules.quota.admitted.at(-1)?.prices, [cheap]);
});
