/**
 * Cost through real Envoy: each request's audit record carries the exact cost
 * of the usage the client was told, at the price of the deployment that
 * answered — buffered and streamed, OpenAI and Anthropic clients, prompt cache
 * reads at their own price — and the metric and `audit export` add up to the
 * same amounts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { formatUnits, parseUnits } from '../../src/pipeline/cost.ts';
import { readAudit } from '../helpers/fixtures.ts';
import { scrapeMetrics, startTestStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;

// Micro units per million tokens, as in the snapshot below.
const GPT = { input: 500_000n, cached: 500_000n, output: 1_500_000n, perRequest: 1_000n };
const CLAUDE = { input: 3_000_000n, cached: 300_000n, output: 15_000_000n, perRequest: 0n };

before(async () => {
  stack = await startTestStack({
    models: [
      {
        id: 'gpt-demo',
        endpoints: ['chat'],
        cluster: 'demo-upstream',
        model: 'demo-model',
        price: { inputPerMillion: '0.5', outputPerMillion: '1.5', perRequest: '0.001' },
      },
      {
        id: 'claude-demo',
        endpoints: ['messages', 'chat'],
        cluster: 'demo-upstream',
        model: 'demo-claude',
        provider: 'anthropic',
        price: { currency: 'EUR', inputPerMillion: '3', cachedInputPerMillion: '0.3', outputPerMillion: '15' },
      },
      { id: 'free-demo', endpoints: ['chat'], cluster: 'demo-upstream', model: 'demo-model' },
    ],
  });
});

after(async () => {
  await stack?.stop();
});

/** The cost of what the client was told it used, computed here from the prices above. */
function expected(p: typeof GPT, prompt: number, cached: number, completion: number): string {
  return formatUnits(BigInt(prompt - cached) * p.input + BigInt(cached) * p.cached + BigInt(completion) * p.output + p.perRequest * 1_000_000n);
}

function recordOf(requestId: string | null): Record<string, unknown> & { cost: { amount: string; currency: string; estimated: boolean } | null } {
  const rec = readAudit(stack.files.auditFile).find((r) => r.requestId === requestId);
  assert.ok(rec, `an audit record for ${requestId}`);
  return rec as unknown as Record<string, unknown> & { cost: { amount: string; currency: string; estimated: boolean } | null };
}

test('OpenAI client, buffered and streamed: the record costs exactly what the reported usage costs at the price', async () => {
  const client = stack.client();
  const r = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'price this please' }] }).withResponse();
  const usage = r.data.usage;
  assert.ok(usage);
  assert.deepEqual(recordOf(r.response.headers.get('x-request-id')).cost, {
    amount: expected(GPT, usage.prompt_tokens, 0, usage.completion_tokens),
    currency: 'USD',
    estimated: false,
  });

  const s = await client.chat.completions
    .create({ model: 'gpt-demo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'and this stream' }] })
    .withResponse();
  let streamed: { prompt_tokens: number; completion_tokens: number } | null = null;
  for await (const chunk of s.data) if (chunk.usage) streamed = chunk.usage;
  assert.ok(streamed);
  const id = s.response.headers.get('x-request-id');
  await waitFor(() => readAudit(stack.files.auditFile).some((x) => x.requestId === id), { what: 'the stream record' });
  assert.deepEqual(recordOf(id).cost, { amount: expected(GPT, streamed.prompt_tokens, 0, streamed.completion_tokens), currency: 'USD', estimated: false });

  const free = await client.chat.completions.create({ model: 'free-demo', messages: [{ role: 'user', content: 'no price here' }] }).withResponse();
  assert.equal(recordOf(free.response.headers.get('x-request-id')).cost, null);
});

test('Anthropic client: cache reads at the cached-input price, in the deployment currency; an OpenAI client of the same deployment pays the same', async () => {
  const anthropic = new Anthropic({ baseURL: stack.url, apiKey: stack.files.keys['alice'] ?? '', maxRetries: 0, timeout: 20_000 });
  const m = await anthropic.messages
    .create(
      { model: 'claude-demo', max_tokens: 64, messages: [{ role: 'user', content: 'with a warm cache' }] },
      { headers: { 'x-demo-cache-read-tokens': '1200' } },
    )
    .withResponse();
  const u = m.data.usage;
  assert.equal(u.cache_read_input_tokens, 1200);
  const prompt = u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
  const rec = recordOf(m.response.headers.get('x-request-id'));
  assert.deepEqual(rec['usage'], { cachedPromptTokens: 1200, completionTokens: u.output_tokens, promptTokens: prompt, source: 'counted' });
  assert.deepEqual(rec.cost, { amount: expected(CLAUDE, prompt, 1200, u.output_tokens), currency: 'EUR', estimated: false });

  // The same deployment through the OpenAI API (translated): the client sees cached_tokens; the cost agrees.
  const o = await stack
    .client('alice', { 'x-demo-cache-read-tokens': '1200' })
    .chat.completions.create({ model: 'claude-demo', max_tokens: 64, messages: [{ role: 'user', content: 'with a warm cache' }] })
    .withResponse();
  const ou = o.data.usage;
  assert.ok(ou);
  assert.equal(ou.prompt_tokens_details?.cached_tokens, 1200);
  assert.deepEqual(recordOf(o.response.headers.get('x-request-id')).cost, {
    amount: expected(CLAUDE, ou.prompt_tokens, 1200, ou.completion_tokens),
    currency: 'EUR',
    estimated: false,
  });
});

test('the cost metric and audit export add up to the records, per currency', async () => {
  const records = readAudit(stack.files.auditFile) as unknown as Array<{ cost: { amount: string; currency: string } | null }>;
  const sums = new Map<string, bigint>();
  for (const r of records) if (r.cost !== null) sums.set(r.cost.currency, (sums.get(r.cost.currency) ?? 0n) + (parseUnits(r.cost.amount) ?? 0n));
  assert.ok((sums.get('USD') ?? 0n) > 0n && (sums.get('EUR') ?? 0n) > 0n);

  const res = spawnSync(process.execPath, [join(PROJECT_ROOT, 'src', 'cli', 'main.ts'), 'audit', 'export', stack.files.auditFile], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const report = JSON.parse(res.stdout) as { totals: { cost: Record<string, string> } };
  assert.deepEqual(report.totals.cost, { EUR: formatUnits(sums.get('EUR') ?? 0n), USD: formatUnits(sums.get('USD') ?? 0n) });

  const adminUrl = stack.sidecar?.adminUrl ?? '';
  const metrics = await scrapeMetrics(adminUrl);
  const metric = (currency: string): number =>
    [...metrics].filter(([k]) => k.startsWith('inference_gateway_cost_total{') && k.includes(`currency="${currency}"`)).reduce((a, [, v]) => a + v, 0);
  for (const c of ['USD', 'EUR']) {
    const exact = Number(sums.get(c) ?? 0n) / 1e12;
    assert.ok(Math.abs(metric(c) - exact) <= exact * 1e-9, `${c}: metric ${metric(c)} vs records ${exact}`);
  }
});
