import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ConfigSchema } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { ZoneOffset } from '../../src/stages/quota/clock.ts';
import { formatReset, rateLimitHeaders } from '../../src/stages/quota/headers.ts';
import { buildLimits } from '../../src/stages/quota/limits.ts';
import { QuotaStage, type QuotaRequest } from '../../src/stages/quota/stage.ts';
import type { Decision, LimitSpec, QuotaStore, Settlement } from '../../src/stores/quota/port.ts';
import { MemoryQuotaStore } from '../../src/stores/quota/memory.ts';
import { CircuitBreaker, CircuitOpenError } from '../../src/stores/quota/breaker.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { manualPoll, testClock } from '../helpers/clock.ts';

const subject = { principal: 'alice', keyId: 'AbCdEfGh', org: 'acme', tenant: 'research', model: 'gpt-demo' };

function quotas(raw: unknown) {
  return ConfigSchema.parse({ quotas: raw }).quotas;
}

test('limits: one spec per counter, keyed by scope, named by family', () => {
  const cfg = quotas({
    plans: [
      {
        name: 'std',
        limits: [
          { scope: 'key', rps: 5, burst: 10, rpm: 100, tpm: 1000, tpd: 5000, concurrency: 2 },
          { scope: 'tenant_endpoint', rpm: 50 },
        ],
      },
    ],
  });
  const plan = cfg.plans[0];
  assert.ok(plan);
  const specs = buildLimits(plan, subject, { reservedTokens: 300, reservedCostMicros: 0, utcOffsetMs: 0, leaseMs: 1000, kinds: 'all', share: 1 });
  assert.deepEqual(
    specs.map((s) => [s.kind, s.name, s.key]),
    [
      ['rate', 'requests:rps:key', 'key:AbCdEfGh:rps'],
      ['window', 'requests:rpm:key', 'key:AbCdEfGh:rpm'],
      ['window', 'tokens:tpm:key', 'key:AbCdEfGh:tpm'],
      ['day', 'tokens:tpd:key', 'key:AbCdEfGh:tpd'],
      ['concurrency', 'concurrency:key', 'key:AbCdEfGh:conc'],
      ['window', 'requests:rpm:tenant_endpoint', 'tenant:research:model:gpt-demo:rpm'],
    ],
  );
  const tpm = specs.find((s) => s.name === 'tokens:tpm:key');
  assert.equal(tpm?.kind === 'window' ? tpm.cost : -1, 300);
  const onlyRequests = buildLimits(plan, subject, {
    reservedTokens: 300,
    reservedCostMicros: 0,
    utcOffsetMs: 0,
    leaseMs: 1000,
    kinds: 'requests_only',
    share: 1,
  });
  assert.deepEqual(
    onlyRequests.map((s) => s.name),
    ['requests:rps:key', 'requests:rpm:key', 'requests:rpm:tenant_endpoint'],
  );
  const half = buildLimits(plan, subject, { reservedTokens: 300, reservedCostMicros: 0, utcOffsetMs: 0, leaseMs: 1000, kinds: 'all', share: 0.5 });
  assert.equal(
    half.find((s) => s.name === 'requests:rpm:key')?.kind === 'window' ? (half.find((s) => s.name === 'requests:rpm:key') as { limit: number }).limit : 0,
    50,
  );
});

test('reset durations are written like OpenAI writes them', () => {
  assert.equal(formatReset(20), '20ms');
  assert.equal(formatReset(1000), '1s');
  assert.equal(formatReset(360_000), '6m0s');
  assert.equal(formatReset(3_723_000), '1h2m3s');
});

test('rate-limit headers report the tightest request and token limits', () => {
  const h = new Map(
    rateLimitHeaders([
      { name: 'requests:rpm:key', limit: 100, remaining: 40, resetMs: 30_000 },
      { name: 'requests:rps:key', limit: 10, remaining: 3, resetMs: 100 },
      { name: 'tokens:tpm:tenant', limit: 5000, remaining: 4000, resetMs: 10_000 },
      { name: 'concurrency:key', limit: 2, remaining: 1, resetMs: 0 },
    ]),
  );
  assert.equal(h.get('x-ratelimit-limit-requests'), '10');
  assert.equal(h.get('x-ratelimit-remaining-requests'), '3');
  assert.equal(h.get('x-ratelimit-reset-requests'), '100ms');
  assert.equal(h.get('x-ratelimit-limit-tokens'), '5000');
  assert.equal(h.get('x-ratelimit-remaining-tokens'), '4000');
});

test('time-zone offsets follow DST', () => {
  const berlin = new ZoneOffset('Europe/Berlin');
  assert.equal(berlin.at(Date.parse('2026-01-15T12:00:00Z')), 3_600_000);
  assert.equal(berlin.at(Date.parse('2026-07-15T12:00:00Z')), 7_200_000);
  assert.equal(new ZoneOffset('Asia/Kolkata').at(Date.parse('2026-11-22T18:29:59Z')), 19_800_000);
  assert.equal(new ZoneOffset('America/Los_Angeles').at(Date.parse('2026-11-22T08:00:00Z')), -28_800_000);
});

test('ZoneOffset: UTC (answered without a formatter) agrees with the formatter at instants across years, leap days and sub-second times', () => {
  const utc = new ZoneOffset('UTC');
  // Etc/UTC is the same zone under another name, so it goes through the formatter.
  const viaFormatter = new ZoneOffset('Etc/UTC');
  const instants = ['1970-01-01T00:00:00Z', '2024-02-29T23:59:59.999Z', '2026-03-29T01:30:00.250Z', '2026-12-31T23:59:59.5Z', '2099-06-15T12:00:00Z'];
  for (const iso of instants) {
    const t = Date.parse(iso);
    assert.equal(utc.at(t), 0, iso);
    assert.equal(utc.at(t), viaFormatter.at(t), iso);
  }
});

/** A scripted store: answers from a function, records settlements, can be made to fail. */
class FakeStore implements QuotaStore {
  failing = false;
  readonly settled: Array<[string, Settlement]> = [];
  admitted: LimitSpec[][] = [];
  decide: (limits: readonly LimitSpec[]) => Decision = (limits) => ({
    admitted: true,
    now: 0,
    states: limits.map((l) => ({ name: l.name, limit: 10, remaining: 9, resetMs: 1000 })),
  });
  async admit(_id: string, _tag: string, limits: readonly LimitSpec[]): Promise<Decision> {
    if (this.failing) throw new Error('store down');
    this.admitted.push([...limits]);
    return this.decide(limits);
  }
  async settle(id: string, _tag: string, s: Settlement): Promise<void> {
    this.settled.push([id, s]);
  }
  async renew(_tag: string, ids: readonly string[]): Promise<boolean[]> {
    return ids.map(() => true);
  }
  async close(): Promise<void> {}
}

function stage(raw: unknown, primary: FakeStore, local: FakeStore = new FakeStore()) {
  return new QuotaStage(quotas(raw), { primary, local, breaker: null, metrics: new Metrics({ processMetrics: false }), log: pino({ level: 'silent' }) });
}

const request = (tier: string, extra: Partial<QuotaRequest> = {}): QuotaRequest => ({
  requestId: 'r1',
  subject,
  tier,
  endpoint: 'chat',
  generates: true,
  promptTokens: 20,
  maxTokens: 100,
  kinds: 'all',
  prices: [],
  ...extra,
});

async function refusal(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err;
  }
  assert.fail('admitted');
}

test('plans by tier, then the default plan; no plan means no quota', async () => {
  const store = new FakeStore();
  const s = stage(
    {
      plans: [
        { name: 'gold', limits: [{ scope: 'key', rpm: 1000 }] },
        { name: 'basic', limits: [{ scope: 'key', rpm: 10 }] },
      ],
      defaultPlan: 'basic',
    },
    store,
  );
  assert.equal((await s.admit(request('gold')))?.plan, 'gold');
  assert.equal((await s.admit(request('unknown-tier')))?.plan, 'basic');
  const none = stage({ plans: [{ name: 'gold', limits: [{ scope: 'key', rpm: 1 }] }] }, new FakeStore());
  assert.equal(await none.admit(request('silver')), null);
});

test('reservation = prompt estimate + max_tokens (or the plan default; embeddings reserve no completion); settlement sends the delta', async () => {
  const store = new FakeStore();
  const s = stage({ plans: [{ name: 'std', defaultMaxTokens: 700, limits: [{ scope: 'tenant', tpm: 100000 }] }] }, store);
  assert.equal((await s.admit(request('std')))?.reservedTokens, 120);
  assert.equal((await s.admit(request('std', { maxTokens: null })))?.reservedTokens, 720);
  const t = await s.admit(request('std', { endpoint: 'embeddings', generates: false, maxTokens: null }));
  assert.equal(t?.reservedTokens, 20);
  assert.ok(t);
  await s.settle(t, 5, null);
  assert.deepEqual(store.settled.at(-1), ['r1', { tokenDelta: -15, costDelta: 0 }]);
});

test('denials: 429 rate_limit_exceeded with retry-after and headers; daily cap → insufficient_quota', async () => {
  const store = new FakeStore();
  const s = stage({ plans: [{ name: 'std', limits: [{ scope: 'key', rpm: 10, tpd: 1000 }] }] }, store);
  store.decide = (limits) => ({
    admitted: false,
    now: 0,
    deniedBy: 'requests:rpm:key',
    retryAfterMs: 2500,
    states: limits.map((l) => ({ name: l.name, limit: 10, remaining: 0, resetMs: 2500 })),
  });
  const e = await refusal(s.admit(request('std')));
  assert.equal(e.code, 'rate_limit_exceeded');
  assert.equal(e.status, 429);
  assert.equal(e.headers['retry-after'], '3');
  assert.equal(e.headers['x-ratelimit-remaining-requests'], '0');
  store.decide = (limits) => ({
    admitted: false,
    now: 0,
    deniedBy: 'tokens:tpd:key',
    retryAfterMs: 3_600_000,
    states: limits.map((l) => ({ name: l.name, limit: 1000, remaining: 0, resetMs: 3_600_000 })),
  });
  const d = await refusal(s.admit(request('std')));
  assert.equal(d.code, 'insufficient_quota');
  assert.equal(d.headers['retry-after'], '3600');
});

test('store down: each plan applies its own policy', async () => {
  const primary = new FakeStore();
  const local = new FakeStore();
  primary.failing = true;
  const s = stage(
    {
      plans: [
        { name: 'closed', whenStoreDown: 'fail_closed', limits: [{ scope: 'key', rpm: 10 }] },
        { name: 'open', whenStoreDown: 'fail_open', limits: [{ scope: 'key', rpm: 10 }] },
        { name: 'local', whenStoreDown: 'local', localShare: 0.5, limits: [{ scope: 'key', rpm: 10 }] },
      ],
    },
    primary,
    local,
  );
  assert.equal((await refusal(s.admit(request('closed')))).code, 'quota_unavailable');
  const open = await s.admit(request('open'));
  assert.equal(open?.mode, 'fail_open');
  assert.equal(open?.store, null);
  const loc = await s.admit(request('local'));
  assert.equal(loc?.mode, 'local');
  const spec = local.admitted.at(-1)?.[0];
  assert.equal(spec?.kind === 'window' ? spec.limit : -1, 5, 'the local limiter enforces the configured share');
});

test('a caller the store refused stays refused (429, not 503) while the store cannot decide, until the retry time it gave', async () => {
  const clock = testClock(1_000_000);
  const primary = new FakeStore();
  const s = new QuotaStage(
    quotas({
      plans: [
        { name: 'closed', whenStoreDown: 'fail_closed', limits: [{ scope: 'key', rpm: 10 }] },
        { name: 'open', whenStoreDown: 'fail_open', limits: [{ scope: 'key', rpm: 10 }] },
      ],
    }),
    { primary, local: new FakeStore(), breaker: null, metrics: new Metrics({ processMetrics: false }), log: pino({ level: 'silent' }), now: clock.now },
  );
  primary.decide = (limits) => ({
    admitted: false,
    now: 0,
    deniedBy: 'requests:rpm:key',
    retryAfterMs: 2500,
    states: limits.map((l) => ({ name: l.name, limit: 10, remaining: 0, resetMs: 2500 })),
  });
  assert.equal((await refusal(s.admit(request('closed')))).status, 429);
  primary.failing = true;
  clock.advance(1000);
  const during = await refusal(s.admit(request('closed')));
  assert.equal(during.code, 'rate_limit_exceeded', 'the store failed, but this caller was over its limit');
  assert.equal(during.headers['retry-after'], '2');
  // Another caller (another key) has no recorded refusal: the plan's policy.
  assert.equal((await refusal(s.admit(request('closed', { subject: { ...subject, keyId: 'other' } })))).code, 'quota_unavailable');
  // fail_open does not admit a caller known to be over its limit either.
  assert.equal((await refusal(s.admit(request('open')))).code, 'rate_limit_exceeded');
  clock.advance(1500); // the retry time has come: the policy applies again
  assert.equal((await refusal(s.admit(request('closed')))).code, 'quota_unavailable');
  assert.equal((await s.admit(request('open')))?.mode, 'fail_open');
});

test('a call the breaker skipped is not "undone" on the store (it never reached it); a failed one is', async () => {
  const primary = new FakeStore();
  let now = 0;
  const breaker = new CircuitBreaker({ failureRate: 0.5, minimumCalls: 1, windowMs: 2000, openMs: 1000, halfOpenProbes: 1, now: () => now });
  const s = new QuotaStage(quotas({ plans: [{ name: 'open', whenStoreDown: 'fail_open', limits: [{ scope: 'key', rpm: 10 }] }] }), {
    primary,
    local: new FakeStore(),
    breaker,
    metrics: new Metrics({ processMetrics: false }),
    log: pino({ level: 'silent' }),
  });
  primary.failing = true;
  assert.equal((await s.admit(request('open', { requestId: 'failed' })))?.mode, 'fail_open');
  assert.equal(breaker.state, 'open');
  assert.equal((await s.admit(request('open', { requestId: 'skipped' })))?.mode, 'fail_open');
  await assert.rejects(
    breaker.run(async () => 1),
    CircuitOpenError,
  );
  assert.deepEqual(
    primary.settled.map(([id]) => id),
    ['failed'],
  );
  now = 1000; // half-open: the probe reaches the store again
  primary.failing = false;
  assert.equal((await s.admit(request('open', { requestId: 'probe' })))?.mode, 'store');
});

test('lease heartbeat: leases of requests in flight are renewed while the sidecar lives; a dead one frees its slot within the TTL; never past leaseSeconds', async () => {
  const clock = testClock(Date.parse('2026-03-01T10:00:00.000Z'));
  const store = new MemoryQuotaStore({ now: clock.now });
  const poll = manualPoll();
  const cfg = quotas({ leaseSeconds: 60, leaseTtlSeconds: 15, leaseRenewSeconds: 5, plans: [{ name: 'c', limits: [{ scope: 'key', concurrency: 1 }] }] });
  const sidecar = (): QuotaStage =>
    new QuotaStage(cfg, {
      primary: store,
      local: new MemoryQuotaStore(),
      breaker: null,
      metrics: new Metrics({ processMetrics: false }),
      log: pino({ level: 'silent' }),
      now: clock.now,
      schedule: poll.schedule,
    });
  const a = sidecar();
  const b = sidecar();
  const beat = async (): Promise<void> => {
    poll.tick();
    await Promise.all([a.renewLeases(), b.renewLeases()]);
  };
  const code = async (st: QuotaStage, id: string): Promise<string> =>
    st.admit(request('c', { requestId: id })).then(
      () => 'ok',
      (err: unknown) => (err instanceof GatewayError ? err.code : String(err)),
    );

  // A long stream on sidecar a: 40 s, well past the 15 s TTL, its slot held throughout.
  const ticket = await a.admit(request('c', { requestId: 'long' }));
  assert.ok(ticket);
  assert.equal(poll.running, 1);
  assert.deepEqual(poll.intervals, [5000]);
  for (let t = 5; t <= 40; t += 5) {
    clock.advance(5000);
    await beat();
    assert.equal(await code(b, `probe-${t}`), 'rate_limit_exceeded', `slot held at ${t} s`);
  }
  await a.settle(ticket, 0, null);
  assert.equal(poll.running, 0, 'nothing held: the heartbeat stops');
  assert.equal(await code(b, 'after-end'), 'ok', 'released at the end');

  // Sidecar b holds a slot, then dies (its beats stop): free within 15 s of its last beat.
  clock.advance(5000);
  await beat(); // b's last beat
  const lastBeat = clock.now();
  b.close();
  clock.advance(14_999);
  assert.equal(await code(a, 'while-dead'), 'rate_limit_exceeded');
  clock.advance(1);
  const reclaimed = await a.admit(request('c', { requestId: 'reclaimed' }));
  assert.ok(reclaimed, "the dead sidecar's slot is free again");
  assert.equal(clock.now() - lastBeat, 15_000);
  await a.settle(reclaimed, 0, null);

  // A request that never ends (its ticket is never settled) is renewed up to leaseSeconds, then left to expire.
  const c = sidecar();
  assert.equal(await code(c, 'forever'), 'ok');
  let heldFor = 0;
  for (;;) {
    clock.advance(5000);
    heldFor += 5000;
    await c.renewLeases();
    if (c.leasesHeld === 0) break;
  }
  assert.equal(heldFor, 60_000, 'dropped from the heartbeat at leaseSeconds');
  // Last renewed at 55 s: expires at 70 s.
  clock.advance(9999);
  assert.equal(await code(a, 'before-expiry'), 'rate_limit_exceeded');
  clock.advance(1);
  assert.equal(await code(a, 'after-forever'), 'ok', 'its lease expired a TTL after the last renewal');
  a.close();
  c.close();
});

// ── Spend budgets ─────────────────────────────────────────────────────────

const usd = (input: bigint, output: bigint, currency = 'USD') => ({
  currency,
  inputMicrosPerMillion: input,
  cachedInputMicrosPerMillion: input,
  outputMicrosPerMillion: output,
  perRequestMicros: 0n,
});
const budgetPlan = (limit: Record<string, unknown> = { scope: 'tenant', budgetDaily: '1.5', budgetMonthly: 20 }) => ({
  plans: [{ name: 'b', limits: [limit] }],
  timeZone: 'Europe/Berlin',
});

test('budgets: limits in micro units of the plan currency, charged the most the request can cost at the dearest deployment', async () => {
  const store = new FakeStore();
  const s = stage(budgetPlan(), store);
  // 20 prompt + 100 completion tokens: at 2 / 8 per million the cheap one costs 0.00084, the dear one (5 / 30) 0.0031.
  const ticket = await s.admit(request('b', { prices: [usd(2_000_000n, 8_000_000n), usd(5_000_000n, 30_000_000n)] }));
  const limits = store.admitted.at(-1) ?? [];
  assert.deepEqual(
    limits.map((l) => [l.kind, l.name, l.key, 'limit' in l ? l.limit : null, 'cost' in l ? l.cost : null]),
    [
      ['day', 'budget:daily:tenant', 'tenant:research:bpd', 1_500_000, 3100],
      ['month', 'budget:monthly:tenant', 'tenant:research:bpm', 20_000_000, 3100],
    ],
  );
  assert.equal(ticket?.reservedCostMicros, 3100);
  assert.equal(ticket?.completionCap, null, 'max_tokens was set');
  // Settled with the real cost, rounded up to a micro unit: 0.0012345 → 1235 micros.
  assert.ok(ticket);
  await s.settle(ticket, 50, { units: 1_234_500_000n, currency: 'USD' });
  assert.deepEqual(store.settled.at(-1), ['r1', { tokenDelta: 50 - 120, costDelta: 1235 - 3100 }]);
  // No price among the deployments: nothing reserved, the budget is still checked (an exhausted one refuses).
  const free = await s.admit(request('b', { requestId: 'r2', prices: [] }));
  assert.equal(free?.reservedCostMicros, 0);
  assert.ok(free);
  await s.settle(free, 10, null);
  assert.deepEqual(store.settled.at(-1), ['r2', { tokenDelta: 10 - 120, costDelta: 0 }]);
  // An unset max_tokens is capped (the reservation must bound the cost), as with token limits.
  assert.equal((await s.admit(request('b', { requestId: 'r3', maxTokens: null, prices: [usd(1n, 1n)] })))?.completionCap, 1024);
  // ext_authz never sees the cost: no budget limits there.
  const before = store.admitted.length;
  assert.equal(await s.admit(request('b', { requestId: 'r4', kinds: 'requests_only', prices: [usd(1n, 1n)] })), null);
  assert.equal(store.admitted.length, before);
});

test('budgets: a deployment priced in another currency is refused, never let through unmetered', async () => {
  const s = stage(budgetPlan(), new FakeStore());
  await assert.rejects(
    s.admit(request('b', { prices: [usd(1n, 1n), usd(1n, 1n, 'EUR')] })),
    (err: unknown) => err instanceof GatewayError && err.code === 'budget_currency_mismatch' && err.status === 403 && /EUR/.test(err.message),
  );
});

test('budgets: an exhausted budget is 429 budget_exceeded with retry-after and budget headers; counted as budget_daily', async () => {
  const store = new FakeStore();
  store.decide = (limits) => ({
    admitted: false,
    now: 0,
    states: limits.map((l) => ({ name: l.name, limit: 1_500_000, remaining: l.name.startsWith('budget:daily') ? 0 : 700_000, resetMs: 3_600_000 })),
    deniedBy: 'budget:daily:tenant',
    retryAfterMs: 3_600_000,
  });
  const metrics = new Metrics({ processMetrics: false });
  const s = new QuotaStage(quotas(budgetPlan()), { primary: store, local: new FakeStore(), breaker: null, metrics, log: pino({ level: 'silent' }) });
  const err = await s.admit(request('b', { prices: [usd(1_000_000n, 1_000_000n)] })).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof GatewayError);
  assert.equal(err.code, 'budget_exceeded');
  assert.equal(err.status, 429);
  assert.match(err.message, /daily spend budget per tenant, USD.*resets in 1h0m0s/);
  assert.equal(err.headers['retry-after'], '3600');
  assert.equal(err.headers['x-ratelimit-limit-budget'], '1.5');
  assert.equal(err.headers['x-ratelimit-remaining-budget'], '0');
  assert.equal(err.headers['x-ratelimit-budget-currency'], 'USD');
  const denied = (await metrics.registry.getSingleMetric('inference_gateway_quota_decisions_total')?.get())?.values.find((v) => v.labels.outcome === 'denied');
  assert.equal(denied?.labels.limit, 'budget_daily');
});

test('budgets: amounts with more than 6 decimals, zero or negative are refused by the config', () => {
  for (const bad of ['0.0000001', '0', '-1', 1e-7, '10000000000']) {
    assert.throws(() => quotas(budgetPlan({ scope: 'org', budgetDaily: bad })), /must be a positive decimal with at most 6 decimals/, String(bad));
  }
  assert.throws(() => quotas({ plans: [{ name: 'x', currency: 'dollars', limits: [{ scope: 'org', budgetDaily: '1' }] }] }), /currency/);
});

test("plans from the routing snapshot come before the config's, for the tier and for the default plan", () => {
  let fromSnapshot = new Map<string, ReturnType<typeof quotas>['plans'][number]>();
  const cfg = quotas({
    plans: [
      { name: 'gold', limits: [{ scope: 'key', rpm: 10 }] },
      { name: 'base', limits: [{ scope: 'key', rpm: 1 }] },
    ],
    defaultPlan: 'base',
  });
  const s = new QuotaStage(cfg, {
    primary: new FakeStore(),
    local: new FakeStore(),
    breaker: null,
    metrics: new Metrics({ processMetrics: false }),
    log: pino({ level: 'silent' }),
    snapshotPlans: () => fromSnapshot,
  });
  assert.equal(s.planFor('gold')?.limits[0]?.rpm, 10);
  assert.equal(s.planFor('nobody')?.name, 'base');
  const snapshotPlans = quotas({
    plans: [
      { name: 'gold', limits: [{ scope: 'key', rpm: 500 }] },
      { name: 'base', limits: [{ scope: 'key', rpm: 5 }] },
      { name: 'new', limits: [{ scope: 'tenant', rpm: 7 }] },
    ],
  }).plans;
  fromSnapshot = new Map(snapshotPlans.map((p) => [p.name, p]));
  assert.equal(s.planFor('gold')?.limits[0]?.rpm, 500, "the snapshot's plan wins over the config's of the same name");
  assert.equal(s.planFor('new')?.limits[0]?.rpm, 7, 'a plan only the snapshot has');
  assert.equal(s.planFor('nobody')?.limits[0]?.rpm, 5, "the default plan's name is looked up in the snapshot first too");
  fromSnapshot = new Map();
  assert.equal(s.planFor('new')?.name, 'base', "a plan gone from the snapshot no longer applies: the config's default does");
});
