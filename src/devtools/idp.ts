/**
 * A local OAuth authorization server for development and the tests: the
 * OpenID Certified `oidc-provider` (not a hand-written fake), configured to
 * issue opaque access tokens to demo clients (client credentials grant) for
 * the resource `urn:inference-gateway`, and to answer RFC 7662
 * introspection — as plain JSON, or signed (RFC 9701) for the resource
 * server client that asks for it. The gateway is that resource server.
 *
 *   node src/devtools/idp.ts            # prints the issuer, the secrets file and a token command
 *
 * Caller clients carry their directory data (org, tenant, groups, Keycloak-
 * style `realm_access.roles`) as extra token claims, which introspection
 * returns. oidc-provider is a devDependency: nothing in the sidecar imports
 * this module.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type ClientMetadata } from 'oidc-provider';

export const GATEWAY_RESOURCE = 'urn:inference-gateway';
/** A second API the same IdP protects: its tokens are not for the gateway (wrong audience). */
export const OTHER_RESOURCE = 'urn:other-api';
const SCOPES = ['inference', 'inference:admin'];

/** A client that asks for tokens, with the directory data its tokens carry. */
export interface DemoCaller {
  readonly id: string;
  readonly secret: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** Lifetime of its access tokens (default 300 s). */
  readonly ttlSeconds?: number;
}

export const DEMO_CALLERS: readonly DemoCaller[] = [
  {
    id: 'research-app',
    secret: 'research-app-secret',
    claims: { org: 'acme', tenant: 'research', groups: ['ml-engineers'], realm_access: { roles: ['analyst'] } },
  },
  { id: 'support-app', secret: 'support-app-secret', claims: { org: 'acme', tenant: 'support', groups: ['support-agents'] } },
  { id: 'short-lived-app', secret: 'short-lived-app-secret', claims: { org: 'acme', tenant: 'research', groups: [] }, ttlSeconds: 2 },
];

export interface ResourceServerClient {
  readonly id: string;
  readonly auth: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** For the secret methods. */
  readonly secret?: string;
  /** For private_key_jwt: the public key the gateway signs its assertions with. */
  readonly publicJwk?: JWK;
  /** RFC 9701: introspection answers to this client are signed JWTs. */
  readonly signedIntrospection?: boolean;
}

export const DEMO_RESOURCE_SERVER: ResourceServerClient = { id: 'inference-gateway', auth: 'client_secret_basic', secret: 'inference-gateway-secret' };

export interface IdpOptions {
  /** Default 0: any free port on 127.0.0.1. */
  readonly port?: number;
  readonly callers?: readonly DemoCaller[];
  readonly resourceServers?: readonly ResourceServerClient[];
}

export interface DemoIdp {
  readonly issuer: string;
  readonly port: number;
  readonly tokenUrl: string;
  readonly introspectionUrl: string;
  readonly jwksUrl: string;
  /** Introspection requests received so far (counted at the IdP, whatever their outcome). */
  introspectionCalls(): number;
  /** An access token for `caller` (client credentials grant) for `resource`. */
  token(caller: string, opts?: { readonly resource?: string; readonly scope?: string }): Promise<{ readonly token: string; readonly expiresIn: number }>;
  /** RFC 7009 revocation at the IdP by the token's own client: introspection answers inactive from then on. */
  revoke(caller: string, token: string): Promise<void>;
  close(): Promise<void>;
}

function callerMetadata(c: DemoCaller): ClientMetadata {
  return {
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPES.join(' '),
  };
}

function resourceServerMetadata(r: ResourceServerClient): ClientMetadata {
  return {
    client_id: r.id,
    ...(r.secret === undefined ? {} : { client_secret: r.secret }),
    ...(r.publicJwk === undefined ? {} : { jwks: { keys: [r.publicJwk] } }),
    ...(r.signedIntrospection === true ? { introspection_signed_response_alg: 'RS256' } : {}),
    // A resource server only introspects; it is given no grant it could use to mint tokens.
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: r.auth,
  };
}

export async function startIdp(opts: IdpOptions = {}): Promise<DemoIdp> {
  const callers = new Map((opts.callers ?? DEMO_CALLERS).map((c) => [c.id, c]));
  const resourceServers = opts.resourceServers ?? [DEMO_RESOURCE_SERVER];
  const introspectors = new Set(resourceServers.map((r) => r.id));

  // The issuer names its port, so the server listens before the provider exists.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the IdP has no TCP address');
  const issuer = `http://127.0.0.1:${address.port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [...[...callers.values()].map(callerMetadata), ...resourceServers.map(resourceServerMetadata)],
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomUUID()] },
    scopes: SCOPES,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // A client may revoke only its own tokens.
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
      introspection: {
        enabled: true,
        // Only the registered resource servers may ask about tokens.
        allowedPolicy: (_ctx, client) => introspectors.has(client.clientId),
      },
      jwtIntrospection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => GATEWAY_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator, client) => {
          if (indicator !== GATEWAY_RESOURCE && indicator !== OTHER_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: SCOPES.join(' '),
            audience: indicator,
            accessTokenTTL: callers.get(client.clientId)?.ttlSeconds ?? 300,
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300 },
    // The caller's directory data, returned by introspection with the token.
    extraTokenClaims: (_ctx, token) => {
      const clientId = 'clientId' in token && typeof token.clientId === 'string' ? token.clientId : '';
      return { ...callers.get(clientId)?.claims };
    },
  });
  let calls = 0;
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token/introspection') calls += 1;
    await next();
  });
  const callback = provider.callback();
  handler = (req, res) => void callback(req, res);

  const basic = (caller: string): string => {
    const c = callers.get(caller);
    if (c === undefined) throw new Error(`no demo caller ${caller}`);
    return `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
  };

  return {
    issuer,
    port: address.port,
    tokenUrl: `${issuer}/token`,
    introspectionUrl: `${issuer}/token/introspection`,
    jwksUrl: `${issuer}/jwks`,
    introspectionCalls: () => calls,
    token: async (caller, o = {}) => {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: basic(caller), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: o.resource ?? GATEWAY_RESOURCE, scope: o.scope ?? 'inference' }),
      });
      const body = (await res.json()) as { access_token?: string; expires_in?: number; error?: string };
      if (res.status !== 200 || body.access_token === undefined) throw new Error(`token request failed: HTTP ${res.status} ${JSON.stringify(body)}`);
      return { token: body.access_token, expiresIn: body.expires_in ?? 0 };
    },
    revoke: async (caller, token) => {
      const res = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: { authorization: basic(caller), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
      });
      if (res.status !== 200) throw new Error(`revocation failed: HTTP ${res.status}`);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `node src/devtools/idp.ts`: the demo IdP on 127.0.0.1:4444 (or $IDP_PORT), until interrupted. */
async function main(): Promise<void> {
  const idp = await startIdp({ port: Number(process.env['IDP_PORT'] ?? 4444) });
  const dir = mkdtempSync(join(tmpdir(), 'igw-idp-'));
  const secretFile = join(dir, 'introspection-secret');
  writeFileSync(secretFile, `${DEMO_RESOURCE_SERVER.secret ?? ''}\n`, { mode: 0o600 });
  const caller = DEMO_CALLERS[0] as DemoCaller;
  process.stdout.write(
    [
      `issuer:            ${idp.issuer}`,
      `introspection:     ${idp.introspectionUrl} (client ${DEMO_RESOURCE_SERVER.id}, secret in ${secretFile})`,
      `audience:          ${GATEWAY_RESOURCE}`,
      `a token:           curl -s -u ${caller.id}:${caller.secret} -d grant_type=client_credentials -d resource=${GATEWAY_RESOURCE} -d scope=inference ${idp.tokenUrl}`,
      '',
    ].join('\n'),
  );
  const stop = (): void => void idp.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) await main();
