/**
 * `npm run bench:auth`: the sidecar CPU each authentication method adds to a
 * request, measured in-process on the real verifiers (no network): API key
 * (in-memory store), JWT RS256 and ES256 (keys cached from a JWKS file),
 * mTLS (Envoy's connection attributes with the PEM, identity mapping), and
 * combinations through the Authenticator. The end-to-end overhead of the
 * sidecar as a whole is `npm run bench`.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema } from '../src/config/schema.ts';
import { connectionInfoFromAttributes } from '../src/server/extproc/attributes.ts';
import type { Struct } from '../src/server/proto/common.ts';
import { ApiKeyVerifier } from '../src/stages/auth/api-keys.ts';
import { generateApiKey } from '../src/crypto/api-key-format.ts';
import { Authenticator } from '../src/stages/auth/authenticate.ts';
import { NO_CONNECTION_INFO } from '../src/pipeline/identity.ts';
import { JwtVerifier } from '../src/stages/auth/jwt.ts';
import { IntrospectionVerifier } from '../src/stages/auth/introspection.ts';
import { MtlsVerifier } from '../src/stages/auth/mtls.ts';
import { StaticKeyStore } from '../src/stores/keys/static.ts';
import { createTestPki, SPIFFE_APP } from '../test/helpers/pki.ts';
import { makeKeyPair, mintFor, standardClaims, writeJwksFile } from '../test/helpers/jwt.ts';

const N = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 20_000);

async function measure(name: string, op: () => unknown): Promise<{ name: string; cpuUs: number; wallUs: number }> {
  for (let i = 0; i < Math.min(2000, N); i++) await op();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await op();
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / N;
  const cpu = process.cpuUsage(cpu0);
  return { name, cpuUs: (cpu.user + cpu.system) / N, wallUs: wall };
}

const dir = mkdtempSync(join(tmpdir(), 'igw-bench-auth-'));
const pki = await createTestPki();
const rsa = await makeKeyPair('RS256');
const ec = await makeKeyPair('ES256');
const jwksFile = join(dir, 'jwks.json');
writeJwksFile(jwksFile, [rsa, ec]);
const key = generateApiKey();

const config = ConfigSchema.parse({
  auth: {
    apiKeys: [{ id: key.id, hash: key.hash, principal: 'alice', org: 'acme', tenant: 'research' }],
    jwt: { issuers: [{ issuer: 'https://idp.bench', audiences: ['gw'], jwksFile }] },
    mtls: { trustDomains: ['prod.example.org'], identities: [{ spiffeId: SPIFFE_APP, principal: 'app', org: 'acme', tenant: 'research' }] },
  },
});
const apiKeys = new ApiKeyVerifier(new StaticKeyStore(config.auth.apiKeys), { unknownKeyCache: config.auth.unknownKeyCache });
const jwt = new JwtVerifier(config.auth.jwt);
const mtls = new MtlsVerifier(config.auth.mtls);
const introspection = new IntrospectionVerifier(config.auth.introspection);
const auth = new Authenticator({ apiKeys, jwt, introspection, mtls }, []);

const claims = standardClaims({ iss: 'https://idp.bench', aud: 'gw', nowMs: Date.now(), ttlSeconds: 3600 }, { org: 'acme', tenant: 'research' });
const rsToken = await mintFor(rsa, claims);
const esToken = await mintFor(ec, claims);
const pem = readFileSync(pki.clients.spiffe.cert, 'utf8');
const s = (v: string) => ({ kind: 'stringValue' as const, stringValue: v });
const b = (v: boolean) => ({ kind: 'boolValue' as const, boolValue: v });
const attributes: Record<string, Struct> = {
  'envoy.filters.http.ext_proc': {
    fields: {
      'connection.mtls': b(true),
      'connection.peer_certificate_valid': b(true),
      'connection.uri_san_peer_certificate': s(SPIFFE_APP),
      'connection.subject_peer_certificate': s('CN=team-a-app'),
      'connection.sha256_peer_certificate_digest': s(pki.clients.spiffe.sha256),
      'connection.peer_certificate': s(pem),
      'source.address': s('127.0.0.1:40000'),
    },
  },
};
const none = { authorization: undefined, xApiKey: undefined };

// First use of each token: pre-minted distinct tokens (a new jti each), so nothing comes from the verified-token cache.
const FRESH = 2000;
const freshRs = await Promise.all(Array.from({ length: FRESH + 200 }, (_, i) => mintFor(rsa, { ...claims, jti: `rs-${i}` })));
const freshEs = await Promise.all(Array.from({ length: FRESH + 200 }, (_, i) => mintFor(ec, { ...claims, jti: `es-${i}` })));
async function measureFresh(name: string, tokens: string[]): Promise<{ name: string; cpuUs: number; wallUs: number }> {
  for (const t of tokens.slice(0, 200)) await auth.authenticate({ authorization: `Bearer ${t}`, xApiKey: undefined }, NO_CONNECTION_INFO, 'chat');
  const rest = tokens.slice(200);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const t of rest) await auth.authenticate({ authorization: `Bearer ${t}`, xApiKey: undefined }, NO_CONNECTION_INFO, 'chat');
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / rest.length;
  const cpu = process.cpuUsage(cpu0);
  return { name, cpuUs: (cpu.user + cpu.system) / rest.length, wallUs: wall };
}

const rows = [
  await measureFresh('JWT RS256, first use of each token', freshRs),
  await measureFresh('JWT ES256, first use of each token', freshEs),
  await measure('API key (in-memory store)', () => auth.authenticate({ authorization: `Bearer ${key.key}`, xApiKey: undefined }, NO_CONNECTION_INFO, 'chat')),
  await measure('JWT RS256, token reused (verified-token cache)', () =>
    auth.authenticate({ authorization: `Bearer ${rsToken}`, xApiKey: undefined }, NO_CONNECTION_INFO, 'chat'),
  ),
  await measure('JWT ES256, token reused (verified-token cache)', () =>
    auth.authenticate({ authorization: `Bearer ${esToken}`, xApiKey: undefined }, NO_CONNECTION_INFO, 'chat'),
  ),
  await measure('mTLS (attributes + mapping)', () => auth.authenticate(none, connectionInfoFromAttributes(attributes), 'chat')),
  await measure('mTLS + API key', () =>
    auth.authenticate({ authorization: `Bearer ${key.key}`, xApiKey: undefined }, connectionInfoFromAttributes(attributes), 'chat'),
  ),
];

process.stdout.write(`Authentication cost per request (${N} iterations each, ${new Date().toISOString()}, Node ${process.version})\n`);
process.stdout.write('| method | sidecar CPU µs / request | wall µs / request |\n|---|--:|--:|\n');
for (const r of rows) process.stdout.write(`| ${r.name} | ${r.cpuUs.toFixed(1)} | ${r.wallUs.toFixed(1)} |\n`);
await pki.cleanup();
