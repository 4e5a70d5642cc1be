/**
 * `npm run soak -- [--minutes 5] [--rate 40]`: the long soak (issue #14). The
 * local stack (real Envoy, the sidecar as its own process, the demo model
 * server) under a steady mixed load for `minutes`: OpenAI chat buffered and
 * streamed, Anthropic messages, redacted prompts, refused requests, streams
 * the client abandons. Every 10 s it samples the sidecar's and Envoy's RSS
 * and the sidecar's open streams; at the end it checks that every request got
 * the answer its kind expects, that every request left exactly one audit
 * record, that no stream stayed open and that memory did not keep growing.
 * Exits 1 when a check fails. Results: bench/results/soak-<time>.json; the
 * last one is quoted in docs/reliability.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../src/envoy/binary.ts';
import { readAudit } from '../test/helpers/fixtures.ts';
import { scrapeMetrics, startTestStack } from '../test/helpers/stack.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, rate: { type: 'string', default: '40' } } });
const minutes = Number(values.minutes);
const rate = Number(values.rate);
if (!(minutes > 0) || !(rate > 0)) throw new Error('--minutes and --rate must be positive numbers');

const say = (s: string): void => void process.stdout.write(`${s}\n`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

const stack = await startTestStack({
  config: { policy: { rules: [{ name: 'cards', classes: ['PCI'], action: 'redact' }] } },
  models: [
    { id: 'gpt-demo', endpoints: ['chat', 'messages'], cluster: 'demo-upstream', model: 'demo-model' },
    { id: 'claude-demo', endpoints: ['messages', 'chat'], cluster: 'demo-upstream', model: 'demo-claude', provider: 'anthropic' },
  ],
});
const key = stack.files.keys['alice'] ?? '';
const sidecarPid = stack.sidecar?.pid ?? -1;

type Kind = 'chat' | 'stream' | 'anthropic' | 'redacted' | 'refused' | 'abandoned';
const MIX: ReadonlyArray<readonly [Kind, number]> = [
  ['chat', 40],
  ['stream', 20],
  ['anthropic', 15],
  ['redacted', 10],
  ['refused', 10],
  ['abandoned', 5],
];
const EXPECT: Readonly<Record<Kind, number>> = { chat: 200, stream: 200, anthropic: 200, redacted: 200, refused: 404, abandoned: 200 };

function pick(i: number): Kind {
  let r = (i * 7919) % 100;
  for (const [k, w] of MIX) {
    if (r < w) return k;
    r -= w;
  }
  return 'chat';
}

async function one(kind: Kind): Promise<number> {
  const openai = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const chat = (body: object, headers: Record<string, string> = {}) =>
    fetch(`${stack.baseURL}/chat/completions`, { method: 'POST', headers: { ...openai, ...headers }, body: JSON.stringify(body) });
  const messages = [{ role: 'user', content: 'Tell me about soak tests' }];
  switch (kind) {
    case 'chat':
      return drain(await chat({ model: 'gpt-demo', messages }));
    case 'stream':
      return drain(await chat({ model: 'gpt-demo', stream: true, messages }, { 'x-demo-words': '20' }));
    case 'redacted':
      return drain(await chat({ model: 'gpt-demo', messages: [{ role: 'user', content: 'my card is 4111 1111 1111 1111' }] }));
    case 'refused':
      return drain(await chat({ model: 'no-such-model', messages }));
    case 'anthropic': {
      const r = await fetch(`${stack.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-demo', max_tokens: 32, stream: true, messages }),
      });
      return drain(r);
    }
    case 'abandoned': {
      // The client reads the first bytes of a slow stream and goes away.
      const ctl = new AbortController();
      const r = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { ...openai, 'x-demo-words': '50', 'x-demo-chunk-delay-ms': '20' },
        body: JSON.stringify({ model: 'gpt-demo', stream: true, messages }),
        signal: ctl.signal,
      });
      await r.body?.getReader().read();
      ctl.abort();
      return r.status;
    }
  }
}

async function drain(r: Response): Promise<number> {
  await r.arrayBuffer();
  return r.status;
}

const startedAt = Date.now();
const endAt = startedAt + minutes * 60_000;
const samples: Array<{ s: number; sidecarMb: number; envoyMb: number; openStreams: number; sent: number }> = [];
const tally: Record<string, number> = {};
const unexpected: string[] = [];
let sent = 0;
let inFlight = 0;
const pending = new Set<Promise<void>>();

async function sample(): Promise<void> {
  const metrics = await scrapeMetrics(stack.sidecar?.adminUrl ?? '');
  samples.push({
    s: Math.round((Date.now() - startedAt) / 1000),
    sidecarMb: Math.round(rssMb(sidecarPid) * 10) / 10,
    envoyMb: Math.round(rssMb(stack.envoy.pid) * 10) / 10,
    openStreams: metrics.get('inference_gateway_active_streams') ?? Number.NaN,
    sent,
  });
  const last = samples.at(-1);
  say(`soak: ${last?.s}s sent ${sent}, in flight ${inFlight}, sidecar ${last?.sidecarMb} MB, envoy ${last?.envoyMb} MB, open streams ${last?.openStreams}`);
}

say(`soak: ${minutes} min at ${rate} req/s (${MIX.map(([k, w]) => `${k} ${w}%`).join(', ')})`);
await sample();
let nextSample = startedAt + 10_000;
const interval = 1000 / rate;
for (let i = 0; Date.now() < endAt; i++) {
  const due = startedAt + i * interval;
  const wait = due - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  if (Date.now() >= nextSample) {
    nextSample += 10_000;
    await sample();
  }
  const kind = pick(i);
  sent++;
  inFlight++;
  const p = one(kind)
    .then((status) => {
      tally[`${kind} ${status}`] = (tally[`${kind} ${status}`] ?? 0) + 1;
      if (status !== EXPECT[kind]) unexpected.push(`${kind}: ${status}`);
    })
    .catch((err: unknown) => {
      tally[`${kind} error`] = (tally[`${kind} error`] ?? 0) + 1;
      unexpected.push(`${kind}: ${(err as Error).message}`);
    })
    .finally(() => {
      inFlight--;
      pending.delete(p);
    });
  pending.add(p);
}
await Promise.all(pending);
// Every request leaves one record (abandoned streams once the sidecar notices the reset).
const records = await (async () => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const n = readAudit(stack.files.auditFile).length;
    if (n >= sent || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
})();
await sample();
await stack.stop();

const first = samples.slice(1, 4).map((s) => s.sidecarMb);
const last = samples.slice(-3).map((s) => s.sidecarMb);
const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const growthMb = Math.round((avg(last) - avg(first)) * 10) / 10;
const openAtEnd = samples.at(-1)?.openStreams ?? Number.NaN;
const checks = {
  everyAnswerAsExpected: unexpected.length === 0,
  oneRecordPerRequest: records === sent,
  noStreamLeftOpen: openAtEnd === 0,
  // A leak grows with traffic; warm-up and GC settle within the first samples.
  sidecarRssSteady: growthMb < 30,
};
const result = {
  date: new Date(startedAt).toISOString(),
  minutes,
  rate,
  sent,
  records,
  tally,
  unexpected: unexpected.slice(0, 20),
  sidecarRssMb: { firstMinute: avg(first), lastSamples: avg(last), growth: growthMb, max: Math.max(...samples.map((s) => s.sidecarMb)) },
  envoyRssMb: { first: samples[1]?.envoyMb, last: samples.at(-1)?.envoyMb },
  openStreamsAtEnd: openAtEnd,
  checks,
  samples,
};
const file = join(PROJECT_ROOT, 'bench', 'results', `soak-${result.date.replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
say(JSON.stringify({ sent, records, tally, sidecarRssMb: result.sidecarRssMb, openStreamsAtEnd: openAtEnd, checks }, null, 2));
say(`soak: results written to ${file}`);
process.exit(Object.values(checks).every(Boolean) ? 0 : 1);
