/**
 * The gateway config: one YAML file, environment overrides on top, validated
 * as a whole at start. Every default lives here, so an empty file is a
 * working single-node config (in-memory state, local files).
 */
import { z } from 'zod';
import { ENDPOINT_NAMES } from '../families/endpoints.ts';
import { parseMicros } from '../shared/decimal.ts';

const positiveInt = z.number({ error: 'must be a positive integer' }).int('must be a positive integer').positive('must be a positive integer');
const port = z.number({ error: 'must be a port number' }).int('must be a port number').min(0, 'must be a port number').max(65535, 'must be a port number');
const nonEmpty = z.string({ error: 'must be a non-empty string' }).min(1, 'must be a non-empty string');
/** Identifiers that end up in headers and metric labels: short and boring on purpose. */
/** An HTTP header name (RFC 9110 token). */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name');
const label = z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -');

const EndpointName = z.enum(ENDPOINT_NAMES);
/** Models / endpoints a credential allows; `*` = all. */
const modelAllowlist = z.array(nonEmpty).default(['*']);
const endpointAllowlist = z.array(z.union([EndpointName, z.literal('*')])).default(['*']);

/** Who a credential is and what it may use: the same for an API key and a mapped client certificate. */
const grantFields = {
  principal: label,
  org: label,
  tenant: label,
  tier: label.default('standard'),
  roles: z.array(label).default([]),
  /** Logical model ids this credential may use; `*` means every model in the snapshot. */
  models: modelAllowlist,
  /** Endpoints it may call (chat, completions, embeddings, models, model); `*` = all. */
  endpoints: endpointAllowlist,
};

export const ApiKeyEntrySchema = z.strictObject({
  /** The key's public id: the part of the key that may be logged. */
  id: z.string().regex(/^[A-Za-z0-9]{8}$/, 'must be the 8-character key id'),
  /** sha256 of the whole key, as `sha256:<64 hex>`; the key itself is never stored. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lower-case hex digits>'),
  ...grantFields,
  /** ISO 8601; the key is refused from then on. */
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
});

/** Asymmetric algorithms only: HS* with a public key is the classic confusion attack, `none` is no signature. */
const JwtAlgorithm = z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'], {
  error: 'must be an asymmetric JWS algorithm (RS*, PS*, ES*, EdDSA)',
});

/** A group or scope that grants roles (and optionally models) to the caller. Exactly one of group / scope. */
const ClaimGrantSchema = z
  .strictObject({
    group: nonEmpty.optional(),
    scope: nonEmpty.optional(),
    roles: z.array(label).default([]),
    /** Models this group or scope allows (added to the other matching grants'); absent = no change. */
    models: z.array(nonEmpty).optional(),
  })
  .refine((g) => (g.group === undefined) !== (g.scope === undefined), { message: 'must set exactly one of group and scope' });

/** Where each authorization field comes from in a JWT: a claim name (dot path for nested claims). */
const ClaimMapping = z.strictObject({
  principal: nonEmpty.default('sub'),
  org: nonEmpty.default('org'),
  tenant: nonEmpty.default('tenant'),
  tier: nonEmpty.default('tier'),
  roles: nonEmpty.default('roles'),
  /** Group names, matched against grants[].group. */
  groups: nonEmpty.default('groups'),
  /** Scopes (`scope` string, or `scp` string or array), matched against grants[].scope. */
  scopes: nonEmpty.default('scope'),
  models: nonEmpty.default('models'),
});

/** What an issuer's token grants when it lacks the claim (JWT and introspection issuers alike). */
const IssuerDefaults = z
  .strictObject({
    org: label.optional(),
    tenant: label.optional(),
    tier: label.default('standard'),
    models: z.array(nonEmpty).default(['*']),
    endpoints: endpointAllowlist,
  })
  .prefault({});

export const JwtIssuerSchema = z
  .strictObject({
    /** Exact `iss` value. */
    issuer: nonEmpty,
    /** Accepted `aud` values; the token must name at least one. */
    audiences: z.array(nonEmpty).min(1, 'must list at least one audience'),
    /** Remote JWKS (https, or http on loopback for tests). Exactly one of jwksUri / jwksFile. */
    jwksUri: z.url({ error: 'must be a URL' }).optional(),
    /** Local JWKS file (e.g. a mounted Secret). */
    jwksFile: nonEmpty.optional(),
    algorithms: z.array(JwtAlgorithm).min(1).default(['RS256', 'ES256']),
    /** Minimum time between two JWKS fetches (a flood of unknown `kid`s causes at most one per period). */
    jwksCooldownSeconds: positiveInt.default(30),
    /** A cached JWKS older than this is refetched before use. */
    jwksMaxAgeSeconds: positiveInt.default(600),
    jwksTimeoutMs: positiveInt.default(2000),
    claims: ClaimMapping.prefault({}),
    /** Roles (and models) granted by a group or scope the token has. */
    grants: z.array(ClaimGrantSchema).default([]),
    /** Used when a token lacks the claim. */
    defaults: IssuerDefaults,
  })
  .refine((i) => (i.jwksUri === undefined) !== (i.jwksFile === undefined), { message: 'must set exactly one of jwksUri and jwksFile' });

/** How the gateway authenticates itself to an introspection endpoint (RFC 7662 § 2.1 leaves it to OAuth client authentication). */
const IntrospectionClientSchema = z.discriminatedUnion('method', [
  z.strictObject({
    method: z.enum(['client_secret_basic', 'client_secret_post']),
    id: nonEmpty,
    /** A file holding the client secret (a mounted Secret); never the secret inline. */
    secretFile: nonEmpty,
  }),
  z.strictObject({
    method: z.literal('private_key_jwt'),
    id: nonEmpty,
    /** PKCS#8 PEM private key whose public half the IdP has registered for this client. */
    privateKeyFile: nonEmpty,
    algorithm: JwtAlgorithm.default('RS256'),
    keyId: nonEmpty.optional(),
  }),
  z.strictObject({
    method: z.literal('tls_client_auth'),
    id: nonEmpty,
    /** The client certificate and key presented to the IdP (RFC 8705 mutual TLS). */
    certFile: nonEmpty,
    keyFile: nonEmpty,
    /** CA bundle for the IdP's server certificate; the system CAs when unset. */
    caFile: nonEmpty.optional(),
  }),
]);

/** Where each authorization field comes from in an introspection answer: a member name, or a dot path (`realm_access.roles`). */
const IntrospectionClaimMapping = z.strictObject({
  /** Default: the subject (`sub`, else `client_id` for client-credentials tokens). */
  principal: nonEmpty.optional(),
  org: nonEmpty.default('org'),
  tenant: nonEmpty.default('tenant'),
  tier: nonEmpty.default('tier'),
  /** Roles taken as they are (array or space-separated string). */
  roles: nonEmpty.default('roles'),
  /** Group names, matched against grants[].group. */
  groups: nonEmpty.default('groups'),
  /** Scopes (`scope` as a space-separated string, or `scp` as a string or array), matched against grants[].scope. */
  scopes: nonEmpty.default('scope'),
  models: nonEmpty.default('models'),
});

export const IntrospectionIssuerSchema = z.strictObject({
  /** The issuer identifier; an answer's `iss`, when present, must equal it. */
  issuer: nonEmpty,
  /** The RFC 7662 endpoint (https, or http on loopback for tests). */
  introspectionUri: z.url({ error: 'must be a URL' }),
  /** Accepted `aud` values; an active answer must name at least one. */
  audiences: z.array(nonEmpty).min(1, 'must list at least one audience'),
  client: IntrospectionClientSchema,
  /** Accepted `token_type` values when the answer has one (compared case-insensitively). */
  tokenTypes: z.array(nonEmpty).min(1).default(['Bearer']),
  /**
   * RFC 9701: ask for signed answers (`application/token-introspection+jwt`) and verify them against this JWKS.
   * Unset: plain JSON over the (TLS-protected) connection.
   */
  signedResponse: z
    .strictObject({
      jwksUri: z.url({ error: 'must be a URL' }),
      algorithms: z.array(JwtAlgorithm).min(1).default(['RS256', 'ES256']),
    })
    .optional(),
  /**
   * Bound on one call. Below Envoy's ext_proc message_timeout (1s in envoy/gateway.yaml), so a slow IdP is our
   * 503 authentication_unavailable rather than Envoy's timeout.
   */
  timeoutMs: positiveInt.default(800),
  /** An accepted token is asked about again at most this often (revocation at the IdP reaches the gateway within it). */
  recheckSeconds: positiveInt.default(30),
  /** Upper bound on how long an active answer is cached (it never outlives the token's exp either). */
  cacheMaxSeconds: positiveInt.default(300),
  /** How long an inactive answer is remembered, so a replayed dead token does not reach the IdP each time. */
  negativeCacheSeconds: positiveInt.default(5),
  /** Consecutive IdP failures that open the circuit; while open, uncached tokens get 503 without a call. */
  breakerFailures: positiveInt.default(5),
  breakerOpenSeconds: positiveInt.default(10),
  claims: IntrospectionClaimMapping.prefault({}),
  grants: z.array(ClaimGrantSchema).default([]),
  defaults: IssuerDefaults,
});

/** A SPIFFE ID a certificate must carry (`spiffe://domain/path`), or a prefix ending in `/*`. */
export const SpiffeIdPattern = z.string().regex(/^spiffe:\/\/[^/]+(\/.*)?$/, 'must be a spiffe:// URI (a trailing /* matches a prefix)');

export const MtlsIdentitySchema = z
  .strictObject({
    /** Exact SPIFFE ID (`spiffe://domain/path`), or a prefix ending in `/*`. One of spiffeId / subject. */
    spiffeId: SpiffeIdPattern.optional(),
    /** Exact certificate subject as Envoy reports it (RFC 2253, e.g. `CN=batch,O=Acme`). */
    subject: nonEmpty.optional(),
    ...grantFields,
  })
  .refine((m) => (m.spiffeId === undefined) !== (m.subject === undefined), { message: 'must set exactly one of spiffeId and subject' });

const AuthMethodName = z.enum(['api_key', 'jwt', 'introspection', 'mtls']);

/** Which credentials a request must present, by tenant and/or endpoint; the first matching rule applies. */
export const AuthRequirementSchema = z.strictObject({
  tenant: label.optional(),
  endpoints: z.array(EndpointName).optional(),
  /** Every one of these methods must verify (e.g. [mtls, api_key]). */
  methods: z.array(AuthMethodName).min(1, 'must name at least one method'),
});

/**
 * A spend budget: a decimal amount of the plan's currency with at most 6 decimals, as a string ("25.50") or a YAML
 * number; read into micro units (at most 9 000 000 000 of the currency, so the counters stay exact integers).
 */
const Budget = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const micros = parseMicros(typeof v === 'number' ? String(v) : v);
  if (micros === null || micros <= 0n || micros > BigInt(Number.MAX_SAFE_INTEGER)) {
    ctx.addIssue({ code: 'custom', message: 'must be a positive decimal with at most 6 decimals, below 9000000000 (e.g. "25.50")' });
    return z.NEVER;
  }
  return Number(micros);
});

/** One limit rule of a plan: the counters it sets, for one scope. */
export const QuotaLimitSchema = z
  .strictObject({
    /** Who shares the counter: one API key/principal, a tenant, an org, a logical model (per org), or tenant × model. */
    scope: z.enum(['key', 'tenant', 'org', 'endpoint', 'tenant_endpoint']),
    /** Requests per second (token bucket) and the burst it allows (default: rps). */
    rps: positiveInt.optional(),
    burst: positiveInt.optional(),
    /** Requests per minute (sliding window). */
    rpm: positiveInt.optional(),
    /** Tokens per minute (prompt estimate + max_tokens reserved at admission, settled with the real usage). */
    tpm: positiveInt.optional(),
    /** Tokens per day, resetting at midnight in quotas.timeZone; exhausted → 429 insufficient_quota. */
    tpd: positiveInt.optional(),
    /** Requests in flight at once (a stream counts until it ends). */
    concurrency: positiveInt.optional(),
    /** Spend per calendar day in quotas.timeZone, in the plan's currency (docs/cost.md); exhausted → 429 budget_exceeded. */
    budgetDaily: Budget.optional(),
    /** Spend per calendar month in quotas.timeZone, in the plan's currency. */
    budgetMonthly: Budget.optional(),
  })
  .refine((l) => [l.rps, l.rpm, l.tpm, l.tpd, l.concurrency, l.budgetDaily, l.budgetMonthly].some((v) => v !== undefined), {
    message: 'must set at least one of rps, rpm, tpm, tpd, concurrency, budgetDaily, budgetMonthly',
  });

export const QuotaPlanSchema = z.strictObject({
  /** Identities whose tier has this name use this plan. */
  name: label,
  limits: z.array(QuotaLimitSchema).default([]),
  /** ISO 4217 currency of the plan's budgets: they count the cost of deployments priced in it. */
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code (e.g. USD)')
    .default('USD'),
  /** What happens while the quota store (Redis) is unavailable. */
  whenStoreDown: z.enum(['fail_closed', 'fail_open', 'local']).default('fail_closed'),
  /** With `local`: the share of each limit this replica enforces on its own (e.g. 1/replicas). */
  localShare: z.number().positive().max(1).default(1),
  /** Tokens reserved for the completion when a request sets no max_tokens. */
  defaultMaxTokens: positiveInt.default(1024),
  /**
   * When the plan limits tokens (tpm or tpd) and a request sets no
   * max_tokens, send `max_tokens: defaultMaxTokens` upstream: the model then
   * cannot generate more than was reserved, so the limits hold for long
   * generations and streams too. false: reserve defaultMaxTokens but let the
   * model decide (usage beyond the reservation is still charged afterwards).
   */
  capUnsetMaxTokens: z.boolean().default(true),
  /**
   * Graceful degradation before the hard limit: once any limit of the plan is
   * used beyond `threshold` (0-1), send requests to `fallbackModel` (a model id
   * in the routing snapshot, e.g. a cheaper deployment) and/or cap max_tokens.
   */
  soft: z
    .strictObject({
      threshold: z.number().gt(0).lt(1),
      fallbackModel: nonEmpty.optional(),
      maxTokens: positiveInt.optional(),
    })
    .refine((s) => s.fallbackModel !== undefined || s.maxTokens !== undefined, { message: 'must set fallbackModel and/or maxTokens' })
    .optional(),
});

const DataClassName = z.enum(['PII', 'PCI', 'PHI', 'SECRET']);
const PolicyAction = z.enum(['permit', 'redact', 'deny']);

/** A policy rule: when it matches, found data of `classes` gets `action`. The first matching rule per class wins. */
export const PolicyRuleSchema = z.strictObject({
  name: label,
  /** Every given filter must match; an absent filter matches everything. */
  match: z
    .strictObject({
      endpoints: z.array(EndpointName).optional(),
      models: z.array(nonEmpty).optional(),
      tenants: z.array(label).optional(),
      orgs: z.array(label).optional(),
      /** The identity has at least one of these roles. */
      roles: z.array(label).optional(),
    })
    .prefault({}),
  classes: z.array(DataClassName).min(1, 'must name at least one data class'),
  action: PolicyAction,
});

/** A trust attribute value as the snapshot writes it (lower case). */
const TrustValue = z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,62}$/, 'must be 1-63 characters of a-z 0-9 _ . : - (lower case)');

/** Per trust attribute, the values a destination rule accepts (require) or refuses (forbid). */
const TrustLabelValues = z
  .strictObject({
    region: z.array(TrustValue).min(1).optional(),
    residency: z.array(TrustValue).min(1).optional(),
    hosting: z
      .array(z.enum(['on-prem', 'private', 'hosted']))
      .min(1)
      .optional(),
    attestations: z.array(TrustValue).min(1).optional(),
    retention: z.array(TrustValue).min(1).optional(),
    provider: z.array(TrustValue).min(1).optional(),
  })
  .prefault({});

/**
 * A destination rule (docs/content-policy.md "Destination rules"): when it applies to a request, only deployments
 * whose trust attributes satisfy `require` and `forbid` may serve it.
 */
export const DestinationRuleSchema = z
  .strictObject({
    name: label,
    /** Every given filter must match; an absent filter matches everything. */
    match: z
      .strictObject({
        /** The rule applies when one of these classes is still in the request after redaction. */
        classes: z.array(DataClassName).min(1).optional(),
        endpoints: z.array(EndpointName).optional(),
        models: z.array(nonEmpty).optional(),
        /** Tenant names, or patterns where `*` stands for any characters (`eu-*`). */
        tenants: z.array(z.string().regex(/^[A-Za-z0-9._:*-]{1,64}$/, 'must be a tenant name or pattern (A-Z a-z 0-9 . _ : - and *)')).optional(),
        orgs: z.array(label).optional(),
        roles: z.array(label).optional(),
      })
      .prefault({}),
    require: TrustLabelValues,
    forbid: TrustLabelValues,
  })
  .refine((r) => Object.keys(r.require).length > 0 || Object.keys(r.forbid).length > 0, {
    message: 'must require or forbid at least one trust attribute',
  });

export const ConfigSchema = z
  .strictObject({
    server: z
      .strictObject({
        grpc: z
          .strictObject({
            /** Unix socket path for Envoy (preferred: no TCP on the hot path). Empty string disables. */
            socket: z.string().default('/tmp/inference-gateway/sidecar.sock'),
            /** Optional TCP listener (host:port) for ext_authz meshes or remote Envoys. */
            host: z.string().default('127.0.0.1'),
            port: port.nullable().default(null),
            /** Largest gRPC message accepted; must exceed Envoy's body buffer limit. */
            maxReceiveBytes: positiveInt.default(4 * 1024 * 1024),
          })
          .prefault({}),
        admin: z
          .strictObject({
            host: z.string().default('127.0.0.1'),
            port: port.default(9464),
          })
          .prefault({}),
        /** How long in-flight streams may run after SIGTERM before they are failed. */
        shutdownGraceMs: positiveInt.default(10_000),
      })
      .prefault({}),
    auth: z
      .strictObject({
        /** Keys written in this file (hashes only). */
        apiKeys: z.array(ApiKeyEntrySchema).default([]),
        /** YAML/JSON files holding a list of key entries (e.g. a mounted Kubernetes Secret); watched and reloaded. */
        apiKeyFiles: z.array(nonEmpty).default([]),
        /** Keys managed at runtime in Redis (`inference-gateway keys … --redis`); needs redis.url. */
        redisKeys: z.boolean().default(false),
        /** How long a Redis-backed key may be served from the local cache (revocations also arrive by pub/sub at once). */
        keyCacheSeconds: positiveInt.default(5),
        /** Unknown key ids remembered so a flood of made-up keys does not reach the store. */
        unknownKeyCache: z.strictObject({ maxEntries: positiveInt.default(10_000), ttlSeconds: positiveInt.default(30) }).prefault({}),
        jwt: z
          .strictObject({
            issuers: z.array(JwtIssuerSchema).default([]),
            clockSkewSeconds: z.number().int().min(0).max(300).default(30),
            /** Tokens longer than this are refused before any parsing. */
            maxTokenBytes: positiveInt.default(8192),
          })
          .prefault({}),
        introspection: z
          .strictObject({
            issuers: z.array(IntrospectionIssuerSchema).default([]),
            clockSkewSeconds: z.number().int().min(0).max(300).default(30),
            /** Opaque tokens longer than this are refused without a call. */
            maxTokenBytes: positiveInt.default(4096),
            /** Introspection answers cached (by SHA-256 of the token), across issuers. */
            cacheMaxEntries: positiveInt.default(10_000),
          })
          .prefault({}),
        /**
         * Token revocations pushed by operators (`inference-gateway tokens revoke`): a Redis set per kind plus a
         * pub/sub channel, so every replica stops accepting the token id or subject at once. Needs redis.url.
         */
        tokenRevocation: z.boolean().default(false),
        mtls: z
          .strictObject({
            /** SPIFFE trust domains accepted (e.g. `prod.example.org`); a URI SAN from any other is refused. */
            trustDomains: z.array(z.string().regex(/^[a-z0-9._-]+$/, 'must be a trust domain name')).default([]),
            identities: z.array(MtlsIdentitySchema).default([]),
          })
          .prefault({}),
        /** Default: any one verified method suffices. */
        require: z.array(AuthRequirementSchema).default([]),
      })
      .prefault({}),
    quotas: z
      .strictObject({
        /** IANA time zone whose midnight resets daily token caps. */
        timeZone: z
          .string()
          .refine((tz) => {
            try {
              new Intl.DateTimeFormat('en-US', { timeZone: tz });
              return true;
            } catch {
              return false;
            }
          }, 'must be an IANA time zone such as UTC or Europe/Berlin')
          .default('UTC'),
        plans: z.array(QuotaPlanSchema).default([]),
        /** Plan for identities whose tier names no plan; unset = such identities have no quotas. */
        defaultPlan: label.optional(),
        /**
         * The longest a concurrency lease is held: a live sidecar renews the leases of its requests in flight until
         * then (a request that never ends does not hold a slot for ever). Keep it above Envoy's route timeout.
         */
        leaseSeconds: positiveInt.default(180),
        /** A lease lives this long unless renewed: the slots of a sidecar that died are free again within it. */
        leaseTtlSeconds: positiveInt.default(15),
        /** How often a sidecar renews the leases it holds (keep well below leaseTtlSeconds: a renewal may be missed). */
        leaseRenewSeconds: positiveInt.default(5),
        /** The circuit breaker around the Redis quota store (see docs/reliability.md). */
        breaker: z
          .strictObject({
            /** Opens when this share of the calls in the window failed (the failures of one stall count once)… */
            failureRate: z.number().positive().max(1).default(0.5),
            /** …and at least this many calls completed in the window. */
            minimumCalls: positiveInt.default(20),
            windowMs: z.number().int().min(20).default(2000),
            /** How long the store is skipped once open (the plan's whenStoreDown applies), before probes. */
            openMs: positiveInt.default(1000),
            /** Calls let through at a time while probing; the others take the store-down path. */
            halfOpenProbes: positiveInt.default(3),
          })
          .prefault({}),
      })
      .refine((q) => q.leaseRenewSeconds < q.leaseTtlSeconds, { message: 'leaseRenewSeconds must be below leaseTtlSeconds', path: ['leaseRenewSeconds'] })
      .refine((q) => q.leaseTtlSeconds <= q.leaseSeconds, { message: 'leaseTtlSeconds must not exceed leaseSeconds', path: ['leaseTtlSeconds'] })
      .prefault({}),
    policy: z
      .strictObject({
        /** Shows in x-gateway-policy-version and every audit record. */
        version: label.default('builtin-1'),
        rules: z.array(PolicyRuleSchema).default([]),
        /** Action for data classes no rule covers. */
        defaultAction: PolicyAction.default('permit'),
        /** Where a request may go: every applicable rule must hold for the deployment that serves it. */
        destinations: z
          .array(DestinationRuleSchema)
          .default([])
          .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, 'rule names must be unique'),
        /**
         * A destination rule no deployment of a model it applies to can satisfy, or a new routing snapshot that
         * leaves a rule with no deployment it had before: `warn` (logged, counted) or `refuse` (config validate
         * fails; the snapshot is not accepted).
         */
        destinationCheck: z.enum(['warn', 'refuse']).default('warn'),
        /** Classify model responses as well, and redact what the policy says to redact. */
        responses: z.boolean().default(true),
        /**
         * What *redact* means when Envoy asks through ext_authz, which cannot
         * rewrite a body: `deny` (the request is refused, 403
         * data_policy_denied) or `permit` (it goes on unredacted, and its audit
         * record says so). Only an explicit choice lets unredacted data through.
         */
        extAuthzRedact: z.enum(['deny', 'permit']).default('deny'),
        /** Extra PHI terms (whole words, case-insensitive). */
        phiTerms: z.array(nonEmpty).default([]),
        /** Deployer-defined detectors: a safe regex `pattern` or a `terms` list, reported under `name`. */
        custom: z
          .array(
            z.strictObject({
              name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'must be snake_case'),
              dataClass: DataClassName,
              pattern: nonEmpty.optional(),
              terms: z.array(nonEmpty).optional(),
            }),
          )
          .default([]),
        /** Nesting depth limit for request JSON. */
        maxJsonDepth: positiveInt.default(32),
        /**
         * Bodies with more text than this (characters, all strings together)
         * are classified on a worker thread, so one large or adversarial prompt
         * never holds the event loop the other requests need.
         */
        inlineInspectChars: positiveInt.default(32_768),
        /** Worker threads for those large bodies (0: classify everything inline). */
        inspectWorkers: z.int().min(0).max(16).default(1),
        /**
         * Characters of generated text held back in SSE streams while responses may
         * need redaction (only then): a value split across chunks is caught whole
         * if it is shorter than this. Larger is safer, smaller streams sooner.
         */
        streamHoldBackChars: positiveInt.default(128),
      })
      .prefault({}),
    redis: z
      .strictObject({
        /** e.g. redis://127.0.0.1:6379/0; unset = no Redis (everything in memory). */
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
          .optional(),
        /**
         * Redis Cluster seed nodes (`host:port`) for the quota store. Every key of
         * one quota decision carries the org as its hash tag, so a decision is one
         * script on one slot. API keys in Redis (auth.redisKeys) use redis.url.
         */
        clusterNodes: z.array(z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port')).default([]),
        keyPrefix: z.string().default('igw:'),
        commandTimeoutMs: positiveInt.default(250),
      })
      .prefault({}),
    routing: z
      .strictObject({
        /** The routing snapshot file (see docs/configuration.md). */
        snapshotFile: nonEmpty.default('routing.yaml'),
        /**
         * Control-plane public keys (Ed25519 PEM files or directories). When set,
         * every snapshot — file or pushed — must be signed by one of them, and
         * snapshots can be pushed to the admin endpoint.
         */
        publicKeys: z.array(nonEmpty).default([]),
        /** Folder of upstream credentials (a mounted Secret): file name = the credential a snapshot target names. */
        credentialsDir: nonEmpty.optional(),
        /** Readiness fails while the snapshot in use was issued longer ago than this (needs issuedAt). */
        maxAgeSeconds: positiveInt.optional(),
        /**
         * Snapshots delivered over Redis (redis.url): the latest signed document
         * is read from `key` at start, on every reconnect and whenever `channel`
         * announces a new one (`inference-gateway snapshot publish`). Needs
         * publicKeys: Redis write access alone must not be able to redirect routing.
         */
        redis: z
          .strictObject({
            key: nonEmpty.default('igw:routing:snapshot'),
            channel: nonEmpty.default('igw:routing:snapshot:published'),
          })
          .optional(),
      })
      .refine((r) => r.redis === undefined || r.publicKeys.length > 0, {
        message: 'routing.redis needs routing.publicKeys: only signed snapshots are accepted over Redis',
        path: ['redis'],
      })
      .prefault({}),
    limits: z
      .strictObject({
        /** Request body limit enforced by the sidecar; keep it <= Envoy's buffer limit. */
        maxBodyBytes: positiveInt.default(2 * 1024 * 1024),
      })
      .prefault({}),
    audit: z
      .strictObject({
        /** Where records go: an append-only local file (default) or a Redis stream (redis.url). */
        sink: z.enum(['file', 'redis_stream']).default('file'),
        /** Append-only JSON Lines file, one record per request. */
        file: nonEmpty.default('audit.jsonl'),
        /** The file is rotated (renamed with a timestamp) when it reaches this size. */
        maxFileBytes: positiveInt.default(256 * 1024 * 1024),
        /**
         * What "committed" means before a request completes (docs/audit.md#durability):
         *   fsync      (file sink) write + fdatasync per group-committed batch: survives a machine crash or power loss;
         *   write      (file sink) write() to the kernel per batch: survives the process dying (SIGKILL, OOM kill),
         *              not a kernel crash or power loss (bounded by syncIntervalMs);
         *              (redis_stream) acknowledged by the primary alone;
         *   replicated (redis_stream) XADD then WAIT until `replicas` replicas have the batch, else fail closed.
         * Default: the strongest the sink offers — fsync for the file sink, replicated for redis_stream.
         */
        durability: z.enum(['fsync', 'write', 'replicated'], { error: 'must be fsync, write or replicated' }).optional(),
        /** Replaced by `durability` (fsync: true → durability: fsync, fsync: false → durability: write). */
        fsync: z
          .never({ error: 'was replaced by audit.durability: `fsync` (fdatasync per batch, what fsync: true did) or `write` (what fsync: false did)' })
          .optional(),
        /** durability write (file sink): fdatasync in the background this often, bounding what a machine crash loses; 0 = never. */
        syncIntervalMs: z
          .number({ error: 'must be a non-negative integer' })
          .int('must be a non-negative integer')
          .min(0, 'must be a non-negative integer')
          .default(1000),
        /** durability replicated: how many replicas must have each batch (WAIT numreplicas). */
        replicas: positiveInt.default(1),
        /** durability replicated: how long WAIT may wait for them before the batch fails and its requests fail closed. */
        replicaWaitMs: positiveInt.default(500),
        /** Redis stream name for sink: redis_stream. */
        stream: nonEmpty.default('igw:audit'),
        /** Ed25519 private key (PKCS#8 PEM) that signs checkpoints; created (0600) if missing. */
        signingKeyFile: nonEmpty.default('audit-signing-key.pem'),
        checkpointEvery: positiveInt.default(1000),
        checkpointSeconds: positiveInt.default(10),
      })
      .refine((a) => a.durability !== 'replicated' || a.sink === 'redis_stream', {
        message: 'replicated needs sink: redis_stream (XADD, then WAIT for audit.replicas replicas); the file sink offers fsync or write',
        path: ['durability'],
      })
      .refine((a) => a.durability !== 'fsync' || a.sink === 'file', {
        message:
          'fsync applies to the file sink; with sink: redis_stream use replicated (WAIT for audit.replicas replicas) or write (acknowledged by the primary alone)',
        path: ['durability'],
      })
      .transform(({ fsync: _removed, ...a }) => ({
        ...a,
        durability: a.durability ?? (a.sink === 'file' ? ('fsync' as const) : ('replicated' as const)),
      }))
      .prefault({}),
    logging: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
    /** OpenTelemetry spans, one per request, sent as OTLP/HTTP protobuf (docs/tracing.md). Off: the SDK is not even loaded. */
    tracing: z
      .strictObject({
        enabled: z.boolean({ error: 'must be true or false' }).default(false),
        /** The collector's OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces. Required when enabled. */
        endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:4318/v1/traces' }).optional(),
        /** Headers sent with every export (e.g. a collector's credential); values may also come from headersFile or the environment. */
        headers: z.record(headerName, z.string({ error: 'must be a string' })).default({}),
        /** A YAML/JSON file of more headers (name: value), e.g. a mounted Secret; read at start, wins over `headers`. */
        headersFile: nonEmpty.optional(),
        /** Share of new traces recorded (trace id ratio); a request under a client's trace follows the client's sampled flag. */
        sampleRatio: z
          .number({ error: 'must be a number from 0 to 1' })
          .min(0, 'must be a number from 0 to 1')
          .max(1, 'must be a number from 0 to 1')
          .default(1),
        serviceName: nonEmpty.default('inference-gateway'),
        /** Spans waiting for export; once full, new spans are dropped and counted (inference_gateway_trace_spans_dropped_total). */
        maxQueueSize: positiveInt.default(2048),
        /** How long a batch may wait before it is sent (a full batch of 512 goes at once). */
        scheduledDelayMs: positiveInt.default(1000),
        /** Bound on one export request, and on the flush at shutdown. */
        exportTimeoutMs: positiveInt.default(10000),
      })
      .refine((t) => !t.enabled || t.endpoint !== undefined, {
        message: 'tracing.enabled needs tracing.endpoint (the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces)',
        path: ['endpoint'],
      })
      .prefault({}),
  })
  .refine((c) => c.quotas.defaultPlan === undefined || c.quotas.plans.some((p) => p.name === c.quotas.defaultPlan), {
    message: 'must name one of quotas.plans',
    path: ['quotas', 'defaultPlan'],
    // With clusterNodes the quotas live on the cluster; redis.url then only makes sense for what needs a
    // single Redis (API keys, routing snapshot delivery, the audit stream), so a url nothing uses is a mistake.
  })
  .refine(
    (c) =>
      c.redis.url === undefined ||
      c.redis.clusterNodes.length === 0 ||
      c.auth.redisKeys ||
      c.auth.tokenRevocation ||
      c.routing.redis !== undefined ||
      c.audit.sink === 'redis_stream',
    {
      message:
        'redis.url is unused: with redis.clusterNodes the quotas use the cluster; keep redis.url only for auth.redisKeys, auth.tokenRevocation, routing.redis or the redis_stream audit sink',
      path: ['redis'],
    },
  )
  .refine((c) => c.audit.sink !== 'redis_stream' || c.redis.url !== undefined, {
    message: 'audit.sink redis_stream needs redis.url',
    path: ['audit', 'sink'],
  })
  .refine((c) => c.routing.redis === undefined || c.redis.url !== undefined, {
    message: 'routing.redis needs redis.url',
    path: ['routing', 'redis'],
  })
  .refine((c) => !c.auth.tokenRevocation || c.redis.url !== undefined, {
    message: 'auth.tokenRevocation needs redis.url',
    path: ['auth', 'tokenRevocation'],
  })
  .refine((c) => !c.auth.redisKeys || c.redis.url !== undefined, {
    message: 'auth.redisKeys needs redis.url',
    path: ['auth', 'redisKeys'],
  })
  .refine((c) => c.server.grpc.socket !== '' || c.server.grpc.port !== null, {
    message: 'must listen somewhere: set server.grpc.socket or server.grpc.port',
    path: ['server', 'grpc'],
  });

export type GatewayConfig = z.output<typeof ConfigSchema>;
export type ApiKeyEntry = z.output<typeof ApiKeyEntrySchema>;
export type JwtIssuerConfig = z.output<typeof JwtIssuerSchema>;
export type IntrospectionIssuerConfig = z.output<typeof IntrospectionIssuerSchema>;
export type MtlsIdentityConfig = z.output<typeof MtlsIdentitySchema>;
export type AuthConfig = GatewayConfig['auth'];
export type QuotaConfig = GatewayConfig['quotas'];
export type PolicyConfig = GatewayConfig['policy'];
export type QuotaPlan = z.output<typeof QuotaPlanSchema>;
export type QuotaLimitRule = z.output<typeof QuotaLimitSchema>;
export type TracingConfig = GatewayConfig['tracing'];
