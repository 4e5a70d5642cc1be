/**
 * `npm run bench:content`: validation + classification + policy cost per
 * request for 1 kB, 16 kB and 128 kB prompts, in-process on the real code:
 * the strict JSON parser and schema (validateRequest) and the content guard
 * (classifier over every prompt text, policy decision, redaction). Two kinds
 * of prose: plain ASCII (the classifier's normaliser returns it as it is) and
 * prose with typographic punctuation, no-break spaces, accents, CJK and emoji
 * (the normaliser folds dashes and spaces and maps offsets back).
 */
import { ConfigSchema } from '../src/config/schema.ts';
import { requestTexts } from '../src/families/openai/texts.ts';
import { validateRequest } from '../src/families/openai/validate.ts';
import { Classifier } from '../src/stages/classify/classifier.ts';
import { ContentGuard } from '../src/stages/policy/content.ts';
import { Policy } from '../src/stages/policy/policy.ts';

const policy = ConfigSchema.parse({
  policy: {
    rules: [
      { name: 'secrets', classes: ['SECRET'], action: 'deny' },
      { name: 'cards', classes: ['PCI', 'PHI'], action: 'redact' },
    ],
    phiTerms: ['diabetes', 'hypertension'],
  },
}).policy;
const guard = new ContentGuard(new Classifier({ phiTerms: policy.phiTerms }), new Policy(policy), { responses: true });
const subject = { endpoint: 'chat' as const, model: 'gpt-demo', tenant: 'research', org: 'acme', roles: [] };

const PROSE =
  'The quarterly report shows steady growth across all regions, with customer retention at 94 percent and latency improvements of 12 ms in the EU. ';
const PROSE_INTL =
  'The quarterly report — “steady growth” across all regions (café, Zürich, 東京) 👍, with customer retention at 94\u00a0percent and latency down 12\u202fms in the EU. ';
function body(bytes: number, prose: string): Buffer {
  let text = '';
  while (text.length < bytes) text += prose;
  // A few findings per prompt, like real traffic: an email and a card number to redact.
  text = `Contact ops@example.com about card 4111 1111 1111 1111. ${text}`.slice(0, bytes);
  return Buffer.from(
    JSON.stringify({
      model: 'gpt-demo',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: text },
      ],
      max_tokens: 256,
    }),
  );
}

async function measure(bytes: number, prose: string): Promise<{ validate: number; classify: number; total: number }> {
  const raw = body(bytes, prose);
  const n = bytes >= 100_000 ? 300 : bytes >= 10_000 ? 2000 : 10_000;
  for (let i = 0; i < Math.min(200, n); i++) await guard.inspectRequest(requestTexts('chat', validateRequest('chat', raw, { maxDepth: 32 })), subject);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) validateRequest('chat', raw, { maxDepth: 32 });
  const c1 = process.cpuUsage(c0);
  const parsed = Array.from({ length: n }, () => validateRequest('chat', raw, { maxDepth: 32 }));
  const c2 = process.cpuUsage();
  for (const p of parsed) await guard.inspectRequest(requestTexts('chat', p), subject);
  const c3 = process.cpuUsage(c2);
  const us = (c: NodeJS.CpuUsage) => (c.user + c.system) / n;
  return { validate: us(c1), classify: us(c3), total: us(c1) + us(c3) };
}

process.stdout.write(`Validation + classification per request (${new Date().toISOString()}, Node ${process.version})\n`);
for (const [title, prose] of [
  ['ASCII prose', PROSE],
  ['non-ASCII prose (dashes, curly quotes, no-break spaces, accents, CJK, emoji)', PROSE_INTL],
] as const) {
  process.stdout.write(`\n${title}\n\n| prompt | validate µs | classify + policy + redact µs | total µs |\n|---|--:|--:|--:|\n`);
  for (const size of [1024, 16 * 1024, 128 * 1024]) {
    const r = await measure(size, prose);
    process.stdout.write(`| ${size / 1024} kB | ${r.validate.toFixed(0)} | ${r.classify.toFixed(0)} | ${r.total.toFixed(0)} |\n`);
  }
}
