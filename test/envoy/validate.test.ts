// Every committed Envoy config, every rendered variant and every Envoy config
// embedded in k8s/ manifests must pass `envoy --mode validate`.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { renderGatewayConfig, renderPlainConfig } from '../../src/envoy/config.ts';
import { validateEnvoyConfig } from '../../src/envoy/process.ts';
import { envoyBinary } from './helpers.ts';
import { TLS_MOUNT } from '../../src/envoy/variants.ts';
import { createTestPki } from '../helpers/pki.ts';

async function walk(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path, accept)));
    else if (entry.isFile() && accept(entry.name)) out.push(path);
  }
  return out.sort();
}

const isYaml = (name: string): boolean => name.endsWith('.yaml') || name.endsWith('.yml');

/** One subtest per config, so one invalid config does not hide the others. */
async function assertValid(t: TestContext, bin: string, what: string, input: { configYaml?: string; configPath?: string }): Promise<void> {
  await t.test(what, async () => {
    const r = await validateEnvoyConfig({ ...input, bin });
    assert.ok(r.ok, `${what} failed envoy --mode validate:\n${r.output}`);
  });
}

void test('committed envoy/*.yaml configs pass envoy --mode validate', async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const files = await walk(join(PROJECT_ROOT, 'envoy'), isYaml);
  assert.ok(
    files.some((f) => f.endsWith('gateway.yaml')),
    'envoy/gateway.yaml must exist',
  );
  // Validation opens certificate files: configs that read a TLS Secret at its
  // conventional mount path are validated with test certificates put there instead.
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const tlsDir = join(pki.dir, 'mounted-tls');
  await mkdir(tlsDir);
  await Promise.all([
    copyFile(pki.server.cert, join(tlsDir, 'tls.crt')),
    copyFile(pki.server.key, join(tlsDir, 'tls.key')),
    copyFile(pki.caCert, join(tlsDir, 'ca.crt')),
  ]);
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    if (text.includes(`${TLS_MOUNT}/`)) {
      await assertValid(t, bin, relative(PROJECT_ROOT, file), { configYaml: text.replaceAll(`${TLS_MOUNT}/`, `${tlsDir}/`) });
    } else {
      await assertValid(t, bin, relative(PROJECT_ROOT, file), { configPath: file });
    }
  }
});

void test('rendered gateway and plain configs pass envoy --mode validate', async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  // Access-log directories must exist for validation to pass.
  const dir = await mkdtemp(join(tmpdir(), 'envoy-validate-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const variants: Array<[string, string]> = [
    [
      'gateway (defaults)',
      renderGatewayConfig({
        listenerPort: 8080,
        adminPort: 9901,
        sidecarSocket: '/tmp/inference-gateway/sidecar.sock',
        clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: 8000 }],
      }),
    ],
    [
      'gateway (several clusters, DNS host, timeout, access log)',
      renderGatewayConfig({
        listenerPort: 0,
        adminPort: 0,
        sidecarSocket: '/tmp/ig-validate/sidecar.sock',
        clusters: [
          { name: 'vllm-a', host: '127.0.0.1', port: 8001 },
          { name: 'vllm-b', host: 'localhost', port: 8002 },
          { name: 'openai-compatible', host: '::1', port: 8003 },
        ],
        messageTimeoutMs: 250,
        accessLogPath: join(dir, 'access.log'),
      }),
    ],
    [
      'gateway (clusters over xDS, the control plane by DNS name)',
      renderGatewayConfig({
        listenerPort: 0,
        adminPort: 0,
        sidecarSocket: '/tmp/x.sock',
        clusters: [{ name: 'static-one', host: '127.0.0.1', port: 8001 }],
        xds: { host: 'inference-gateway-control-plane.default.svc', port: 18000, nodeId: 'gateway-0' },
      }),
    ],
    ['gateway (no upstream clusters)', renderGatewayConfig({ listenerPort: 0, adminPort: 0, sidecarSocket: '/tmp/x.sock', clusters: [] })],
    ['plain', renderPlainConfig({ listenerPort: 0, adminPort: 0, cluster: { name: 'upstream', host: '127.0.0.1', port: 8000 } })],
    [
      'plain (access log)',
      renderPlainConfig({
        listenerPort: 18080,
        adminPort: 19901,
        cluster: { name: 'upstream', host: 'localhost', port: 8000 },
        accessLogPath: join(dir, 'plain.log'),
      }),
    ],
  ];
  for (const [what, configYaml] of variants) {
    await assertValid(t, bin, what, { configYaml });
  }
});

void test('Envoy configs embedded in k8s/ ConfigMaps pass envoy --mode validate', async (t) => {
  const k8s = join(PROJECT_ROOT, 'k8s');
  if (!existsSync(k8s)) {
    t.diagnostic('no k8s/ folder');
    return;
  }
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  let count = 0;
  for (const file of await walk(k8s, isYaml)) {
    const text = await readFile(file, 'utf8');
    for (const doc of YAML.parseAllDocuments(text)) {
      if (doc.errors.length > 0) continue; // e.g. Helm templates: not plain YAML
      const value: unknown = doc.toJS();
      if (typeof value !== 'object' || value === null) continue;
      const m = value as { kind?: unknown; metadata?: { name?: unknown }; data?: unknown };
      if (m.kind !== 'ConfigMap' || typeof m.data !== 'object' || m.data === null) continue;
      for (const [key, configYaml] of Object.entries(m.data as Record<string, unknown>)) {
        if (!key.endsWith('envoy.yaml') || typeof configYaml !== 'string') continue;
        count++;
        await assertValid(t, bin, `${relative(PROJECT_ROOT, file)} ConfigMap ${String(m.metadata?.name)} key ${key}`, { configYaml });
      }
    }
  }
  t.diagnostic(`validated ${count} embedded Envoy config(s)`);
});
