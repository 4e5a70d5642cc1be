/**
 * What an operator writes through the admin API, per kind: the zod schema of
 * a resource's body (validated on every create, replace and patch; errors
 * name the field) and the table it lives in. Bodies are kept as written
 * (jsonb `spec`); the columns a relation needs (a deployment's model, a
 * tenant's plan, a key's tenant) are also real columns with foreign keys.
 */
import { z } from 'zod';
import { ApiKeyEntrySchema, QuotaPlanSchema } from '../config/schema.ts';
import { PROVIDERS, ROUTED_ENDPOINT_NAMES } from '../families/endpoints.ts';
import { TransformsSchema, TrustSchema } from '../control/snapshot.ts';
import { parseHostPort } from '../shared/hosts.ts';

const id = z.string().regex(/^[A-Za-z0-9._:/@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ : / @ -');
const name = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -');
const amount = z.string().regex(/^\d{1,12}(\.\d{1,6})?$/, 'must be a decimal string with at most 6 decimals (e.g. "2.5")');

export const ModelSchema = z.strictObject({
  id,
  /** The endpoints that serve it (chat, completions, embeddings, messages, count_tokens). */
  endpoints: z.array(z.enum(ROUTED_ENDPOINT_NAMES)).min(1, 'must name at least one endpoint'),
  responseModel: z.enum(['alias', 'upstream']).default('alias'),
  ownedBy: z.string().max(64).optional(),
  /** Request transforms the sidecars apply (the snapshot's form: docs/configuration.md "Request transforms"). */
  transforms: TransformsSchema.optional(),
});

export const HealthCheckSchema = z.strictObject({
  path: z.string().regex(/^\/[\x21-\x7e]{0,255}$/, 'must be an HTTP path starting with /'),
  intervalMs: z.int().min(100).max(3_600_000).default(5000),
  timeoutMs: z.int().min(10).max(60_000).default(1000),
  unhealthyThreshold: z.int().min(1).max(100).default(3),
  healthyThreshold: z.int().min(1).max(100).default(2),
});

export const DeploymentSchema = z.strictObject({
  id: name,
  /** The logical model it serves. */
  model: id,
  /** The Envoy cluster; deployments that share one are its endpoints. */
  cluster: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be an Envoy cluster name'),
  provider: z.enum(PROVIDERS).default('openai'),
  /** The model name the deployment expects in the body. */
  upstreamModel: z.string().min(1).max(256),
  /** Where the model server listens: an IP address (an EDS endpoint; IPv6 in brackets) or a DNS name Envoy resolves (a STRICT_DNS cluster). */
  address: z
    .string()
    .refine((a) => parseHostPort(a) !== null, 'must be host:port: an IPv4 address, an IPv6 address in brackets or a DNS name, and a port from 1 to 65535'),
  weight: z.int().min(0).max(1_000_000).default(1),
  /** Envoy priority of this endpoint in its cluster: 0 is tried first, higher ones are fallbacks. */
  priority: z.int().min(0).max(7).default(0),
  /** A credential by reference: a file name in the sidecars' routing.credentialsDir, never the secret. */
  credential: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a credential file name')
    .optional(),
  price: z
    .strictObject({
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code')
        .default('USD'),
      inputPerMillion: amount,
      outputPerMillion: amount,
      cachedInputPerMillion: amount.optional(),
      perRequest: amount.optional(),
    })
    .optional(),
  labels: z
    .record(z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'must be a label name'), z.string().max(128))
    .refine((l) => Object.keys(l).length <= 16, 'must have at most 16 labels')
    .default({}),
  healthCheck: HealthCheckSchema.optional(),
  /**
   * Deployments (ids) Envoy retries this one's failed attempts on, in order, each on its own cluster and possibly of
   * another provider: an aggregate cluster over xDS, each attempt rewritten for its deployment by the sidecar.
   */
  fallback: z.array(name).min(1, 'must name at least one deployment').max(7).optional(),
  /**
   * What it can be trusted with (the snapshot's form, docs/configuration.md "Deployment trust"); the data policy's
   * destination rules route on it. Unset: nothing stated, which satisfies no rule.
   */
  trust: TrustSchema.optional(),
});

/** A quota plan, exactly the sidecar config's `quotas.plans[]` form; its name is its id. */
export const PlanSchema = QuotaPlanSchema;

export const TenantSchema = z.strictObject({
  id: name,
  org: name,
  /** A plan's name: the tier of the tenant's keys that set none of their own (sidecars pick the plan by the tier). */
  plan: name.optional(),
  labels: z.record(z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'must be a label name'), z.string().max(128)).default({}),
});

const grants = ApiKeyEntrySchema.pick({ principal: true, org: true, tenant: true, tier: true, roles: true, models: true, endpoints: true, expiresAt: true });

const tier = grants.shape.tier.unwrap();

/**
 * What a new key may do; the key itself is generated. Without a `tier` the key's tier is its tenant's plan (followed
 * when the tenant changes plan), or `standard` when the tenant has none.
 */
export const KeyCreateSchema = grants.extend({ tier: tier.optional() });

/** What may change on a key (JSON merge patch; expiresAt null removes the expiry, tier null makes it follow the tenant's plan). */
export const KeyPatchSchema = z.strictObject({
  tier: tier.nullable().optional(),
  roles: grants.shape.roles.unwrap().optional(),
  models: grants.shape.models.unwrap().optional(),
  endpoints: grants.shape.endpoints.unwrap().optional(),
  expiresAt: grants.shape.expiresAt.unwrap().nullable().optional(),
});

export const KeyRotateSchema = z.strictObject({
  /** How long the old key keeps working (ms), default 24 h. */
  graceMs: z
    .int()
    .min(0)
    .max(90 * 86_400_000)
    .default(86_400_000),
  expiresAt: grants.shape.expiresAt,
});

export type Kind = 'models' | 'deployments' | 'tenants' | 'plans';

export interface KindInfo {
  readonly kind: Kind;
  /** Singular, for messages. */
  readonly noun: string;
  readonly schema: z.ZodType;
  /** The body field that is the resource's id. */
  readonly idField: string;
  /** A column kept beside the spec for a foreign key: [column, body field]. */
  readonly ref?: readonly [string, string];
}

export const KINDS: Readonly<Record<Kind, KindInfo>> = {
  models: { kind: 'models', noun: 'model', schema: ModelSchema, idField: 'id' },
  deployments: { kind: 'deployments', noun: 'deployment', schema: DeploymentSchema, idField: 'id', ref: ['model_id', 'model'] },
  plans: { kind: 'plans', noun: 'plan', schema: PlanSchema, idField: 'name' },
  tenants: { kind: 'tenants', noun: 'tenant', schema: TenantSchema, idField: 'id', ref: ['plan', 'plan'] },
};

export type ModelSpec = z.output<typeof ModelSchema>;
export type DeploymentSpec = z.output<typeof DeploymentSchema>;
export type TenantSpec = z.output<typeof TenantSchema>;
