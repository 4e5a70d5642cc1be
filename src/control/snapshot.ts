/**
 * Routing snapshots as the control plane delivers them: the document format,
 * its signature, parsing into the immutable Snapshot the requests use
 * (src/pipeline/snapshot.ts), and the holder that swaps them. Snapshots are
 * validated whole before use; a request holds one snapshot from its first
 * phase to its last.
 *
 * Failing over is Envoy's job (only Envoy sees connection failures, statuses
 * and host health): within a cluster by its priorities, and across
 * deployments — of other providers too — through a target's `fallback`, an
 * Envoy aggregate cluster whose every attempt the sidecar rewrites for its
 * member (src/pipeline/attempt.ts). The weighted split between targets is the
 * sidecar's choice because each deployment may expect a different model name
 * in the body, which the sidecar rewrites.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PROVIDERS, providerServes, ROUTED_ENDPOINT_NAMES } from '../families/endpoints.ts';
import { TRANSFORM_PARAM_NAMES, TRANSFORM_PARAMS, type TransformValue } from '../families/common/transform-params.ts';
import type { KeyObject } from 'node:crypto';
import { ConfigError, describeIssues } from '../config/errors.ts';
import { QuotaPlanSchema, type QuotaPlan } from '../config/schema.ts';
import { canonicalJson } from '../crypto/canonical.ts';
import { HOSTING_KINDS } from '../pipeline/destinations.ts';
import type { DestinationCheck } from './destinations-check.ts';
import { verifyText } from '../crypto/signing.ts';
import { parseMicros, type Price } from '../pipeline/cost.ts';
import type { Endpoint } from '../pipeline/endpoint.ts';
import { pricesOf, type Deployment, type ModelRoute, type RequestTransforms, type Snapshot, type TrustAttributes } from '../pipeline/snapshot.ts';

const RoutedEndpoint = z.enum(ROUTED_ENDPOINT_NAMES);

const LabelName = z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'must be a label name: a-z, then a-z 0-9 _ . - (max 63)');

const ClusterName = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be an Envoy cluster name');

/**
 * A price: a decimal with at most 6 decimals, written as a string ("2.5") or a YAML number (2.5). Numbers are read
 * through their shortest decimal form, so 0.1 is exactly 0.1; anything with more decimals is refused rather than rounded.
 */
const Amount = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const micros = parseMicros(typeof v === 'number' ? String(v) : v);
  if (micros === null) {
    ctx.addIssue({ code: 'custom', message: 'must be a non-negative decimal with at most 6 decimals (e.g. "2.5")' });
    return z.NEVER;
  }
  return micros;
});

/** What a deployment charges (docs/cost.md). */
const PriceFields = z.strictObject({
  /** ISO 4217 code: every amount of this price is in it. */
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code (e.g. USD)')
    .default('USD'),
  /** Per million prompt tokens. */
  inputPerMillion: Amount,
  /** Per million completion tokens. */
  outputPerMillion: Amount,
  /** Per million prompt tokens read from the provider's prompt cache; the input price when not set. */
  cachedInputPerMillion: Amount.optional(),
  /** A flat fee per request. */
  perRequest: Amount.optional(),
});

/** A trust attribute's value: lower-case, like a label value. */
const TrustValue = z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,62}$/, 'must be 1-63 characters of a-z 0-9 _ . : - (lower case)');

/** What a deployment can be trusted with (docs/configuration.md "Deployment trust"); the data policy routes on it. */
export const TrustSchema = z.strictObject({
  region: TrustValue.optional(),
  residency: TrustValue.optional(),
  hosting: z.enum(HOSTING_KINDS).optional(),
  attestations: z.array(TrustValue).max(16).default([]),
  retention: TrustValue.optional(),
  provider: TrustValue.optional(),
});

/** A deployment as every target names it. */
const DeploymentFields = {
  /** Names it in audit records and metrics (default: cluster/model); one id is one deployment across the snapshot. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9._:/@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : / @ -')
    .optional(),
  /** The Envoy cluster; Envoy must define it (routing uses the cluster header). */
  cluster: ClusterName,
  /** The model name the deployment expects in the body. */
  model: z.string().min(1).max(256),
  /** The API the deployment speaks; its credential is sent in that API's style. */
  provider: z.enum(PROVIDERS).default('openai'),
  /** A credential the sidecar injects for this deployment (a file of that name in routing.credentialsDir). */
  credential: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a credential file name')
    .optional(),
  /** What the deployment charges; requests to a deployment without a price have no cost. */
  price: PriceFields.optional(),
  /** Descriptive labels (tier, region, track…): reported in the audit record, never used for routing. */
  labels: z
    .record(LabelName, z.string().max(128))
    .refine((l) => Object.keys(l).length <= 16, 'must have at most 16 labels')
    .default({}),
  /** Its trust attributes; what is not stated satisfies no destination rule. */
  trust: TrustSchema.prefault({}),
  /**
   * The trust of its cluster's lower priorities (priority 1, 2, …) when they are other hosts than priority 0's:
   * Envoy fails over to them without asking the sidecar, so every destination rule must hold for each.
   */
  priorities: z.array(TrustSchema).max(32).default([]),
};

/**
 * Deployments Envoy retries a failed attempt on, in order, each possibly of
 * another provider: `cluster` is an Envoy aggregate cluster whose members are
 * the target's cluster and then each fallback's, in that order.
 */
const Fallback = z.strictObject({
  cluster: ClusterName,
  to: z.array(z.strictObject(DeploymentFields)).min(1, 'must list at least one fallback').max(7),
});

const Target = z.strictObject({
  ...DeploymentFields,
  /** Share of the model's requests (relative to the other targets' weights); 0 drains a target without removing it. */
  weight: z.int().min(0).max(1_000_000).default(1),
  fallback: Fallback.optional(),
});

/** One deployment (`target`) or a weighted split (`targets`); exactly one of the two. */
const Targets = {
  target: Target.optional(),
  targets: z.array(Target).min(1, 'must list at least one target').max(32).optional(),
};

type TargetsInput = { target?: z.output<typeof Target> | undefined; targets?: z.output<typeof Target>[] | undefined };

function checkTargets(t: TargetsInput, endpoints: readonly string[], ctx: z.RefinementCtx, at: (string | number)[]): void {
  if ((t.target === undefined) === (t.targets === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'must have exactly one of target or targets', path: at });
    return;
  }
  const list = t.targets ?? [];
  const each: Array<[z.output<typeof Target>, (string | number)[]]> =
    t.target !== undefined ? [[t.target, [...at, 'target']]] : list.map((x, i) => [x, [...at, 'targets', i]]);
  for (const [x, where] of each) {
    checkServes(x, endpoints, ctx, where);
    if (x.fallback !== undefined) checkFallback(x, x.fallback, endpoints, ctx, [...where, 'fallback']);
  }
  if (t.targets !== undefined && list.every((x) => x.weight === 0))
    ctx.addIssue({ code: 'custom', message: 'at least one target must have a weight above 0', path: [...at, 'targets'] });
  // One server may host several targets (two model versions on one vLLM), but the same pair twice is a mistake.
  const seen = new Set<string>();
  list.forEach((x, i) => {
    const key = JSON.stringify([x.cluster, x.model]);
    if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `cluster "${x.cluster}" with model "${x.model}" is listed twice`, path: [...at, 'targets', i] });
    seen.add(key);
  });
}

function checkServes(x: { provider: string }, endpoints: readonly string[], ctx: z.RefinementCtx, at: (string | number)[]): void {
  const unserved = endpoints.filter((e) => !providerServes(x.provider, e));
  if (unserved.length > 0)
    ctx.addIssue({ code: 'custom', message: `a "${x.provider}" deployment does not serve ${unserved.join(', ')}`, path: [...at, 'provider'] });
}

/** Every member serves the model's endpoints; one member per cluster (the attempt's member is told apart by its cluster). */
function checkFallback(
  primary: { cluster: string },
  fb: z.output<typeof Fallback>,
  endpoints: readonly string[],
  ctx: z.RefinementCtx,
  at: (string | number)[],
): void {
  const clusters = new Set([primary.cluster]);
  fb.to.forEach((x, i) => {
    checkServes(x, endpoints, ctx, [...at, 'to', i]);
    if (clusters.has(x.cluster))
      ctx.addIssue({ code: 'custom', message: `cluster "${x.cluster}" is already in this fallback chain`, path: [...at, 'to', i, 'cluster'] });
    clusters.add(x.cluster);
  });
  if (clusters.has(fb.cluster)) ctx.addIssue({ code: 'custom', message: 'must be the aggregate cluster, not one of its members', path: [...at, 'cluster'] });
}

/** Parameters by their name in the client's API, from the allowlist (src/families/common/transform-params.ts); each value checked. */
const TransformParams = z.strictObject(
  Object.fromEntries(TRANSFORM_PARAM_NAMES.map((p) => [p, TRANSFORM_PARAMS[p].value.optional()])) as {
    [P in keyof typeof TRANSFORM_PARAMS]: z.ZodOptional<(typeof TRANSFORM_PARAMS)[P]['value']>;
  },
);

/**
 * What the sidecar changes in every request for the model, in the client's API before anything reads the body
 * (docs/configuration.md "Request transforms"): defaults where the client sent nothing, forced values over the
 * client's, a system prompt prefix.
 */
export const TransformsSchema = z.strictObject({
  defaults: TransformParams.optional(),
  forced: TransformParams.optional(),
  systemPrefix: z.string().min(1).max(65_536).optional(),
});

type ModelInput = {
  endpoints: readonly string[];
  transforms?: z.output<typeof TransformsSchema> | undefined;
} & TargetsInput & { overrides: TargetsInput[] };

/** Every deployment that may answer a request for the model: targets, overrides, fallbacks. */
function providersOf(m: ModelInput): Set<string> {
  const out = new Set<string>();
  for (const t of [m, ...m.overrides])
    for (const x of t.targets ?? (t.target === undefined ? [] : [t.target])) {
      out.add(x.provider);
      for (const f of x.fallback?.to ?? []) out.add(f.provider);
    }
  return out;
}

/**
 * A transform that could not apply to any request, or that every request would be refused for, is refused here:
 * a parameter none of the model's endpoints takes, a default that is also forced, and a value an Anthropic body
 * cannot carry when the model serves `messages` or an OpenAI chat request may be translated to an Anthropic deployment.
 */
function checkTransforms(m: ModelInput, ctx: z.RefinementCtx, at: (string | number)[]): void {
  const t = m.transforms;
  if (t === undefined) return;
  const anthropicChat = m.endpoints.includes('chat') && providersOf(m).has('anthropic');
  for (const kind of ['defaults', 'forced'] as const) {
    for (const [name, value] of Object.entries(t[kind] ?? {}) as Array<[keyof typeof TRANSFORM_PARAMS, TransformValue | undefined]>) {
      if (value === undefined) continue;
      const where = [...at, 'transforms', kind, name];
      const spec = TRANSFORM_PARAMS[name];
      const applies = (spec.endpoints as readonly string[]).filter((e) => m.endpoints.includes(e));
      if (applies.length === 0) {
        ctx.addIssue({ code: 'custom', message: `applies to none of the model's endpoints (only to ${spec.endpoints.join(', ')})`, path: where });
        continue;
      }
      if (kind === 'defaults' && t.forced?.[name] !== undefined)
        ctx.addIssue({ code: 'custom', message: 'is also forced: the default would never apply', path: where });
      if (spec.anthropic(value)) continue;
      if (applies.includes('messages'))
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(value)} is not accepted by the Anthropic Messages API, which this model serves`,
          path: where,
        });
      else if (applies.includes('chat') && anthropicChat)
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(value)} cannot be sent to this model's Anthropic deployment (chat requests to it are translated)`,
          path: where,
        });
    }
  }
  if (t.systemPrefix !== undefined && !m.endpoints.some((e) => e === 'chat' || e === 'messages' || e === 'count_tokens'))
    ctx.addIssue({
      code: 'custom',
      message: "applies to none of the model's endpoints (only to chat, messages, count_tokens)",
      path: [...at, 'transforms', 'systemPrefix'],
    });
}

function toTransforms(t: z.output<typeof TransformsSchema> | undefined): RequestTransforms | null {
  if (t === undefined) return null;
  const params = (p: z.output<typeof TransformParams> | undefined): Readonly<Record<string, TransformValue>> =>
    Object.freeze(Object.fromEntries(Object.entries(p ?? {}).filter(([, v]) => v !== undefined)) as Record<string, TransformValue>);
  const out = { defaults: params(t.defaults), forced: params(t.forced), systemPrefix: t.systemPrefix ?? null };
  if (Object.keys(out.defaults).length === 0 && Object.keys(out.forced).length === 0 && out.systemPrefix === null) return null;
  return Object.freeze(out);
}

export const SnapshotSchema = z
  .strictObject({
    version: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -'),
    /** When the control plane issued it: an older snapshot never replaces a newer one (no rollback). */
    issuedAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
    /** Ed25519 signature over the canonical JSON of the document without this field. */
    signature: z
      .strictObject({ kid: z.string().regex(/^[0-9a-f]{16}$/, 'must be a 16-hex-digit key id'), sig: z.base64({ error: 'must be base64' }) })
      .optional(),
    models: z
      .array(
        z.strictObject({
          /** What clients put in `model`. */
          id: z.string().regex(/^[A-Za-z0-9._:/@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : / @ -'),
          endpoints: z.array(RoutedEndpoint).min(1, 'must name at least one endpoint'),
          ownedBy: z.string().max(64).default('inference-gateway'),
          /** The model name responses carry: the alias clients asked for, or the deployment's own. */
          responseModel: z.enum(['alias', 'upstream']).default('alias'),
          ...Targets,
          /** Per-tenant deployments: these tenants' requests for this model go to their own target(s). */
          overrides: z.array(z.strictObject({ tenants: z.array(z.string().min(1).max(64)).min(1), ...Targets })).default([]),
          /** Request transforms (a tenant's override has the model's). */
          transforms: TransformsSchema.optional(),
        }),
      )
      .min(1, 'must list at least one model'),
    /**
     * Quota plans (the sidecar config's `quotas.plans[]` form): the quota stage looks a tier up here first, then in
     * its own config, so the control plane can change a plan without a sidecar restart.
     */
    plans: z.array(QuotaPlanSchema).default([]),
  })
  .superRefine((s, ctx) => {
    const planNames = new Set<string>();
    s.plans.forEach((p, i) => {
      if (planNames.has(p.name)) ctx.addIssue({ code: 'custom', message: `duplicate plan name "${p.name}"`, path: ['plans', i, 'name'] });
      planNames.add(p.name);
    });
    const seen = new Set<string>();
    s.models.forEach((m, i) => {
      if (seen.has(m.id)) ctx.addIssue({ code: 'custom', message: `duplicate model id "${m.id}"`, path: ['models', i, 'id'] });
      seen.add(m.id);
      checkTargets(m, m.endpoints, ctx, ['models', i]);
      m.overrides.forEach((o, j) => checkTargets(o, m.endpoints, ctx, ['models', i, 'overrides', j]));
      checkTransforms(m, ctx, ['models', i]);
    });
    checkDeploymentIds(s.models, ctx);
  });

/**
 * A parsed snapshot as delivery keeps it: what requests route by, plus the quota plans it carries (by name). The
 * plans are the quota stage's, which reads them from the holder; the request pipeline never sees them.
 */
export interface RoutingSnapshot extends Snapshot {
  readonly plans: ReadonlyMap<string, QuotaPlan>;
}

type DeploymentInput = z.output<z.ZodObject<typeof DeploymentFields>>;

function deploymentId(d: DeploymentInput): string {
  return d.id ?? `${d.cluster}/${d.model}`;
}

/** One id, one deployment: the same id everywhere names the same cluster, model, provider and trust. */
function checkDeploymentIds(models: ReadonlyArray<ModelInput & { id: string }>, ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (const m of models)
    for (const t of [m, ...m.overrides])
      for (const x of t.targets ?? (t.target === undefined ? [] : [t.target]))
        for (const d of [x, ...(x.fallback?.to ?? [])]) {
          const id = deploymentId(d);
          const what = canonicalJson({ cluster: d.cluster, model: d.model, provider: d.provider, trust: d.trust, priorities: d.priorities });
          const before = seen.get(id);
          if (before !== undefined && before !== what)
            ctx.addIssue({ code: 'custom', message: `deployment id "${id}" names two different deployments in model "${m.id}"`, path: ['models'] });
          seen.set(id, what);
        }
}

export interface SnapshotTrust {
  /** Control-plane public keys by kid; when non-empty every snapshot must carry a valid signature by one of them. */
  readonly keys: ReadonlyMap<string, KeyObject>;
}

export const NO_TRUST: SnapshotTrust = { keys: new Map() };

/** The bytes a snapshot signature covers: canonical JSON of the document without `signature`. */
export function signedContent(doc: Record<string, unknown>): string {
  const { signature: _signature, ...rest } = doc;
  return canonicalJson(rest);
}

export function parseSnapshot(text: string, source: string, trust: SnapshotTrust = NO_TRUST, now = Date.now()): RoutingSnapshot {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(source, [`is not valid YAML: ${(err as Error).message}`]);
  }
  const parsed = SnapshotSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, describeIssues(parsed.error));
  let signedBy: string | null = null;
  if (trust.keys.size > 0) {
    const sig = parsed.data.signature;
    if (sig === undefined) throw new ConfigError(source, ['signature: is required (routing.publicKeys is set): unsigned snapshots are refused']);
    const key = trust.keys.get(sig.kid);
    if (key === undefined) throw new ConfigError(source, [`signature.kid: ${sig.kid} is not a trusted control-plane key`]);
    if (!verifyText(key, signedContent(raw as Record<string, unknown>), sig.sig))
      throw new ConfigError(source, ['signature: does not verify: the snapshot was altered or signed with another key']);
    signedBy = sig.kid;
  }
  const models = new Map<string, ModelRoute>();
  for (const m of parsed.data.models) {
    const endpoints = new Set<Endpoint>(m.endpoints);
    const transforms = toTransforms(m.transforms);
    const make = (t: TargetsInput, overrides: ReadonlyMap<string, ModelRoute>): ModelRoute => {
      const targets = (t.targets ?? (t.target === undefined ? [] : [t.target])).map(toDeployment);
      let sum = 0;
      const cumulativeWeights = targets.map((d) => (sum += d.weight));
      return Object.freeze({
        id: m.id,
        endpoints,
        ownedBy: m.ownedBy,
        responseModel: m.responseModel,
        targets: Object.freeze(targets),
        cumulativeWeights: Object.freeze(cumulativeWeights),
        prices: pricesOf(targets),
        overrides,
        transforms,
      });
    };
    const overrides = new Map<string, ModelRoute>();
    for (const o of m.overrides) for (const tenant of o.tenants) overrides.set(tenant, make(o, new Map()));
    models.set(m.id, make(m, overrides));
  }
  const issuedAt = parsed.data.issuedAt === undefined ? null : Date.parse(parsed.data.issuedAt);
  const plans = new Map(parsed.data.plans.map((p) => [p.name, Object.freeze(p)]));
  return Object.freeze({ version: parsed.data.version, loadedAt: now, issuedAt, signedBy, models, plans });
}

function toDeployment(t: z.output<typeof Target>): Deployment {
  const self = member(t, t.weight);
  if (t.fallback === undefined) return self;
  const chain = Object.freeze([self, ...t.fallback.to.map((x) => member(x, 0))]);
  return Object.freeze({ ...self, fallback: Object.freeze({ cluster: t.fallback.cluster, chain }) });
}

function member(t: DeploymentInput, weight: number): Deployment {
  const trust = toTrust(t.trust);
  return Object.freeze({
    id: deploymentId(t),
    cluster: t.cluster,
    upstreamModel: t.model,
    provider: t.provider,
    credential: t.credential ?? null,
    weight,
    labels: Object.freeze({ ...t.labels }),
    trust,
    priorities: Object.freeze([trust, ...t.priorities.map(toTrust)]),
    price: t.price === undefined ? null : toPrice(t.price),
    fallback: null,
  });
}

function toTrust(t: z.output<typeof TrustSchema>): TrustAttributes {
  return Object.freeze({
    region: t.region ?? null,
    residency: t.residency ?? null,
    hosting: t.hosting ?? null,
    attestations: Object.freeze([...t.attestations]),
    retention: t.retention ?? null,
    provider: t.provider ?? null,
  });
}

function toPrice(p: z.output<typeof PriceFields>): Price {
  return Object.freeze({
    currency: p.currency,
    inputMicrosPerMillion: p.inputPerMillion,
    cachedInputMicrosPerMillion: p.cachedInputPerMillion ?? p.inputPerMillion,
    outputMicrosPerMillion: p.outputPerMillion,
    perRequestMicros: p.perRequest ?? 0n,
  });
}

export function loadSnapshotFile(file: string, trust: SnapshotTrust = NO_TRUST): RoutingSnapshot {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot be read: ${(err as Error).message}`]);
  }
  return parseSnapshot(text, file, trust);
}

/** Whether `next` may replace `current`: never an older issue (a replayed old signed snapshot). */
export function replacementProblem(current: Snapshot, next: Snapshot): string | null {
  if (current.issuedAt !== null && (next.issuedAt === null || next.issuedAt < current.issuedAt)) {
    return `issuedAt ${next.issuedAt === null ? 'missing' : new Date(next.issuedAt).toISOString()} is older than the snapshot in use (${new Date(current.issuedAt).toISOString()})`;
  }
  return null;
}

/** Holds the current snapshot; swapping is a single reference assignment. */
export class SnapshotHolder {
  #current: RoutingSnapshot;
  /** The data policy's destination rules every replacement is reviewed against (src/control/destinations-check.ts). */
  readonly destinations: DestinationCheck | null;
  constructor(initial: RoutingSnapshot, destinations: DestinationCheck | null = null) {
    this.#current = initial;
    this.destinations = destinations;
  }
  current(): RoutingSnapshot {
    return this.#current;
  }
  replace(next: RoutingSnapshot): void {
    this.#current = next;
  }
}
