/**
 * Spend budgets through real Envoy and a real Redis quota store: a tenant's
 * daily budget admits requests while the most each can cost still fits,
 * settles each with its real cost (so far more requests fit than their
 * reservations alone would allow), then refuses with 429 budget_exceeded in
 * OpenAI's error shape, with retry-after and budget headers; another tenant
 * is unaffected; a soft threshold sends requests to a cheaper model first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { parseUnits } from '../../src/pipeline/cost.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

let redis: TestRedis;
let stack: TestStack;
const BUDGET = parseUnits('0.5') ?? 0n;

before(async () => {
  redis = await startRedis();
  stack = await startTestStack({
    keys: [
      { principal: 'alice', tenant: 'team-a', tier: 'budgeted' },
      { principal: 'bob', tenant: 'team-b', tier: 'budgeted' },
      { principal: 'sam', tenant: 'team-s', tier: 'soft' },
    ],
    models: [
      // 0.001 per token either way: a request of ~10 prompt and 12 completion tokens costs ~0.022.
      {
        id: 'gpt-demo',
        endpoints: ['chat'],
        cluster: 'demo-upstream',
        model: 'demo-model',
        price: { inputPerMillion: '1000', outputPerMillion: '1000' },
      },
      { id: 'cheap-demo', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model', price: { inputPerMillion: '0', outputPerMillion: '0' } },
    ],
    config: {
      redis: { url: redis.url },
      quotas: {
        plans: [
          { name: 'budgeted', limits: [{ scope: 'tenant', budgetDaily: '0.5', budgetMonthly: '100' }] },
          { name: 'soft', limits: [{ scope: 'tenant', budgetDaily: '0.5' }], soft: { threshold: 0.5, fallbackModel: 'cheap-demo' } },
        ],
      },
    },
  });
});

after(async () => {
  await stack?.stop();
  await redis?.stop();
});

interface CostRecord {
  requestId: string;
  outcome: string;
  model: string | null;
  authorization: { tenant: string } | null;
  cost: { amount: string; currency: string } | null;
}

const records = (): CostRecord[] => readAudit(stack.files.auditFile) as unknown as CostRecord[];

function spentBy(tenant: string): bigint {
  return records()
    .filter((r) => r.authorization?.tenant === tenant && r.cost !== null)
    .reduce((sum, r) => sum + (parseUnits(r.cost?.amount ?? '0') ?? 0n), 0n);
}

const ask = (principal: string) =>
  stack
    .client(principal)
    .chat.completions.create({ model: 'gpt-demo', max_tokens: 50, messages: [{ role: 'user', content: 'what does this cost' }] })
    .withResponse();

test('a daily budget admits while the dearest possible cost fits, settles real costs, then refuses with budget_exceeded', async () => {
  let admitted = 0;
  let refusal: InstanceType<typeof OpenAI.APIError> | null = null;
  let lastHeaders: Headers | null = null;
  for (let i = 0; i < 200 && refusal === null; i++) {
    try {
      const r = await ask('alice');
      lastHeaders = r.response.headers;
      admitted++;
    } catch (err) {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      refusal = err;
    }
  }
  assert.ok(refusal, 'the budget refused at some point');
  assert.equal(refusal.status, 429);
  assert.equal(refusal.code, 'budget_exceeded');
  assert.equal((refusal.error as { type?: string }).type, 'insufficient_quota');
  assert.match(refusal.message, /daily spend budget per tenant, USD/);
  assert.ok(Number(refusal.headers?.get('retry-after')) > 0);
  assert.equal(refusal.headers?.get('x-ratelimit-limit-budget'), '0.5');
  assert.equal(refusal.headers?.get('x-ratelimit-remaining-budget'), '0');
  assert.equal(lastHeaders?.get('x-ratelimit-budget-currency'), 'USD');

  const spent = spentBy('team-a');
  // Never over the budget; a reservation of ~0.07 (prompt estimate + max_tokens 50) no longer fit when refused.
  assert.ok(spent <= BUDGET, `spent ${spent} of ${BUDGET}`);
  assert.ok(spent > BUDGET - (parseUnits('0.07') ?? 0n), `spent ${spent}: the budget was used, not just reserved`);
  // Each admission reserved ~0.07 but was settled at ~0.022: many more fit than 0.5 / 0.07 ≈ 7.
  assert.ok(admitted >= 12, `${admitted} admitted`);
  assert.equal(records().filter((r) => r.authorization?.tenant === 'team-a' && r.outcome === 'completed').length, admitted);

  // Another tenant's budget is its own.
  const other = await ask('bob');
  assert.equal(other.response.status, 200);
});

test('a soft threshold on a budget degrades to the cheaper model before the budget is exhausted', async () => {
  let degradedAt = -1;
  for (let i = 0; i < 60 && degradedAt < 0; i++) {
    const r = await ask('sam');
    const id = r.response.headers.get('x-request-id');
    if (records().find((x) => x.requestId === id)?.model === 'cheap-demo') degradedAt = i;
  }
  assert.ok(degradedAt > 0, 'requests went to the cheaper model once half the budget was used');
  const spent = spentBy('team-s');
  // The threshold counts what is reserved too: the request that crossed it had ~0.07 reserved on top of what was spent.
  assert.ok(spent + (parseUnits('0.07') ?? 0n) >= BUDGET / 2n && spent < BUDGET / 2n + (parseUnits('0.07') ?? 0n), `spent ${spent} when degraded`);
  // From then on the requests cost nothing and keep being served.
  for (let i = 0; i < 5; i++) assert.equal((await ask('sam')).response.status, 200);
  assert.equal(spentBy('team-s'), spent);
});
