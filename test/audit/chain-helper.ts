/**
 * A small audit chain writer for tests, written from docs/audit.md (not from
 * the sidecar's writer): records carry `type: "request"` and
 * `chain { id, seq, prev }`, prev = SHA-256 of the canonical JSON of the
 * previous record (GENESIS for seq 1); checkpoints are signed over their
 * canonical JSON without `sig`.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, GENESIS, recordHash } from '../../src/crypto/canonical.ts';
import { generateSigningKey, signText, type SigningKey } from '../../src/crypto/signing.ts';

export type Line = Record<string, unknown>;

export function sampleRecord(i: number, over: Partial<Line> = {}): Line {
  return {
    type: 'request',
    v: 1,
    requestId: `req-${i}`,
    traceId: `trace-${i}`,
    startedAt: new Date(Date.UTC(2026, 10, 23, 0, 0, i)).toISOString(),
    endedAt: new Date(Date.UTC(2026, 10, 23, 0, 0, i, 250)).toISOString(),
    method: 'POST',
    path: '/v1/chat/completions',
    endpoint: 'chat.completions',
    identity: { methods: ['api_key'], principal: 'svc-a', keyId: 'k1', jwt: null, mtls: null },
    authorization: { org: 'acme', tenant: 'team-a', tier: 'standard', roles: [] },
    classification: { classes: {} },
    decision: { action: 'permit', code: null, policyVersion: null },
    model: 'gpt-small',
    deployment: { cluster: 'local', model: 'demo' },
    snapshotVersion: 'v1',
    status: 200,
    outcome: 'completed',
    latencyMs: { total: 12.5, firstByte: 3.25, firstToken: 4 },
    usage: { promptTokens: 10, completionTokens: 5, cachedPromptTokens: 0, source: 'counted' },
    quota: null,
    ...over,
  };
}

export class TestChain {
  readonly id: string;
  seq = 0;
  prev = GENESIS;
  /** hash of record seq n (index n). */
  readonly hashes: string[] = [''];

  constructor(id: string = randomUUID()) {
    this.id = id;
  }

  record(over: Partial<Line> = {}): Line {
    const seq = this.seq + 1;
    const rec: Line = { ...sampleRecord(seq, over), chain: { id: this.id, seq, prev: this.prev } };
    this.seq = seq;
    this.prev = recordHash(rec);
    this.hashes.push(this.prev);
    return rec;
  }

  checkpoint(key: SigningKey, final = false, over: Partial<Line> = {}): Line {
    return signCheckpoint(key, {
      type: 'checkpoint',
      v: 1,
      chain: this.id,
      seq: this.seq,
      hash: this.prev,
      at: '2026-11-23T00:00:00.000Z',
      final,
      kid: key.kid,
      ...over,
    });
  }
}

/** Signs a checkpoint body (any `sig` in it is replaced). */
export function signCheckpoint(key: SigningKey, body: Line): Line {
  const rest: Line = { ...body };
  delete rest.sig;
  return { ...rest, sig: signText(key, canonicalJson(rest)) };
}

/** n records with a checkpoint every `every` records and a final one. */
export function buildChain(key: SigningKey, n: number, every = 4, chain = new TestChain()): Line[] {
  const out: Line[] = [];
  for (let i = 1; i <= n; i++) {
    out.push(chain.record());
    if (i % every === 0 && i < n) out.push(chain.checkpoint(key));
  }
  out.push(chain.checkpoint(key, true));
  return out;
}

export function jsonl(lines: readonly Line[]): string {
  return lines.map((l) => `${JSON.stringify(l)}\n`).join('');
}

export interface TempDir {
  readonly dir: string;
  path(name: string): string;
  write(name: string, text: string): string;
  key(name: string): SigningKey;
  remove(): void;
}

export function tempDir(): TempDir {
  const dir = mkdtempSync(join(tmpdir(), 'igw-audit-'));
  return {
    dir,
    path: (name) => join(dir, name),
    write: (name, text) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
    key: (name) => generateSigningKey(join(dir, 'keys', name)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function keyMap(...keys: SigningKey[]): Map<string, KeyObject> {
  return new Map(keys.map((k) => [k.kid, k.publicKey]));
}
