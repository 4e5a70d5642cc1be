/**
 * Routing snapshots: an immutable, versioned map from the logical model ids
 * clients use to the deployment that serves them (an Envoy cluster and the
 * model name that server expects). Snapshots are validated whole before use;
 * a request holds one snapshot from its first phase to its last.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, describeIssues } from '../../config/errors.ts';
import type { Endpoint } from '../../openai/endpoints.ts';

const RoutedEndpoint = z.enum(['chat', 'completions', 'embeddings']);

const SnapshotSchema = z.strictObject({
  version: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -'),
  models: z.array(z.strictObject({
    /** What clients put in `model`. */
    id: z.string().regex(/^[A-Za-z0-9._:/@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : / @ -'),
    endpoints: z.array(RoutedEndpoint).min(1, 'must name at least one endpoint'),
    ownedBy: z.string().max(64).default('inference-gateway'),
    target: z.strictObject({
      /** The Envoy cluster; Envoy must define it (routing uses the cluster header). */
      cluster: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be an Envoy cluster name'),
      /** The model name the deployment expects in the body. */
      model: z.string().min(1).max(256),
    }),
  })).min(1, 'must list at least one model'),
}).superRefine((s, ctx) => {
  const seen = new Set<string>();
  s.models.forEach((m, i) => {
    if (seen.has(m.id)) ctx.addIssue({ code: 'custom', message: `duplicate model id "${m.id}"`, path: ['models', i, 'id'] });
    seen.add(m.id);
  });
});

export interface ModelRoute {
  readonly id: string;
  readonly endpoints: ReadonlySet<Endpoint>;
  readonly ownedBy: string;
  readonly cluster: string;
  readonly upstreamModel: string;
}

export interface Snapshot {
  readonly version: string;
  readonly loadedAt: number;
  readonly models: ReadonlyMap<string, ModelRoute>;
}

export function parseSnapshot(text: string, source: string, now = Date.now()): Snapshot {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(source, [`is not valid YAML: ${(err as Error).message}`]);
  }
  const parsed = SnapshotSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, describeIssues(parsed.error));
  const models = new Map<string, ModelRoute>();
  for (const m of parsed.data.models) {
    models.set(m.id, Object.freeze({
      id: m.id,
      endpoints: new Set<Endpoint>(m.endpoints),
      ownedBy: m.ownedBy,
      cluster: m.target.cluster,
      upstreamModel: m.target.model,
    }));
  }
  return Object.freeze({ version: parsed.data.version, loadedAt: now, models });
}

export function loadSnapshotFile(file: string): Snapshot {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot be read: ${(err as Error).message}`]);
  }
  return parseSnapshot(text, file);
}

/** Holds the current snapshot; swapping is a single reference assignment. */
export class SnapshotHolder {
  #current: Snapshot;
  constructor(initial: Snapshot) {
    this.#current = initial;
  }
  current(): Snapshot {
    return this.#current;
  }
  replace(next: Snapshot): void {
    this.#current = next;
  }
}
