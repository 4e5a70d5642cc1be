// ADS over mutual TLS against a real Envoy 1.40: an Envoy without a client
// certificate never gets a stream (the handshake fails), one whose verified
// certificate is not in the allowed clients is refused (PERMISSION_DENIED,
// nothing sent), and the allowed one gets the clusters and serves.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.ts';
import { xdsClientCheck } from '../../src/control-plane/xds-clients.ts';
import { startXdsServer, type XdsServer } from '../../src/control-plane/xds/server.ts';
import type { XdsClientTlsOptions } from '../../src/envoy/config.ts';
import { startEnvoy, type EnvoyProcess } from '../../src/envoy/process.ts';
import { envoyBinary } from '../envoy/helpers.ts';
import { createTestPki, SPIFFE_APP, type CertFiles, type TestPki } from '../helpers/pki.ts';
import { holdsFor, waitFor } from '../helpers/wait.ts';
import { cdsState, hit, probeEnvoyConfig, recordingLog, stat } from './xds-harness.ts';

const bin = await envoyBinary();

let pki: TestPki;
let upstream: DemoUpstream;
let xds: XdsServer;
let dir: string;
const log = recordingLog();
const envoys: EnvoyProcess[] = [];

before(async () => {
  if (bin === undefined) return;
  pki = await createTestPki();
  upstream = await startDemoUpstream({ port: 0 });
  dir = await mkdtemp(join(tmpdir(), 'xds-mtls-test-'));
  xds = await startXdsServer({
    host: '127.0.0.1',
    port: 0,
    log,
    tls: { certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: pki.caCert, authorize: xdsClientCheck([{ spiffeId: SPIFFE_APP }]) },
  });
  xds.update([{ name: 'model-a', endpoints: [{ host: '127.0.0.1', port: upstream.port }] }]);
});

after(async () => {
  for (const e of envoys) await e.stop();
  await xds?.close();
  await upstream?.close();
  await pki?.cleanup();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** An Envoy taking its clusters from the server over TLS, with this client certificate (or none). */
async function envoyWith(name: string, client: CertFiles | null): Promise<{ envoy: EnvoyProcess; url: string }> {
  const files = client ?? pki.clients.spiffe;
  const tls: XdsClientTlsOptions = { certChainFile: files.cert, privateKeyFile: files.key, caFile: pki.caCert, serverName: 'localhost' };
  const doc = YAML.parse(probeEnvoyConfig(xds.port, { tls, initialFetchTimeout: '1s' })) as {
    static_resources: { clusters: Array<{ name: string; transport_socket?: { typed_config: { common_tls_context: Record<string, unknown> } } }> };
  };
  // Without a certificate: no tls_certificates, so Envoy sends none and the server refuses the handshake.
  const ads = doc.static_resources.clusters.find((c) => c.name === 'xds-control-plane');
  assert.ok(ads?.transport_socket !== undefined, 'the ADS cluster has a TLS transport socket');
  if (client === null) delete ads.transport_socket.typed_config.common_tls_context['tls_certificates'];
  const configYaml = YAML.stringify(doc);
  const envoy = await startEnvoy({ bin: bin as string, workDir: join(dir, name), configYaml });
  envoys.push(envoy);
  return { envoy, url: `http://127.0.0.1:${await envoy.listenerPort()}` };
}

void test('an Envoy without a client certificate gets no stream and no clusters', { skip: bin === undefined }, async () => {
  const { envoy, url } = await envoyWith('no-cert', null);
  assert.equal((await cdsState(envoy.adminUrl)).clusters.size, 0);
  // It tried (connections to the control plane), and every TLS handshake failed: no stream ever opened.
  await waitFor(async () => ((await stat(envoy.adminUrl, 'cluster.xds-control-plane.upstream_cx_total')) ?? 0) >= 2, {
    what: 'Envoy to retry the control plane',
    timeoutMs: 10_000,
  });
  assert.equal(xds.status().streams, 0);
  assert.equal(xds.status().refused, 0, 'refused in the handshake, before any stream');
  assert.equal(await stat(envoy.adminUrl, 'control_plane.connected_state'), 0);
  assert.equal(await hit(url, 'model-a'), 503);
});

void test(
  'an Envoy whose certificate is not an allowed client is refused: no clusters, the refusal counted and logged',
  { skip: bin === undefined },
  async () => {
    const { envoy, url } = await envoyWith('wrong-identity', pki.clients.subject);
    await waitFor(() => xds.status().refused >= 1, { what: 'the stream to be refused', timeoutMs: 10_000 });
    assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('xds stream refused') && JSON.stringify(l.fields).includes('CN=batch-client')));
    await holdsFor(async () => (await cdsState(envoy.adminUrl)).clusters.size === 0 && xds.status().streams === 0, {
      forMs: 500,
      what: 'the refused Envoy has no clusters',
    });
    assert.equal(await hit(url, 'model-a'), 503);
  },
);

void test('the allowed Envoy (its SPIFFE ID listed) gets the clusters over mTLS and serves', { skip: bin === undefined }, async () => {
  const { envoy, url } = await envoyWith('allowed', pki.clients.spiffe);
  await waitFor(async () => (await hit(url, 'model-a')) === 200, { what: 'the allowed Envoy to serve model-a', timeoutMs: 10_000 });
  assert.equal(xds.status().streams, 1);
  assert.ok(log.lines.some((l) => l.msg === 'xds stream opened' && JSON.stringify(l.fields).includes(SPIFFE_APP)));
  assert.equal((await cdsState(envoy.adminUrl)).clusters.get('model-a')?.cluster['name'], 'model-a');
  assert.equal(await stat(envoy.adminUrl, 'control_plane.connected_state'), 1);
});
