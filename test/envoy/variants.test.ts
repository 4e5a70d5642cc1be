import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { VARIANTS } from '../../src/envoy/variants.ts';

for (const v of VARIANTS) {
  test(`${v.file} equals its render from envoy/gateway.yaml (run node scripts/gen-envoy-variants.ts after editing gateway.yaml)`, () => {
    const committed: unknown = YAML.parse(readFileSync(join(PROJECT_ROOT, v.file), 'utf8'));
    assert.deepEqual(committed, YAML.parse(v.render()));
  });
}

test('the ext_authz variant has no ext_proc on its listener and fails closed', () => {
  const doc = YAML.parse(readFileSync(join(PROJECT_ROOT, 'envoy/ext-authz.yaml'), 'utf8')) as { static_resources: { listeners: unknown; clusters: unknown } };
  const listeners = JSON.stringify(doc.static_resources.listeners);
  assert.ok(!listeners.includes('envoy.filters.http.ext_proc'));
  assert.ok(listeners.includes('envoy.filters.http.ext_authz'));
  assert.ok(listeners.includes('"failure_mode_allow":false'));
});

test('the mTLS variant requires client certificates and sanitizes x-forwarded-client-cert', () => {
  const text = JSON.stringify(YAML.parse(readFileSync(join(PROJECT_ROOT, 'envoy/gateway-mtls.yaml'), 'utf8')));
  assert.ok(text.includes('"require_client_certificate":true'));
  assert.ok(text.includes('"forward_client_cert_details":"SANITIZE"'));
});

test('the xDS variant takes its upstream clusters from ADS (CDS over ADS, the control plane over HTTP/2) and keeps the sidecar static', () => {
  const doc = YAML.parse(readFileSync(join(PROJECT_ROOT, 'envoy/gateway-xds.yaml'), 'utf8')) as {
    dynamic_resources: { ads_config: { api_type: string; grpc_services: Array<{ envoy_grpc: { cluster_name: string } }> }; cds_config: unknown };
    static_resources: { clusters: Array<{ name: string; typed_extension_protocol_options?: unknown }> };
  };
  assert.equal(doc.dynamic_resources.ads_config.api_type, 'GRPC');
  assert.equal(doc.dynamic_resources.ads_config.grpc_services[0]?.envoy_grpc.cluster_name, 'xds-control-plane');
  assert.deepEqual(doc.dynamic_resources.cds_config, { ads: {}, resource_api_version: 'V3' });
  assert.deepEqual(doc.static_resources.clusters.map((c) => c.name).sort(), ['inference-gateway-sidecar', 'xds-control-plane']);
  const xds = doc.static_resources.clusters.find((c) => c.name === 'xds-control-plane');
  assert.ok(JSON.stringify(xds?.typed_extension_protocol_options).includes('"http2_protocol_options":{}'));
});
