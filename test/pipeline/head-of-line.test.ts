/**
 * No request can stall the others (issue #13 item 6): with a 1.5 MB
 * adversarial prompt being classified, a small request through the same
 * processor takes about as long as it does alone — the large body is scanned
 * on a worker thread (policy.inspectWorkers). The control run classifies
 * inline (inspectWorkers: 0) and shows the stall the pool removes, so the
 * test can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { ConfigSchema } from '../../src/config/schema.ts';
import { openAIFamily } from '../../src/families/openai/family.ts';
import { NO_CONNECTION_INFO } from '../../src/pipeline/identity.ts';
import { Classifier } from '../../src/stages/classify/classifier.ts';
import { ScanPool } from '../../src/stages/classify/pool.ts';
import { ContentGuard } from '../../src/stages/policy/content.ts';
import { Policy } from '../../src/stages/policy/policy.ts';
import { deployment, rig, route, snapshot, USER_KEY, type Rig } from './fakes.ts';

const policy = new Policy(ConfigSchema.parse({ policy: { rules: [{ name: 'cards', classes: ['PCI', 'PII'], action: 'redact' }] } }).policy);
const head = () =>
  new Map(Object.entries({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', authorization: `Bearer ${USER_KEY}` }));
const small = Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'hello, card 4111 1111 1111 1111' }] }));

/** 1.5 MB of text built to keep the detectors busy: digit groups that almost make cards, near-emails, labels. */
function adversarial(): Buffer {
  const unit = '4111 1111 1111 111 a@b.c NPI 123456789 MRN: 12345 password= ab 00-000-0000 ';
  let text = '';
  while (text.length < 1_500_000) text += unit;
  return Buffer.from(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: text }] }));
}

function processor(workers: number): { g: Rig; pool: ScanPool | null } {
  const pool = workers === 0 ? null : new ScanPool({}, workers);
  const content = new ContentGuard(new Classifier(), policy, { responses: true, pool, inlineChars: 32_768 });
  const g = rig({ families: [openAIFamily], content, maxBodyBytes: 4 << 20, snapshot: snapshot([route('gpt', ['chat'], [deployment('c1', 'up')])]) });
  return { g, pool };
}

/** What parsing (strict JSON + schema) the large body costs on the event loop. */
function parseMs(body: Buffer): number {
  const chat = openAIFamily.endpoints.find((e) => e.name === 'chat');
  assert.ok(chat !== undefined);
  const t0 = performance.now();
  openAIFamily.parseRequest(chat, body, { maxJsonDepth: 32 }).texts();
  return performance.now() - t0;
}

async function oneRequest(g: Rig, body: Buffer): Promise<number> {
  const t0 = performance.now();
  const { state } = await g.processor.requestHeaders(head(), false, NO_CONNECTION_INFO);
  const r = await g.processor.requestBody(state, body);
  assert.equal(r.kind, 'continue', r.kind === 'respond' ? r.body.toString() : '');
  return performance.now() - t0;
}

async function smallWhileLargeInFlight(g: Rig): Promise<{ alone: number; during: number[]; largeMs: number }> {
  for (let i = 0; i < 20; i++) await oneRequest(g, small); // warm up
  const aloneRuns: number[] = [];
  for (let i = 0; i < 20; i++) aloneRuns.push(await oneRequest(g, small));
  const alone = aloneRuns.sort((a, b) => a - b)[10] as number;
  const big = adversarial();
  const t0 = performance.now();
  let largeDone = false;
  const large = oneRequest(g, big).then((ms) => {
    largeDone = true;
    return ms;
  });
  const during: number[] = [];
  // Small requests one after another for as long as the large one is being classified.
  while (!largeDone && during.length < 500) during.push(await oneRequest(g, small));
  await large;
  return { alone, during, largeMs: performance.now() - t0 };
}

test('a small request is not held up by a 1.5 MB adversarial body being classified on the worker pool', async (t) => {
  const { g, pool } = processor(1);
  try {
    // Parse the large body once before (the parser warm, as in a running sidecar), timing it: the one stall left.
    parseMs(adversarial());
    const parse = parseMs(adversarial());
    const { alone, during, largeMs } = await smallWhileLargeInFlight(g);
    t.diagnostic(`alone ${alone.toFixed(3)} ms; during: n=${during.length}, max ${Math.max(...during).toFixed(2)} ms; large ${largeMs.toFixed(0)} ms`);
    assert.ok(during.length >= 5, `small requests were served while the large one ran (${during.length} in ${largeMs.toFixed(0)} ms)`);
    const sorted = [...during].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)] as number;
    assert.ok(p50 < alone + 10, `small request p50 ${p50.toFixed(2)} ms vs ${alone.toFixed(2)} ms alone`);
    // The small request that arrives while the large body's JSON is parsed (on the event loop) waits for that parse;
    // classification itself never holds the loop: the worst wait is bounded by the parse, measured here on this machine.
    // The small request that arrives while the large body's JSON is parsed on the event loop waits for that parse (and,
    // on a loaded machine, for the CPU); classification itself never holds the loop. Reported, not asserted: it is load.
    t.diagnostic(`worst small request ${(sorted.at(-1) as number).toFixed(1)} ms; the large body's parse alone: ${parse.toFixed(1)} ms`);
  } finally {
    await pool?.close();
  }
});

test('control: classified inline, the same large body holds every small request until it is done', async () => {
  const { g } = processor(0);
  const { alone, during, largeMs } = await smallWhileLargeInFlight(g);
  // Inline, the large request runs to completion before any small one gets the event loop.
  assert.ok(during.length <= 1, `no small request completes while the large one is classified inline (${during.length})`);
  assert.ok(largeMs > alone + 50, `the inline scan of the large body takes ${largeMs.toFixed(0)} ms`);
});
