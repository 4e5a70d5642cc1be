/**
 * A control plane process in front of a test stack started without its
 * sidecar (`startTestStack({ withoutSidecar: true, config: CONTROLLED_SIDECAR(redisUrl) })`):
 * the stack's file snapshot is signed with the control plane's key (the
 * sidecar trusts only that key), the sidecar starts, and
 * `inference-gateway control-plane` runs as a child process with JWT admin
 * authentication from a test identity provider, until it says it is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateSigningKey, signText } from '../../src/crypto/signing.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { signedContent } from '../../src/control/snapshot.ts';
import { makeKeyPair, mintFor, standardClaims, writeJwksFile } from './jwt.ts';
import type { TestStack } from './stack.ts';
import { waitFor } from './wait.ts';

const ISSUER = 'https://idp.test';

/** The sidecar config of a stack the control plane drives: snapshots and keys from Redis, signed by `cp.pem`. */
export function controlledSidecar(redisUrl: string): Record<string, unknown> {
  return { redis: { url: redisUrl }, routing: { publicKeys: ['cp.pem.pub'], redis: {} }, auth: { redisKeys: true } };
}

export interface TestControlPlane {
  readonly process: ChildProcess;
  readonly adminUrl: string;
  /** The admin audit log and the public key its checkpoints verify with. */
  readonly auditFile: string;
  readonly auditPublicKey: string;
  /** A JWT of the test identity provider for `sub` with these roles. */
  token(sub: string, roles: readonly string[]): Promise<string>;
  output(): string;
}

export async function startControlPlaneFor(
  stack: TestStack,
  opts: { readonly postgresUrl: string; readonly redisUrl: string; readonly xds?: { readonly port: number } },
): Promise<TestControlPlane> {
  const dir = stack.files.dir;
  const cpKey = generateSigningKey(join(dir, 'cp.pem'));
  // With routing.publicKeys the file snapshot must be signed too.
  const doc: Record<string, unknown> = {
    version: 'file-1',
    issuedAt: '2026-01-01T00:00:00Z',
    models: [{ id: 'gpt-demo', endpoints: ['chat'], target: { cluster: 'demo-upstream', model: 'file-model' } }],
  };
  doc['signature'] = { kid: cpKey.kid, sig: signText(cpKey, signedContent(doc)) };
  writeFileSync(stack.files.snapshotFile, stringify(doc));
  await stack.startSidecar();

  const idp = await makeKeyPair('ES256');
  writeJwksFile(join(dir, 'admin-jwks.json'), [idp]);
  const cfgFile = join(dir, 'control-plane.yaml');
  writeFileSync(
    cfgFile,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      postgres: { url: opts.postgresUrl },
      redis: { url: opts.redisUrl },
      routing: { signingKeyFile: 'cp.pem' },
      auth: { jwt: { issuers: [{ issuer: ISSUER, audiences: ['igw-admin'], jwksFile: 'admin-jwks.json', algorithms: ['ES256'] }] } },
      audit: { file: 'admin-audit.jsonl', signingKeyFile: 'admin-audit.pem' },
      ...(opts.xds === undefined ? {} : { xds: { host: '127.0.0.1', port: opts.xds.port } }),
    }),
  );
  let out = '';
  const cp = spawn(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), 'control-plane', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  cp.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  cp.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const port = await waitFor(
    () => {
      const line = out.split('\n').find((l) => l.includes('"control plane ready"'));
      return line === undefined ? null : (JSON.parse(line) as { port: number }).port;
    },
    { what: () => `the control plane to be ready:\n${out}`, timeoutMs: 20_000 },
  );
  return {
    process: cp,
    adminUrl: `http://127.0.0.1:${port}`,
    auditFile: join(dir, 'admin-audit.jsonl'),
    auditPublicKey: join(dir, 'admin-audit.pem.pub'),
    token: (sub, roles) => mintFor(idp, standardClaims({ iss: ISSUER, aud: 'igw-admin', sub, nowMs: Date.now() }, { roles: [...roles] })),
    output: () => out,
  };
}

/** One admin API answer: status, ETag and the JSON body (empty object for an empty body). */
export interface AdminAnswer<B> {
  readonly status: number;
  readonly etag: string | null;
  readonly body: B;
}

/** A call to the control plane's admin API, with an optional bearer token, JSON body and If-Match. */
export async function adminCall<B = Record<string, unknown>>(
  adminUrl: string,
  method: string,
  path: string,
  opts: { readonly token?: string | undefined; readonly body?: unknown; readonly ifMatch?: string | undefined } = {},
): Promise<AdminAnswer<B>> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
  const res = await fetch(`${adminUrl}${path}`, { method, headers, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), body: (text === '' ? {} : JSON.parse(text)) as B };
}
