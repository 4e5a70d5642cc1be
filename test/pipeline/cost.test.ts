import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { costUnits, formatUnits, maxCostUnits, parseMicros, parseUnits, unitsToMicrosCeil, type Price } from '../../src/pipeline/cost.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { deployment, drive, rig, route, snapshot, USER_KEY, type Step } from './fakes.ts';

const price = (over: Partial<Price> = {}): Price => ({
  currency: 'USD',
  inputMicrosPerMillion: 2_500_000n, // 2.5 per million
  cachedInputMicrosPerMillion: 1_250_000n,
  outputMicrosPerMillion: 10_000_000n,
  perRequestMicros: 0n,
  ...over,
});

test('amounts: parsed to micro units exactly, formatted without exponent or trailing zeros', () => {
  assert.equal(parseMicros('2.5'), 2_500_000n);
  assert.equal(parseMicros('0.000001'), 1n);
  assert.equal(parseMicros('15'), 15_000_000n);
  for (const bad of ['', '-1', '1e-7', '0.0000001', '1.', '.5', ' 1', 'NaN', '1,5']) assert.equal(parseMicros(bad), null, bad);
  assert.equal(formatUnits(0n), '0');
  assert.equal(formatUnits(1n), '0.000000000001');
  assert.equal(formatUnits(12_500_000_000_000n), '12.5');
  assert.equal(formatUnits(-1_500_000_000_000n), '-1.5');
  fc.assert(
    fc.property(fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }), (u) => {
      assert.equal(parseUnits(formatUnits(u)), u);
    }),
  );
});

test('cost: cached prompt tokens at the cached price, the rest of the prompt at input, completion at output, plus the flat fee', () => {
  // 1000 prompt tokens (400 cached) and 200 completion tokens at 2.5 / 1.25 / 10 per million, 0.01 per request:
  // 600 × 2.5e-6 + 400 × 1.25e-6 + 200 × 10e-6 + 0.01 = 0.0015 + 0.0005 + 0.002 + 0.01 = 0.014
  const units = costUnits(price({ perRequestMicros: 10_000n }), { promptTokens: 1000, cachedPromptTokens: 400, completionTokens: 200 });
  assert.equal(formatUnits(units), '0.014');
  // More cached tokens reported than prompt tokens (a confused server): never priced below zero input.
  assert.equal(costUnits(price(), { promptTokens: 10, cachedPromptTokens: 50, completionTokens: 0 }), 10n * 1_250_000n);
  // The most a request can cost bounds what it costs, whatever part of the allowance it uses.
  fc.assert(
    fc.property(fc.nat(100_000), fc.nat(100_000), fc.nat(100_000), (prompt, cachedRaw, allowance) => {
      const cached = Math.min(cachedRaw, prompt);
      const used = Math.min(allowance, cachedRaw);
      const p = price({ perRequestMicros: 7n });
      assert.ok(costUnits(p, { promptTokens: prompt, cachedPromptTokens: cached, completionTokens: used }) <= maxCostUnits(p, prompt, allowance));
    }),
  );
  assert.equal(unitsToMicrosCeil(1n), 1n);
  assert.equal(unitsToMicrosCeil(1_000_000n), 1n);
  assert.equal(unitsToMicrosCeil(1_000_001n), 2n);
  assert.equal(unitsToMicrosCeil(0n), 0n);
});

test('a million requests sum exactly (floats drift)', () => {
  // 0.1 per request: one million requests cost exactly 100000; the float sum does not.
  const p = price({ inputMicrosPerMillion: 0n, outputMicrosPerMillion: 0n, perRequestMicros: 100_000n });
  let exact = 0n;
  let float = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const u = costUnits(p, { promptTokens: 3, cachedPromptTokens: 0, completionTokens: 5 });
    exact += u;
    float += Number(u) / 1e12;
  }
  assert.equal(formatUnits(exact), '100000');
  assert.notEqual(float, 100000, 'the float sum drifts, which is why amounts are integers');
});

const doc = (target: object): string =>
  JSON.stringify({ version: 'v1', models: [{ id: 'm', endpoints: ['chat'], target: { cluster: 'c', model: 'x', ...target } }] });

test('snapshot: a price is decimal strings or YAML numbers, USD by default, cached input at the input price unless set', () => {
  const s = parseSnapshot(doc({ price: { inputPerMillion: '0.15', outputPerMillion: 0.6 } }), 'test');
  assert.deepEqual(s.models.get('m')?.targets[0]?.price, {
    currency: 'USD',
    inputMicrosPerMillion: 150_000n,
    cachedInputMicrosPerMillion: 150_000n,
    outputMicrosPerMillion: 600_000n,
    perRequestMicros: 0n,
  });
  const e = parseSnapshot(
    doc({ price: { currency: 'EUR', inputPerMillion: '3', cachedInputPerMillion: '0.3', outputPerMillion: '15', perRequest: '0.001' } }),
    'test',
  );
  assert.deepEqual(e.models.get('m')?.targets[0]?.price, {
    currency: 'EUR',
    inputMicrosPerMillion: 3_000_000n,
    cachedInputMicrosPerMillion: 300_000n,
    outputMicrosPerMillion: 15_000_000n,
    perRequestMicros: 1000n,
  });
  assert.equal(parseSnapshot(doc({}), 'test').models.get('m')?.targets[0]?.price, null);
});

test('snapshot: prices that cannot be exact are refused, naming the field', () => {
  const refused: Array<[object, RegExp]> = [
    [{ inputPerMillion: '0.0000001', outputPerMillion: '1' }, /target\.price\.inputPerMillion: must be a non-negative decimal with at most 6 decimals/],
    [{ inputPerMillion: 1e-7, outputPerMillion: '1' }, /target\.price\.inputPerMillion/],
    [{ inputPerMillion: '-1', outputPerMillion: '1' }, /target\.price\.inputPerMillion/],
    [{ inputPerMillion: '1' }, /target\.price\.outputPerMillion/],
    [{ currency: 'usd', inputPerMillion: '1', outputPerMillion: '1' }, /target\.price\.currency: must be an ISO 4217 currency code/],
    [{ inputPerMillion: '1', outputPerMillion: '1', perToken: '1' }, /target\.price/],
  ];
  for (const [p, re] of refused) {
    assert.throws(
      () => parseSnapshot(doc({ price: p }), 'test'),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      JSON.stringify(p),
    );
  }
});

const AUTH = { authorization: `Bearer ${USER_KEY}` };
const steps = (usage: object | null): Step[] => [
  { phase: 'request_headers', headers: { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', ...AUTH } },
  { phase: 'request_body', body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hello there, how are you' }] }) },
  { phase: 'response_headers', headers: { ':status': '200', 'content-type': 'application/json' } },
  {
    phase: 'response_body',
    chunk: JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }],
      ...(usage === null ? {} : { usage }),
    }),
    endOfStream: true,
  },
];

function pricedRig(p: Price | null): ReturnType<typeof rig> {
  return rig({ snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up-gpt', { price: p })])]) });
}

async function costMetric(g: ReturnType<typeof rig>): Promise<Array<{ labels: object; value: number }>> {
  const m = await g.metrics.registry.getSingleMetric('inference_gateway_cost_total')?.get();
  return (m?.values ?? []).map((v) => ({ labels: v.labels, value: v.value }));
}

test('pipeline: the audit record carries the exact cost at the answering deployment price; the metric counts it', async () => {
  const g = pricedRig(price());
  await drive(g.processor, steps({ prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200, prompt_tokens_details: { cached_tokens: 400 } }));
  const rec = g.audit.records[0];
  assert.deepEqual(rec?.usage, { promptTokens: 1000, completionTokens: 200, cachedPromptTokens: 400, source: 'counted' });
  // 600 × 2.5e-6 + 400 × 1.25e-6 + 200 × 10e-6 = 0.004
  assert.deepEqual(rec?.cost, { amount: '0.004', currency: 'USD', estimated: false });
  const metric = await costMetric(g);
  assert.equal(metric.length, 1);
  assert.deepEqual(metric[0]?.labels, { org: 'acme', tenant: 'research', model: 'gpt', currency: 'USD' });
  assert.ok(Math.abs((metric[0]?.value ?? 0) - 0.004) < 1e-12);
});

test('pipeline: usage the server did not report is estimated, and so is its cost; no price, no cost', async () => {
  const g = pricedRig(price());
  await drive(g.processor, steps(null));
  const rec = g.audit.records[0];
  assert.equal(rec?.usage?.source, 'estimated');
  assert.equal(rec?.cost?.estimated, true);
  assert.equal(
    rec?.cost?.amount,
    formatUnits(costUnits(price(), { promptTokens: rec?.usage?.promptTokens ?? -1, cachedPromptTokens: 0, completionTokens: 0 })),
  );

  const free = pricedRig(null);
  await drive(free.processor, steps({ prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 }));
  assert.equal(free.audit.records[0]?.cost, null);
  assert.deepEqual(await costMetric(free), []);
});

test('pipeline: a refused request costs nothing', async () => {
  const g = pricedRig(price({ perRequestMicros: 1_000_000n }));
  await drive(g.processor, [{ phase: 'request_headers', headers: { ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json' } }]);
  assert.equal(g.audit.records[0]?.outcome, 'denied');
  assert.equal(g.audit.records[0]?.cost, null);
});
