/**
 * Loads the gateway config: YAML file → environment overrides → schema.
 * Relative file paths in the config are resolved against the config file's
 * folder, so a config and its snapshot can travel together.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type GatewayConfig, type IntrospectionIssuerConfig } from './schema.ts';
import { ConfigError, describeIssues } from './errors.ts';

/** `INFERENCE_GATEWAY_SERVER__ADMIN__PORT=9500` sets server.admin.port. */
export const ENV_PREFIX = 'INFERENCE_GATEWAY_';

export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const source = file ?? '(embedded defaults)';
  let raw: unknown = {};
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(source, [`cannot be read: ${(err as Error).message}`]);
    }
    try {
      raw = parseYaml(text, { maxAliasCount: 100 }) ?? {};
    } catch (err) {
      throw new ConfigError(source, [`is not valid YAML: ${(err as Error).message}`]);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, ['(root): must be a mapping']);
  }
  const withEnv = applyEnvOverrides(raw as Record<string, unknown>, env);
  const parsed = ConfigSchema.safeParse(withEnv);
  if (!parsed.success) throw new ConfigError(source, describeIssues(parsed.error));
  const base = file === null ? process.cwd() : dirname(resolve(file));
  return resolvePaths(parsed.data, base);
}

/** The files an introspection client reads, relative to the config file. */
function clientPaths(c: IntrospectionIssuerConfig['client'], base: string): IntrospectionIssuerConfig['client'] {
  switch (c.method) {
    case 'client_secret_basic':
    case 'client_secret_post':
      return { ...c, secretFile: resolve(base, c.secretFile) };
    case 'private_key_jwt':
      return { ...c, privateKeyFile: resolve(base, c.privateKeyFile) };
    case 'tls_client_auth':
      return {
        ...c,
        certFile: resolve(base, c.certFile),
        keyFile: resolve(base, c.keyFile),
        ...(c.caFile === undefined ? {} : { caFile: resolve(base, c.caFile) }),
      };
  }
}

function resolvePaths(config: GatewayConfig, base: string): GatewayConfig {
  const grpc = config.server.grpc;
  return {
    ...config,
    server: { ...config.server, grpc: { ...grpc, socket: grpc.socket === '' ? '' : resolve(base, grpc.socket) } },
    routing: {
      ...config.routing,
      snapshotFile: resolve(base, config.routing.snapshotFile),
      publicKeys: config.routing.publicKeys.map((f) => resolve(base, f)),
      ...(config.routing.credentialsDir === undefined ? {} : { credentialsDir: resolve(base, config.routing.credentialsDir) }),
    },
    auth: {
      ...config.auth,
      apiKeyFiles: config.auth.apiKeyFiles.map((f) => resolve(base, f)),
      jwt: { ...config.auth.jwt, issuers: config.auth.jwt.issuers.map((i) => (i.jwksFile === undefined ? i : { ...i, jwksFile: resolve(base, i.jwksFile) })) },
      introspection: { ...config.auth.introspection, issuers: config.auth.introspection.issuers.map((i) => ({ ...i, client: clientPaths(i.client, base) })) },
    },
    audit: { ...config.audit, file: resolve(base, config.audit.file), signingKeyFile: resolve(base, config.audit.signingKeyFile) },
    tracing: config.tracing.headersFile === undefined ? config.tracing : { ...config.tracing, headersFile: resolve(base, config.tracing.headersFile) },
  };
}

function snakeToCamel(s: string): string {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(snakeToCamel);
    let node: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = Object.hasOwn(node, key) ? node[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        const fresh: Record<string, unknown> = {};
        node[key] = fresh;
        node = fresh;
      } else {
        node = next as Record<string, unknown>;
      }
    }
    const leaf = path.at(-1);
    // Scalars parse as YAML so ports become numbers and `true` a boolean.
    if (leaf !== undefined && leaf !== '') node[leaf] = parseYaml(value) as unknown;
  }
  return out;
}
