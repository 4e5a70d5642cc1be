/**
 * The gateway config: one YAML file, environment overrides on top, validated
 * as a whole at start. Every default lives here, so an empty file is a
 * working single-node config (in-memory state, local files).
 */
import { z } from 'zod';

const positiveInt = z.number({ error: 'must be a positive integer' }).int('must be a positive integer').positive('must be a positive integer');
const port = z.number({ error: 'must be a port number' }).int('must be a port number').min(0, 'must be a port number').max(65535, 'must be a port number');
const nonEmpty = z.string({ error: 'must be a non-empty string' }).min(1, 'must be a non-empty string');
/** Identifiers that end up in headers and metric labels: short and boring on purpose. */
const label = z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -');

export const ApiKeyEntrySchema = z.strictObject({
  /** The key's public id: the part of the key that may be logged. */
  id: z.string().regex(/^[A-Za-z0-9]{8}$/, 'must be the 8-character key id'),
  /** sha256 of the whole key, as `sha256:<64 hex>`; the key itself is never stored. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lower-case hex digits>'),
  principal: label,
  org: label,
  tenant: label,
  tier: label.default('standard'),
  roles: z.array(label).default([]),
  /** Logical model ids this key may use; `*` means every model in the snapshot. */
  models: z.array(nonEmpty).default(['*']),
  /** ISO 8601; the key is refused from then on. */
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
});

export const ConfigSchema = z.strictObject({
  server: z.strictObject({
    grpc: z.strictObject({
      /** Unix socket path for Envoy (preferred: no TCP on the hot path). Empty string disables. */
      socket: z.string().default('/tmp/inference-gateway/sidecar.sock'),
      /** Optional TCP listener (host:port) for ext_authz meshes or remote Envoys. */
      host: z.string().default('127.0.0.1'),
      port: port.nullable().default(null),
      /** Largest gRPC message accepted; must exceed Envoy's body buffer limit. */
      maxReceiveBytes: positiveInt.default(4 * 1024 * 1024),
    }).prefault({}),
    admin: z.strictObject({
      host: z.string().default('127.0.0.1'),
      port: port.default(9464),
    }).prefault({}),
    /** How long in-flight streams may run after SIGTERM before they are failed. */
    shutdownGraceMs: positiveInt.default(10_000),
  }).prefault({}),
  auth: z.strictObject({
    apiKeys: z.array(ApiKeyEntrySchema).default([]),
  }).prefault({}),
  routing: z.strictObject({
    /** The routing snapshot file (see docs/configuration.md). */
    snapshotFile: nonEmpty.default('routing.yaml'),
  }).prefault({}),
  limits: z.strictObject({
    /** Request body limit enforced by the sidecar; keep it <= Envoy's buffer limit. */
    maxBodyBytes: positiveInt.default(2 * 1024 * 1024),
  }).prefault({}),
  audit: z.strictObject({
    /** Append-only JSON Lines file, one record per request. */
    file: nonEmpty.default('audit.jsonl'),
  }).prefault({}),
  logging: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
}).refine((c) => c.server.grpc.socket !== '' || c.server.grpc.port !== null, {
  message: 'must listen somewhere: set server.grpc.socket or server.grpc.port',
  path: ['server', 'grpc'],
});

export type GatewayConfig = z.output<typeof ConfigSchema>;
export type ApiKeyEntry = z.output<typeof ApiKeyEntrySchema>;
