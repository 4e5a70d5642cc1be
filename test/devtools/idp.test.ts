/**
 * The documented local example: `node src/devtools/idp.ts` runs the real
 * oidc-provider, and the copy-paste config of docs/identity.md (the YAML
 * block after `<!-- introspection-config -->`), pointed at the example's
 * port, verifies a token from the printed curl command with the documented
 * roles and tenant.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { IntrospectionVerifier } from '../../src/stages/auth/introspection.ts';
import { waitFor } from '../helpers/wait.ts';

let child: ChildProcess;
let out = '';
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'igw-idp-example-'));
  child = spawn(process.execPath, [join(PROJECT_ROOT, 'src/devtools/idp.ts')], {
    cwd: dir,
    env: { ...process.env, IDP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => /a token: .*\n/.test(out), { what: () => `the example to print its banner:\n${out}`, timeoutMs: 15_000 });
});

after(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

function documentedConfig(): string {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs/identity.md'), 'utf8');
  const m = /<!-- introspection-config -->\n```yaml\n([\s\S]*?)```/.exec(doc);
  assert.ok(m?.[1] !== undefined, 'docs/identity.md has the marked config block');
  return m[1];
}

test('the docs config, against the running example, accepts a token from the printed command with the documented grants', async () => {
  const issuer = /^issuer: +(\S+)$/m.exec(out)?.[1] ?? '';
  assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  const yaml = documentedConfig().replaceAll('http://127.0.0.1:4444', issuer);
  // The config sits where the example ran, so `.idp/introspection-secret` resolves to the secret it wrote.
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, yaml);
  const config = loadConfig(configFile, {});
  assert.equal(config.auth.introspection.issuers.length, 1);
  assert.equal(config.auth.introspection.issuers[0]?.issuer, issuer);
  const verifier = new IntrospectionVerifier(config.auth.introspection);

  // The printed curl command's request, made with fetch.
  const curl = /a token: +curl -s -u (\S+):(\S+) -d grant_type=client_credentials -d resource=(\S+) -d scope=(\S+) (\S+)$/m.exec(out);
  assert.ok(curl !== null, out);
  const [, id = '', secret = '', resource = '', scope = '', tokenUrl = ''] = curl;
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  assert.equal(res.status, 200);
  const { access_token: token } = (await res.json()) as { access_token: string };

  const c = await verifier.verify(token);
  assert.equal(c.principal, 'research-app');
  assert.equal(c.org, 'acme');
  assert.equal(c.tenant, 'research');
  assert.deepEqual(c.roles, ['analyst', 'ml-engineer'], 'as docs/identity.md says');
});
