/**
 * Data decides where a request may go (issue 18), through real Envoy with the
 * official openai client: the data policy's destination rules over the trust
 * attributes of the snapshot's deployments. Every deployment is its own demo
 * server (or a closed port), so each test can check what every upstream saw:
 * a request the rules keep from a deployment never reaches it, not even as a
 * failed-over attempt.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { unusedPort } from '../helpers/ports.ts';
import { scrapeMetrics, startTestStack, type TestStack } from '../helpers/stack.ts';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';

let stack: TestStack;
/** The hosted deployment is the stack's own demo server (cluster demo-upstream). */
let hipaa: DemoUpstream;
let eu: DemoUpstream;
let us: DemoUpstream;

const HOSTED = { hosting: 'hosted', residency: 'us', region: 'us-east-1', provider: 'bigcloud' };
const HIPAA = { hosting: 'on-prem', residency: 'us', attestations: ['hipaa'], retention: 'zero', provider: 'self' };
const EU = { hosting: 'private', residency: 'eu', region: 'eu-central-1' };
const US = { hosting: 'private', residency: 'us', region: 'us-east-1' };

const general = { id: 'general', cluster: 'demo-upstream', model: 'general-model', trust: HOSTED };
const onPrem = { id: 'hipaa-onprem', cluster: 'hipaa', model: 'hipaa-model', trust: HIPAA };
const euMember = { id: 'eu-1', cluster: 'eu', model: 'eu-model', trust: EU };
const usMember = { id: 'us-1', cluster: 'us', model: 'us-model', trust: US };

before(async () => {
  hipaa = await startDemoUpstream({ port: 0 });
  eu = await startDemoUpstream({ port: 0 });
  us = await startDemoUpstream({ port: 0 });
  const closed = await unusedPort();
  stack = await startTestStack({
    keys: [
      { principal: 'alice', tenant: 'research' },
      { principal: 'acme', tenant: 'acme' },
      { principal: 'berlin', tenant: 'eu-berlin' },
      { principal: 'partner', tenant: 'research', roles: ['partner'] },
    ],
    config: {
      policy: {
        version: 'dest-1',
        phiTerms: ['diabetes'],
        // PII is permitted as sent, except for partners, whose PII is redacted.
        rules: [{ name: 'partners-redact-pii', match: { roles: ['partner'] }, classes: ['PII'], action: 'redact' }],
        destinations: [
          { name: 'phi-hipaa', match: { classes: ['PHI'] }, require: { attestations: ['hipaa'], hosting: ['on-prem', 'private'] } },
          { name: 'eu-residency', match: { tenants: ['eu-*'] }, require: { residency: ['eu'] } },
          { name: 'pii-not-hosted', match: { classes: ['PII'] }, forbid: { hosting: ['hosted'] } },
        ],
      },
    },
    extraClusters: (hostedPort) => [
      { name: 'hipaa', host: '127.0.0.1', port: hipaa.port },
      { name: 'eu', host: '127.0.0.1', port: eu.port },
      { name: 'us', host: '127.0.0.1', port: us.port },
      { name: 'hipaa-down', host: '127.0.0.1', port: closed },
      { name: 'eu-down', host: '127.0.0.1', port: closed },
      { name: 'eu-down-2', host: '127.0.0.1', port: closed },
      // A HIPAA cluster whose priority 1 is the hosted server: Envoy may fail over to it without asking the sidecar.
      { name: 'hipaa-spill', host: '127.0.0.1', port: hipaa.port, fallbacks: [{ host: '127.0.0.1', port: hostedPort }] },
      { name: 'hipaa-down-then-general', aggregate: ['hipaa-down', 'demo-upstream'] },
      { name: 'eu-down-then-us', aggregate: ['eu-down', 'us', 'eu-down-2'] },
      { name: 'eu-then-us', aggregate: ['eu', 'us'] },
    ],
    models: [
      {
        // The split sends (almost) everything to the hosted deployment, and tenant acme's override only there.
        id: 'care',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: {
          targets: [
            { ...general, weight: 1_000_000 },
            { ...onPrem, weight: 1 },
          ],
          overrides: [{ tenants: ['acme'], target: general }],
        },
      },
      {
        id: 'care-down',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: {
          targets: [
            { ...general, weight: 1_000_000 },
            { ...onPrem, id: 'hipaa-down', cluster: 'hipaa-down', weight: 1 },
          ],
        },
      },
      {
        id: 'care-chain',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: { target: { ...onPrem, id: 'hipaa-down', cluster: 'hipaa-down', fallback: { cluster: 'hipaa-down-then-general', to: [general] } } },
      },
      {
        id: 'care-spill',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: { target: { ...onPrem, id: 'hipaa-spill', cluster: 'hipaa-spill', priorities: [HOSTED] } },
      },
      {
        id: 'regional',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: {
          target: {
            ...euMember,
            id: 'eu-down',
            cluster: 'eu-down',
            fallback: { cluster: 'eu-down-then-us', to: [usMember, { ...euMember, id: 'eu-down-2', cluster: 'eu-down-2' }] },
          },
        },
      },
      {
        id: 'regional-ok',
        endpoints: ['chat'],
        cluster: '',
        model: '',
        routing: { target: { ...euMember, fallback: { cluster: 'eu-then-us', to: [usMember] } } },
      },
      { id: 'us-only', endpoints: ['chat'], cluster: '', model: '', routing: { target: usMember } },
      { id: 'hosted-only', endpoints: ['chat'], cluster: '', model: '', routing: { target: general } },
    ],
  });
});

after(async () => {
  await stack?.stop();
  await Promise.all([hipaa?.close(), eu?.close(), us?.close()]);
});

interface RecordLine {
  requestId: string;
  status: number;
  outcome: string;
  classification: { classes: { found: string[]; sent: string[] } | null };
  decision: { action: string; code: string | null };
  deployment: { id: string; cluster: string } | null;
  destinations: { rules: string[]; constraining: string[]; authorized: string[] } | null;
  attempts: Array<{ n: number; id: string | null; cluster: string | null; status: number | null; refused: boolean }> | null;
}

function record(requestId: string | null): RecordLine {
  const rec = (readAudit(stack.files.auditFile) as unknown as RecordLine[]).find((r) => r.requestId === requestId);
  assert.ok(rec, `audit record of ${requestId}`);
  return rec;
}

/** Every upstream, by the deployment it is: the model name each saw in every request since the last clear. */
function seen(): Record<string, string[]> {
  const models = (u: DemoUpstream) => u.requests.map((r) => (r.body as { model: string }).model);
  return { hosted: models(stack.upstream), hipaa: models(hipaa), eu: models(eu), us: models(us) };
}

function clearAll(): void {
  for (const u of [stack.upstream, hipaa, eu, us]) u.clearRequests();
}

const PHI = 'My diabetes medication dose, please';

async function ask(principal: string, model: string, content: string) {
  return stack
    .client(principal)
    .chat.completions.create({ model, messages: [{ role: 'user', content }] })
    .withResponse();
}

async function refused(principal: string, model: string, content: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  let caught: unknown = null;
  try {
    await ask(principal, model, content);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof OpenAI.APIError, `expected an API error, got ${String(caught)}`);
  return caught;
}

test('a PHI prompt is served only by the hipaa deployment, though the split weighs 1,000,000:1 against it and a tenant override points elsewhere', async () => {
  clearAll();
  for (let i = 0; i < 4; i++) {
    const { data } = await ask('alice', 'care', `${PHI} (${i})`);
    assert.equal(data.model, 'care');
  }
  const { response } = await ask('acme', 'care', PHI);
  assert.deepEqual(seen(), { hosted: [], hipaa: Array(5).fill('hipaa-model'), eu: [], us: [] });
  const rec = record(response.headers.get('x-request-id'));
  assert.deepEqual(rec.classification.classes, { found: ['PHI'], sent: ['PHI'] });
  assert.deepEqual(rec.destinations, { rules: ['phi-hipaa'], constraining: ['phi-hipaa'], authorized: ['hipaa-onprem'] });
  assert.equal(rec.deployment?.id, 'hipaa-onprem');
  assert.equal(rec.outcome, 'completed');

  // Without PHI the split and the override apply as before.
  clearAll();
  await ask('alice', 'care', 'What is the capital of France?');
  const { response: plain } = await ask('acme', 'care', 'What is the capital of France?');
  assert.deepEqual(seen(), { hosted: ['general-model', 'general-model'], hipaa: [], eu: [], us: [] });
  assert.equal(record(plain.headers.get('x-request-id')).destinations, null, 'no rule applied');
});

test('the hipaa deployment down: the client gets our 503 naming the rule, and no other deployment saw the request', async () => {
  clearAll();
  const err = await refused('alice', 'care-down', PHI);
  assert.equal(err.status, 503);
  assert.equal(err.code, 'authorized_deployment_unavailable');
  assert.match(err.message, /phi-hipaa/);
  assert.doesNotMatch(err.message, /hipaa-down|general|demo-upstream/, 'names the rule, not deployments');
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: [] });
  const rec = record(err.headers?.get('x-request-id') ?? null);
  assert.equal(rec.outcome, 'failed');
  assert.equal(rec.decision.code, 'authorized_deployment_unavailable');
  assert.deepEqual(rec.destinations?.authorized, ['hipaa-down']);

  // The same through a fallback chain whose next member is the hosted deployment: Envoy is never sent there.
  clearAll();
  const chained = await refused('alice', 'care-chain', PHI);
  assert.equal(chained.status, 503);
  assert.equal(chained.code, 'authorized_deployment_unavailable');
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: [] });
  const chainRec = record(chained.headers?.get('x-request-id') ?? null);
  // Envoy tries the dead member first, or (its health already marked down by the request above) goes straight to the
  // hosted one: either way every attempt on the hosted deployment is vetoed by the sidecar and none got a status.
  const attempts = chainRec.attempts ?? [];
  assert.ok(attempts.length >= 1);
  for (const a of attempts) {
    assert.equal(a.status, null);
    assert.equal(a.refused, a.id !== 'hipaa-down', `attempt ${a.n} on ${a.id}`);
  }
  // Without PHI the chain fails over to the hosted deployment as configured (the chain itself works).
  clearAll();
  const { data } = await ask('alice', 'care-chain', 'hello');
  assert.equal(data.model, 'care-chain');
  assert.deepEqual(seen(), { hosted: ['general-model'], hipaa: [], eu: [], us: [] });
});

test('a cluster whose lower priority is a hosted server is not authorized for PHI: 403 naming the rule, nothing sent', async () => {
  clearAll();
  const err = await refused('alice', 'care-spill', PHI);
  assert.equal(err.status, 403);
  assert.equal(err.code, 'no_authorized_deployment');
  assert.match(err.message, /phi-hipaa/);
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: [] });
  const rec = record(err.headers?.get('x-request-id') ?? null);
  assert.deepEqual(rec.destinations, { rules: ['phi-hipaa'], constraining: ['phi-hipaa'], authorized: [] });
  assert.equal(rec.deployment, null);
});

test('an EU tenant never fails over to a non-EU deployment: the US member is vetoed, the audit shows every attempt', async () => {
  clearAll();
  const err = await refused('berlin', 'regional', 'hello from Berlin');
  assert.equal(err.status, 503);
  assert.equal(err.code, 'authorized_deployment_unavailable');
  assert.match(err.message, /eu-residency/);
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: [] });
  const rec = record(err.headers?.get('x-request-id') ?? null);
  assert.deepEqual(rec.destinations, { rules: ['eu-residency'], constraining: ['eu-residency'], authorized: ['eu-down', 'eu-down-2'] });
  // Envoy's attempt on the US member (if its outlier detection had not already skipped the dead EU one) is refused by the sidecar.
  const us1 = rec.attempts?.find((a) => a.id === 'us-1');
  assert.ok(us1 !== undefined, 'Envoy tried the US member');
  assert.equal(us1.refused, true);
  assert.equal(us1.status, null);
  assert.ok(rec.attempts?.every((a) => a.id !== 'us-1' || a.refused));

  // Another tenant's request fails over to the US member as configured.
  clearAll();
  const { data } = await ask('alice', 'regional', 'hello');
  assert.equal(data.model, 'regional');
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: ['us-model'] });

  // A healthy EU deployment serves the EU tenant; a model with only a US deployment refuses it.
  clearAll();
  await ask('berlin', 'regional-ok', 'hi');
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: ['eu-model'], us: [] });
  const none = await refused('berlin', 'us-only', 'hi');
  assert.equal(none.status, 403);
  assert.equal(none.code, 'no_authorized_deployment');
  assert.match(none.message, /eu-residency/);
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: ['eu-model'], us: [] });
});

test('a redacted request may use a deployment the unredacted one could not: rules decide on the classes still sent', async () => {
  clearAll();
  const content = 'Please email jane.doe@example.com about the invoice';
  const err = await refused('alice', 'hosted-only', content);
  assert.equal(err.status, 403);
  assert.equal(err.code, 'no_authorized_deployment');
  assert.match(err.message, /pii-not-hosted/);
  assert.deepEqual(seen(), { hosted: [], hipaa: [], eu: [], us: [] });
  assert.deepEqual(record(err.headers?.get('x-request-id') ?? null).classification.classes, { found: ['PII'], sent: ['PII'] });

  // The partner's PII is redacted: nothing of class PII is sent, so the hosted deployment may serve it.
  const { response } = await ask('partner', 'hosted-only', content);
  const sent = (stack.upstream.requests.at(-1)?.body as { messages: Array<{ content: string }> }).messages[0]?.content ?? '';
  assert.doesNotMatch(sent, /jane\.doe@example\.com/);
  assert.match(sent, /\[REDACTED:EMAIL\]/);
  const rec = record(response.headers.get('x-request-id'));
  assert.deepEqual(rec.classification.classes, { found: ['PII'], sent: [] });
  assert.equal(rec.destinations, null);
  assert.equal(rec.deployment?.id, 'general');
});

test('audit export --by destination --class PHI answers which PHI requests went where', () => {
  const r = spawnSync(
    process.execPath,
    [join(PROJECT_ROOT, 'src/cli/main.ts'), 'audit', 'export', '--by', 'destination', '--class', 'PHI', stack.files.auditFile],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    dataClass: string;
    rows: Array<{
      model: string;
      deployment: string | null;
      requests: number;
      sent: Record<string, number>;
      vetoed: Record<string, number>;
      codes: Record<string, number>;
    }>;
  };
  assert.equal(report.dataClass, 'PHI');
  const where = new Map(report.rows.map((row) => [`${row.model} → ${row.deployment}`, row]));
  assert.equal(where.get('care → hipaa-onprem')?.requests, 5);
  assert.equal(where.get('care → hipaa-onprem')?.sent['PHI'], 5);
  assert.ok(!where.has('care → general'), 'no PHI request was served by the hosted deployment');
  assert.equal(where.get('care-spill → null')?.codes['no_authorized_deployment'], 1);
  assert.equal(
    where.get('care-down → null')?.codes['authorized_deployment_unavailable'] ??
      where.get('care-down → hipaa-down')?.codes['authorized_deployment_unavailable'],
    1,
  );
  for (const row of report.rows) assert.notEqual(row.deployment, 'general', 'PHI never went to the hosted deployment');
});

test('metrics count constrained, refused and unavailable routings by rule', async () => {
  const m = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
  const count = (rule: string, result: string) => m.get(`inference_gateway_destination_routings_total{rule="${rule}",result="${result}"}`) ?? 0;
  assert.ok(count('phi-hipaa', 'constrained') >= 5);
  assert.ok(count('phi-hipaa', 'refused') >= 1);
  assert.ok(count('phi-hipaa', 'unavailable') >= 1);
  assert.ok(count('eu-residency', 'refused') >= 1);
  assert.ok(count('pii-not-hosted', 'refused') >= 1);
});
