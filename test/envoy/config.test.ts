// Structural checks of the config renderers (no Envoy needed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import YAML from 'yaml';
import { DEMO_CLUSTER, SIDECAR_CLUSTER, TARGET_CLUSTER_HEADER, loadGatewayTemplate, renderGatewayConfig, renderPlainConfig } from '../../src/envoy/config.ts';

// Loose view of the parts of the bootstrap the tests look at.
interface Bootstrap {
  admin: { address: { socket_address: { address: string; port_value: number } } };
  static_resources: {
    listeners: Array<{
      name: string;
      address: { socket_address: { address: string; port_value: number } };
      per_connection_buffer_limit_bytes: number;
      filter_chains: Array<{ filters: Array<{ name: string; typed_config: Hcm }> }>;
    }>;
    clusters: Array<{
      name: string;
      type: string;
      circuit_breakers?: unknown;
      load_assignment: {
        cluster_name: string;
        endpoints: Array<{
          lb_endpoints: Array<{
            endpoint: { address: { socket_address?: { address: string; port_value: number }; pipe?: { path: string } } };
          }>;
        }>;
      };
    }>;
  };
}
interface Hcm {
  access_log?: Array<{ typed_config: { path: string } }>;
  http_filters: Array<{ name: string; typed_config: Record<string, unknown> }>;
  route_config: { virtual_hosts: Array<{ routes: Array<{ route: Record<string, unknown> }> }> };
  local_reply_config: { mappers: unknown[] };
}

const parse = (yaml: string): Bootstrap => YAML.parse(yaml) as Bootstrap;
const hcmOf = (b: Bootstrap): Hcm => b.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
const cluster = (b: Bootstrap, name: string) => b.static_resources.clusters.find((c) => c.name === name);
const endpoint = (b: Bootstrap, name: string) => cluster(b, name)?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address;

void test('the committed template has the documented defaults', () => {
  const b = loadGatewayTemplate() as unknown as Bootstrap;
  assert.equal(b.admin.address.socket_address.address, '127.0.0.1');
  assert.equal(b.admin.address.socket_address.port_value, 9901);
  const l = b.static_resources.listeners[0]!;
  assert.equal(l.name, 'gateway');
  assert.deepEqual(l.address.socket_address, { address: '127.0.0.1', port_value: 8080 });
  assert.equal(l.per_connection_buffer_limit_bytes, 2 * 1024 * 1024);
  assert.deepEqual(endpoint(b, SIDECAR_CLUSTER), { pipe: { path: '/tmp/inference-gateway/sidecar.sock' } });
  assert.deepEqual(endpoint(b, DEMO_CLUSTER), { socket_address: { address: '127.0.0.1', port_value: 8000 } });
  const hcm = hcmOf(b);
  assert.deepEqual(
    hcm.http_filters.map((f) => f.name),
    ['envoy.filters.http.ext_proc', 'envoy.filters.http.router'],
  );
  const extProc = hcm.http_filters[0]!.typed_config;
  assert.equal(extProc.failure_mode_allow, false);
  assert.equal(extProc.allow_mode_override, true);
  assert.deepEqual(extProc.processing_mode, {
    request_header_mode: 'SEND',
    response_header_mode: 'SEND',
    request_body_mode: 'BUFFERED',
    response_body_mode: 'BUFFERED',
    request_trailer_mode: 'SKIP',
    response_trailer_mode: 'SKIP',
  });
  assert.equal(hcm.route_config.virtual_hosts[0]!.routes[0]!.route.cluster_header, TARGET_CLUSTER_HEADER);
});

void test('renderGatewayConfig overrides ports, socket, timeout and access log by name', () => {
  const b = parse(
    renderGatewayConfig({
      listenerPort: 18080,
      adminPort: 19901,
      sidecarSocket: '/tmp/t/sidecar.sock',
      clusters: [{ name: DEMO_CLUSTER, host: '127.0.0.1', port: 18000 }],
      messageTimeoutMs: 250,
      accessLogPath: '/tmp/t/access.log',
    }),
  );
  assert.equal(b.admin.address.socket_address.port_value, 19901);
  assert.equal(b.static_resources.listeners[0]!.address.socket_address.port_value, 18080);
  assert.deepEqual(endpoint(b, SIDECAR_CLUSTER), { pipe: { path: '/tmp/t/sidecar.sock' } });
  assert.deepEqual(endpoint(b, DEMO_CLUSTER), { socket_address: { address: '127.0.0.1', port_value: 18000 } });
  const hcm = hcmOf(b);
  assert.equal(hcm.http_filters[0]!.typed_config.message_timeout, '0.25s');
  assert.equal(hcm.access_log?.[0]?.typed_config.path, '/tmp/t/access.log');
});

void test('renderGatewayConfig replaces the demo cluster, copying its settings', () => {
  const template = loadGatewayTemplate() as unknown as Bootstrap;
  const demo = cluster(template, DEMO_CLUSTER)!;
  const b = parse(
    renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: '/tmp/s.sock',
      clusters: [
        { name: 'a', host: '10.0.0.1', port: 1 },
        { name: 'b', host: 'vllm.internal', port: 2 },
      ],
    }),
  );
  assert.deepEqual(
    b.static_resources.clusters.map((c) => c.name),
    [SIDECAR_CLUSTER, 'a', 'b'],
  );
  assert.equal(cluster(b, 'a')!.type, 'STATIC');
  assert.equal(cluster(b, 'b')!.type, 'STRICT_DNS');
  assert.equal(cluster(b, 'b')!.load_assignment.cluster_name, 'b');
  assert.deepEqual(endpoint(b, 'b'), { socket_address: { address: 'vllm.internal', port_value: 2 } });
  assert.deepEqual(cluster(b, 'a')!.circuit_breakers, demo.circuit_breakers);
});

void test('renderGatewayConfig: fallbacks as endpoint priorities, and aggregate clusters', () => {
  const b = YAML.parse(
    renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: '/tmp/s.sock',
      clusters: [
        {
          name: 'a',
          host: '10.0.0.1',
          port: 1,
          fallbacks: [
            { host: '10.0.0.2', port: 2 },
            { host: 'backup.internal', port: 3 },
          ],
        },
        { name: 'b', host: '10.0.0.9', port: 9 },
        { name: 'ab', aggregate: ['a', 'b'] },
      ],
    }),
  ) as { static_resources: { clusters: Array<Record<string, unknown>> } };
  const byName = (n: string) => b.static_resources.clusters.find((c) => c.name === n) as Record<string, unknown>;
  const a = byName('a') as {
    type: string;
    outlier_detection?: unknown;
    load_assignment: { endpoints: Array<{ priority?: number; lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string } } } }> }> };
  };
  assert.deepEqual(
    a.load_assignment.endpoints.map((e) => [e.priority ?? 0, e.lb_endpoints[0]?.endpoint.address.socket_address.address]),
    [
      [0, '10.0.0.1'],
      [1, '10.0.0.2'],
      [2, 'backup.internal'],
    ],
  );
  assert.equal(a.type, 'STRICT_DNS', 'a DNS fallback makes the cluster STRICT_DNS');
  assert.ok(a.outlier_detection, 'outlier detection is copied from the template');
  const ab = byName('ab') as {
    lb_policy: string;
    cluster_type: { name: string; typed_config: { clusters: string[] } };
    typed_extension_protocol_options: Record<string, { http_filters: Array<{ name: string; typed_config: Record<string, unknown> }> }>;
  };
  assert.equal(ab.lb_policy, 'CLUSTER_PROVIDED');
  assert.equal(ab.cluster_type.name, 'envoy.clusters.aggregate');
  assert.deepEqual(ab.cluster_type.typed_config.clusters, ['a', 'b']);
  // Every attempt on the aggregate goes through the sidecar (the members' own upstream filters would never run).
  const filters = ab.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']?.http_filters ?? [];
  assert.deepEqual(
    filters.map((f) => f.name),
    ['envoy.filters.http.ext_proc', 'envoy.filters.http.upstream_codec'],
  );
  const extProc = filters[0]?.typed_config as {
    grpc_service: { envoy_grpc: { cluster_name: string }; initial_metadata: unknown };
    failure_mode_allow: boolean;
    request_attributes: string[];
  };
  assert.equal(extProc.grpc_service.envoy_grpc.cluster_name, 'inference-gateway-sidecar');
  assert.deepEqual(extProc.grpc_service.initial_metadata, [{ key: 'x-gateway-ext-proc', value: 'upstream-attempt' }]);
  assert.equal(extProc.failure_mode_allow, false);
  assert.deepEqual(extProc.request_attributes, ['xds.upstream_host_metadata']);
  // Each member endpoint names its cluster: how the sidecar tells an attempt's member.
  const members = (a.load_assignment.endpoints as unknown as Array<{ lb_endpoints: Array<{ metadata: unknown }> }>).map((e) => e.lb_endpoints[0]?.metadata);
  assert.deepEqual(members, Array(3).fill({ filter_metadata: { gateway: { member: 'a' } } }));
  // The template's own demo aggregate is replaced, not kept beside.
  assert.equal(byName('demo-failover'), undefined);
});

void test('renderGatewayConfig rejects bad input and leaves the template untouched', () => {
  const base = { listenerPort: 0, adminPort: 0, sidecarSocket: '/tmp/s.sock' };
  assert.throws(
    () =>
      renderGatewayConfig({
        ...base,
        clusters: [
          { name: 'a', host: '127.0.0.1', port: 1 },
          { name: 'a', host: '127.0.0.1', port: 2 },
        ],
      }),
    /duplicate/,
  );
  assert.throws(() => renderGatewayConfig({ ...base, clusters: [{ name: SIDECAR_CLUSTER, host: '127.0.0.1', port: 1 }] }), /reserved/);
  assert.throws(() => renderGatewayConfig({ ...base, listenerPort: 70000, clusters: [] }), /listenerPort/);
  assert.throws(() => renderGatewayConfig({ ...base, clusters: [{ name: 'a b', host: '127.0.0.1', port: 1 }] }), /invalid cluster name/);
  const a = { name: 'a', host: '127.0.0.1', port: 1 };
  assert.throws(() => renderGatewayConfig({ ...base, clusters: [a, { name: 'agg', aggregate: ['a', 'nope'] }] }), /"nope" is not an upstream cluster/);
  assert.throws(() => renderGatewayConfig({ ...base, clusters: [a, { name: 'agg', aggregate: ['a'] }] }), /at least two/);
  renderGatewayConfig({ ...base, listenerPort: 1234, clusters: [] });
  const again = loadGatewayTemplate() as unknown as Bootstrap;
  assert.equal(again.static_resources.listeners[0]!.address.socket_address.port_value, 8080);
  assert.ok(cluster(again, DEMO_CLUSTER));
});

void test('renderPlainConfig: same listener without ext_proc, one fixed cluster, no sidecar', () => {
  const b = parse(renderPlainConfig({ listenerPort: 18081, adminPort: 19902, cluster: { name: 'up', host: '127.0.0.1', port: 18000 } }));
  assert.equal(b.static_resources.listeners[0]!.address.socket_address.port_value, 18081);
  assert.equal(b.admin.address.socket_address.port_value, 19902);
  const hcm = hcmOf(b);
  assert.deepEqual(
    hcm.http_filters.map((f) => f.name),
    ['envoy.filters.http.router'],
  );
  const route = hcm.route_config.virtual_hosts[0]!.routes[0]!.route;
  assert.equal(route.cluster, 'up');
  assert.equal(route.cluster_header, undefined);
  assert.deepEqual(
    b.static_resources.clusters.map((c) => c.name),
    ['up'],
  );
  // Same HCM settings otherwise (e.g. the local reply mapping and limits).
  const gw = hcmOf(loadGatewayTemplate() as unknown as Bootstrap);
  assert.deepEqual(hcm.local_reply_config, gw.local_reply_config);
  assert.equal(b.static_resources.listeners[0]!.per_connection_buffer_limit_bytes, 2 * 1024 * 1024);
});

void test('every upstream cluster closes idle connections before a 5 s server keep-alive does (issue #14)', () => {
  const doc = YAML.parse(
    renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: '/tmp/s.sock',
      clusters: [
        { name: 'a', host: '127.0.0.1', port: 1 },
        { name: 'b', host: 'models.internal', port: 2 },
      ],
    }),
  ) as {
    static_resources: {
      clusters: Array<{ name: string; typed_extension_protocol_options?: Record<string, { common_http_protocol_options?: { idle_timeout?: string } }> }>;
    };
  };
  for (const name of ['a', 'b']) {
    const c = doc.static_resources.clusters.find((x) => x.name === name);
    const idle = c?.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']?.common_http_protocol_options?.idle_timeout;
    assert.ok(idle !== undefined && Number.parseFloat(idle) < 5, `${name}: idle_timeout ${String(idle)}`);
  }
});
