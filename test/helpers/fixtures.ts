/**
 * Config fixtures for tests: a gateway config, a routing snapshot and API
 * keys, written to a fresh temp folder.
 */
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateApiKey } from '../../src/crypto/api-key-format.ts';

export interface KeySpec {
  readonly principal: string;
  readonly org?: string;
  readonly tenant?: string;
  readonly tier?: string;
  readonly models?: string[];
  readonly endpoints?: string[];
  readonly roles?: string[];
  readonly expiresAt?: string;
}

export interface ModelSpec {
  readonly id: string;
  readonly endpoints: Array<'chat' | 'completions' | 'embeddings' | 'messages' | 'count_tokens'>;
  readonly cluster: string;
  readonly model: string;
  /** The API the deployment speaks (default openai). */
  readonly provider?: 'openai' | 'anthropic';
  readonly credential?: string;
  /** The target's price (the snapshot's form: decimal strings). */
  readonly price?: { currency?: string; inputPerMillion: string; outputPerMillion: string; cachedInputPerMillion?: string; perRequest?: string };
  readonly overrides?: Array<{ tenants: string[]; target: { cluster: string; model: string; credential?: string } }>;
  /** A weighted split instead of the single cluster/model target (which is then ignored). */
  readonly targets?: Array<{ cluster: string; model: string; weight: number; labels?: Record<string, string> }>;
  /** The target's fallback chain: an aggregate cluster and the deployments after the target, in order. */
  readonly fallback?: { cluster: string; to: Array<{ cluster: string; model: string; provider?: 'openai' | 'anthropic'; credential?: string }> };
  /**
   * The model's target(s) and overrides exactly as the snapshot writes them (trust attributes, ids, priorities…):
   * replaces cluster, model, targets, overrides and fallback above.
   */
  readonly routing?: Record<string, unknown>;
  /** The model's request transforms, as the snapshot writes them (docs/configuration.md "Request transforms"). */
  readonly transforms?: {
    defaults?: Record<string, number | string>;
    forced?: Record<string, number | string>;
    systemPrefix?: string;
  };
}

export interface GatewayFiles {
  readonly dir: string;
  readonly configFile: string;
  readonly snapshotFile: string;
  readonly auditFile: string;
  readonly socketPath: string;
  /** principal → API key */
  readonly keys: Readonly<Record<string, string>>;
}

export const DEFAULT_MODELS: ModelSpec[] = [
  { id: 'gpt-demo', endpoints: ['chat', 'completions'], cluster: 'demo-upstream', model: 'demo-model' },
  { id: 'embed-demo', endpoints: ['embeddings'], cluster: 'demo-upstream', model: 'demo-embedder' },
];

export function writeGatewayFiles(
  opts: {
    keys?: KeySpec[];
    models?: ModelSpec[];
    config?: Record<string, unknown>;
    snapshotVersion?: string;
  } = {},
): GatewayFiles {
  const dir = mkdtempSync(join(tmpdir(), 'igw-test-'));
  const keys: Record<string, string> = {};
  const entries = (opts.keys ?? [{ principal: 'alice' }]).map((k) => {
    const made = generateApiKey();
    keys[k.principal] = made.key;
    return {
      id: made.id,
      hash: made.hash,
      principal: k.principal,
      org: k.org ?? 'acme',
      tenant: k.tenant ?? 'research',
      tier: k.tier ?? 'standard',
      models: k.models ?? ['*'],
      endpoints: k.endpoints ?? ['*'],
      roles: k.roles ?? [],
      ...(k.expiresAt === undefined ? {} : { expiresAt: k.expiresAt }),
    };
  });
  const snapshotFile = join(dir, 'routing.yaml');
  writeFileSync(
    snapshotFile,
    stringify({
      version: opts.snapshotVersion ?? 'test-1',
      models: (opts.models ?? DEFAULT_MODELS).map((m) => ({
        id: m.id,
        endpoints: m.endpoints,
        ...(m.routing !== undefined
          ? m.routing
          : m.targets !== undefined
            ? { targets: m.targets }
            : {
                target: {
                  cluster: m.cluster,
                  model: m.model,
                  ...(m.provider === undefined ? {} : { provider: m.provider }),
                  ...(m.credential === undefined ? {} : { credential: m.credential }),
                  ...(m.price === undefined ? {} : { price: m.price }),
                  ...(m.fallback === undefined ? {} : { fallback: m.fallback }),
                },
              }),
        ...(m.overrides === undefined || m.routing !== undefined ? {} : { overrides: m.overrides }),
        ...(m.transforms === undefined ? {} : { transforms: m.transforms }),
      })),
    }),
  );
  const socketPath = join(dir, 'sidecar.sock');
  const auditFile = join(dir, 'audit.jsonl');
  const config = deepMerge(
    {
      server: { grpc: { socket: socketPath }, admin: { port: 0 }, shutdownGraceMs: 2000 },
      auth: { apiKeys: entries },
      routing: { snapshotFile },
      audit: { file: auditFile },
      logging: { level: 'warn' },
    },
    opts.config ?? {},
  );
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, stringify(config));
  return { dir, configFile, snapshotFile, auditFile, socketPath, keys };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; anything else (arrays included) is replaced. */
export function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

export interface AuditLine {
  requestId: string;
  outcome: string;
  status: number | null;
  model: string | null;
  decision: { action: string; code: string | null };
  identity: {
    principal: string;
    keyId: string | null;
    methods: string[];
    jwt: { issuer: string; subject: string } | null;
    introspection: { issuer: string; subject: string } | null;
    mtls: { spiffeId: string | null; subject: string | null; certDigest: string } | null;
  } | null;
  usage: { promptTokens: number; completionTokens: number; source: string } | null;
  deployment: { cluster: string; model: string; labels: Record<string, string> } | null;
  [k: string]: unknown;
}

export function readAudit(file: string): AuditLine[] {
  if (!existsSync(file)) return [];
  // Request records only; checkpoint lines of the chain are skipped.
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditLine)
    .filter((r) => r['type'] === 'request');
}
