/**
 * The control plane's config (`inference-gateway control-plane --config FILE`):
 * one YAML file, validated whole at start; each error names its path.
 * Relative file paths are resolved against the config file's folder.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, describeIssues } from '../config/errors.ts';
import { JwtIssuerSchema, SpiffeIdPattern } from '../config/schema.ts';

const positiveInt = z.number({ error: 'must be a positive integer' }).int('must be a positive integer').positive('must be a positive integer');
const nonEmpty = z.string({ error: 'must be a non-empty string' }).min(1, 'must be a non-empty string');
const role = z.string().regex(/^[A-Za-z0-9._:/-]{1,128}$/, 'must be a role name');

export const ControlPlaneConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      host: nonEmpty.default('127.0.0.1'),
      /** 0 picks a free port (reported in the "control plane ready" line). */
      port: z.number().int().min(0).max(65535).default(9470),
      /**
       * HTTPS instead of HTTP (node:https). Client certificates are requested and verified against clientCaFile;
       * a verified one authenticates through auth.mtls. requireClientCertificate: the TLS handshake itself fails
       * without a certificate from that CA (then no JWT caller can connect without one either).
       */
      tls: z
        .strictObject({
          certFile: nonEmpty,
          keyFile: nonEmpty,
          clientCaFile: nonEmpty,
          requireClientCertificate: z.boolean().default(false),
        })
        .optional(),
    })
    .prefault({}),
  /** The desired state. Migrations run at start. */
  postgres: z.strictObject({
    url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    poolSize: positiveInt.default(5),
  }),
  /** Where sidecars read snapshots and keys (their redis.url, routing.redis and redis.keyPrefix). */
  redis: z.strictObject({
    url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
    keyPrefix: z.string().default('igw:'),
    commandTimeoutMs: positiveInt.default(2000),
  }),
  routing: z
    .strictObject({
      /** The key and channel sidecars follow (their routing.redis.key / .channel). */
      key: nonEmpty.default('igw:routing:snapshot'),
      channel: nonEmpty.default('igw:routing:snapshot:published'),
      /** Ed25519 key the snapshots are signed with; sidecars list its .pub in routing.publicKeys. */
      signingKeyFile: nonEmpty,
      ownedBy: z.string().max(64).default('inference-gateway'),
    })
    .prefault({ signingKeyFile: '' }),
  auth: z
    .strictObject({
      /** Trusted issuers of admin tokens (the sidecar's auth.jwt.issuers form). */
      jwt: z
        .strictObject({
          issuers: z.array(JwtIssuerSchema).min(1, 'must list at least one issuer'),
          clockSkewSeconds: z.number().int().min(0).default(30),
          maxTokenBytes: positiveInt.default(8192),
        })
        .optional(),
      /**
       * Admin callers with a client certificate (needs listen.tls): the verified certificate's SPIFFE URI SAN
       * (exact, or a `spiffe://…/*` prefix) or subject (RFC 2253, e.g. `CN=ops,O=Acme`) names the principal and its
       * roles, mapped as the sidecar maps them (src/stages/auth/mtls.ts). trustDomains defaults to the domains of the
       * listed spiffeIds.
       */
      mtls: z
        .strictObject({
          trustDomains: z.array(z.string().regex(/^[a-z0-9._-]+$/, 'must be a trust domain name')).optional(),
          identities: z
            .array(
              z
                .strictObject({
                  spiffeId: SpiffeIdPattern.optional(),
                  subject: nonEmpty.optional(),
                  principal: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -'),
                  roles: z.array(role).default([]),
                })
                .refine((m) => (m.spiffeId === undefined) !== (m.subject === undefined), { message: 'must set exactly one of spiffeId and subject' }),
            )
            .min(1, 'must map at least one certificate'),
        })
        .optional(),
      /** A token or certificate with either role (or scope) may read; write implies read. */
      readRole: role.default('igw:admin:read'),
      writeRole: role.default('igw:admin:write'),
    })
    .prefault({}),
  audit: z.strictObject({
    /** The admin audit log (JSON Lines, hash-chained, signed checkpoints): `inference-gateway audit verify`. */
    file: nonEmpty,
    /** Ed25519 key for the checkpoints; created on first use. */
    signingKeyFile: nonEmpty,
    checkpointEvery: positiveInt.default(100),
    checkpointSeconds: positiveInt.default(10),
  }),
  /**
   * The xDS server (ADS: CDS + EDS) Envoy takes its upstream clusters from (src/control-plane/xds, docs/xds.md):
   * every deployment's backend reaches Envoy without a restart. Unset: no xDS (Envoy's clusters are static).
   */
  xds: z
    .strictObject({
      host: nonEmpty.default('127.0.0.1'),
      /** 0 picks a free port (reported in the "control plane ready" line). */
      port: z.number().int().min(0).max(65535).default(18000),
      /**
       * Clusters Envoy already has in its static config (e.g. the local stack's demo-upstream): deployments on them route
       * as usual, but they are not served over xDS (Envoy refuses a dynamic cluster named like a static one).
       */
      staticClusters: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be an Envoy cluster name')).default([]),
      /** The sidecar's cluster in Envoy's config: a fallback chain's aggregate cluster sends each attempt's ext_proc there. */
      sidecarCluster: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be an Envoy cluster name')
        .default('inference-gateway-sidecar'),
      /**
       * ADS over mutual TLS: Envoy must present a certificate that chains to clientCaFile (else the handshake fails)
       * and whose SPIFFE ID (its one URI SAN: exact, or a `spiffe://…/*` prefix) or subject (RFC 2253) is listed in
       * allowedClients (else its stream is refused with PERMISSION_DENIED). Unset: plaintext, any client.
       */
      tls: z
        .strictObject({
          certFile: nonEmpty,
          keyFile: nonEmpty,
          clientCaFile: nonEmpty,
          allowedClients: z
            .array(
              z
                .strictObject({ spiffeId: SpiffeIdPattern.optional(), subject: nonEmpty.optional() })
                .refine((m) => (m.spiffeId === undefined) !== (m.subject === undefined), { message: 'must set exactly one of spiffeId and subject' }),
            )
            .min(1, 'must list at least one client'),
        })
        .optional(),
    })
    .optional(),
  logging: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') }).prefault({}),
});

export type ControlPlaneConfig = z.output<typeof ControlPlaneConfigSchema>;

export function parseControlPlaneConfig(raw: unknown, source: string, base: string): ControlPlaneConfig {
  const parsed = ControlPlaneConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(source, describeIssues(parsed.error));
  const c = parsed.data;
  if (c.routing.signingKeyFile === '') throw new ConfigError(source, ['routing.signingKeyFile: is required (the Ed25519 key snapshots are signed with)']);
  if (c.auth.jwt === undefined && c.auth.mtls === undefined) {
    throw new ConfigError(source, ['auth: set auth.jwt, auth.mtls or both: admin callers authenticate with a JWT or a client certificate']);
  }
  if (c.auth.mtls !== undefined && c.listen.tls === undefined) {
    throw new ConfigError(source, ['auth.mtls: needs listen.tls (client certificates are only seen over HTTPS)']);
  }
  const tls = c.listen.tls;
  return {
    ...c,
    listen: {
      ...c.listen,
      ...(tls === undefined
        ? {}
        : { tls: { ...tls, certFile: resolve(base, tls.certFile), keyFile: resolve(base, tls.keyFile), clientCaFile: resolve(base, tls.clientCaFile) } }),
    },
    ...(c.xds === undefined
      ? {}
      : {
          xds: {
            ...c.xds,
            ...(c.xds.tls === undefined
              ? {}
              : {
                  tls: {
                    ...c.xds.tls,
                    certFile: resolve(base, c.xds.tls.certFile),
                    keyFile: resolve(base, c.xds.tls.keyFile),
                    clientCaFile: resolve(base, c.xds.tls.clientCaFile),
                  },
                }),
          },
        }),
    routing: { ...c.routing, signingKeyFile: resolve(base, c.routing.signingKeyFile) },
    audit: { ...c.audit, file: resolve(base, c.audit.file), signingKeyFile: resolve(base, c.audit.signingKeyFile) },
    auth: {
      ...c.auth,
      ...(c.auth.jwt === undefined
        ? {}
        : {
            jwt: {
              ...c.auth.jwt,
              issuers: c.auth.jwt.issuers.map((i) => (i.jwksFile === undefined ? i : { ...i, jwksFile: resolve(base, i.jwksFile) })),
            },
          }),
    },
  };
}

export function loadControlPlaneConfig(file: string): ControlPlaneConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, [`cannot be read: ${(err as Error).message}`]);
  }
  return parseControlPlaneConfig(raw, file, dirname(resolve(file)));
}
