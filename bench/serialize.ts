/**
 * `npm run bench:serialize`: µs per audit line for what the chain does to
 * every record — canonical JSON (native path for a record built in key order,
 * general path for the same record with its keys shuffled) and its sha256 —
 * on a typical completed chat request's record (buildAuditRecord + chain).
 */
import { canonicalJson, sha256Hex } from '../src/crypto/canonical.ts';
import { chainedRecord } from '../src/stores/audit/chain.ts';
import { buildAuditRecord } from '../src/pipeline/audit-record.ts';
import type { RequestContext } from '../src/pipeline/context.ts';

const started = process.hrtime.bigint();
const ctx = {
  requestId: '6b1f0f0e-2c1d-4c36-9d6e-9a1d3c0f2b11',
  trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true },
  startedAt: Date.now(),
  startedHr: started,
  method: 'POST',
  path: '/v1/chat/completions',
  endpoint: 'chat',
  snapshot: { version: 'builtin-1' },
  identity: {
    methods: ['api_key'],
    principal: 'key:demo',
    keyId: 'demo',
    jwt: null,
    mtls: null,
    org: 'acme',
    tenant: 'acme-prod',
    tier: 'standard',
    roles: ['user'],
  },
  route: { id: 'gpt-demo' },
  deployment: { cluster: 'demo-upstream', upstreamModel: 'demo-model', provider: 'openai', labels: {} },
  attempts: null,
  stream: false,
  clientWantsStreamUsage: false,
  usage: { promptTokens: 14, completionTokens: 12, source: 'counted' },
  status: 200,
  errorCode: null,
  firstByteHr: started + 1_234_000n,
  firstTokenHr: null,
  outcome: 'completed',
  quota: { plan: 'bench', mode: 'store', reservedTokens: 78 },
  content: { request: {}, response: {}, action: 'permit', unredacted: false },
} as unknown as RequestContext;

const chain = { id: 'b8a0c1d2-1111-2222-3333-444455556666', prev: 'a'.repeat(64), seq: 12345 };
const inOrder = chainedRecord(buildAuditRecord(ctx, 'policy-v1'), chain);
const shuffled = Object.fromEntries(Object.entries(inOrder).reverse());

function perCall(f: () => unknown): number {
  for (let i = 0; i < 20_000; i++) f();
  const n = 200_000;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t) / 1000 / n;
}

const rows: Array<[string, number]> = [
  ['canonicalJson, record built in key order (native path)', perCall(() => canonicalJson(inOrder))],
  ['canonicalJson, same record, keys shuffled (general path)', perCall(() => canonicalJson(shuffled))],
  ['JSON.stringify alone (the floor)', perCall(() => JSON.stringify(inOrder))],
  ['sha256 of the line', perCall(() => sha256Hex(canonicalJson(inOrder)))],
];
process.stdout.write(`audit line: ${canonicalJson(inOrder).length} bytes; Node ${process.version}\n`);
for (const [name, us] of rows) process.stdout.write(`${us.toFixed(2).padStart(7)} µs  ${name}\n`);
