// Our xDS declarations (protos/envoy/{service/discovery,config/cluster,
// config/endpoint,extensions/upstreams/http}/…, and the core files they use)
// declare only the fields the control plane uses. This proves each of those
// fields matches the upstream Envoy API bundled in @grpc/grpc-js-xds/deps:
// same number, name, type, label, map key and oneof, every enum value the
// same number, and the ADS method the same path and streaming. Then resources
// built by the server decode with the upstream definitions to what we meant.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { assignmentResource, clusterResource, discoveryOf, XDS_PROTOS_DIR, XDS_RESOURCE_PROTOS } from '../../src/control-plane/xds/resources.ts';

const XDS_DEPS = path.resolve(import.meta.dirname, '../../node_modules/@grpc/grpc-js-xds/deps');
// protobufjs ships google/protobuf/descriptor.proto, which the upstream annotations import.
const UPSTREAM_DIRS = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(XDS_DEPS, d)),
  path.resolve(import.meta.dirname, '../../node_modules/protobufjs'),
];
const FILES = [...XDS_RESOURCE_PROTOS, 'envoy/service/discovery/v3/ads.proto'];

function loadRoot(dirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    throw new Error(`${target} not found`);
  };
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

const ours = loadRoot([XDS_PROTOS_DIR]);
const upstream = loadRoot(UPSTREAM_DIRS);

function walk(ns: protobuf.NamespaceBase, out: protobuf.ReflectionObject[] = []): protobuf.ReflectionObject[] {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum || nested instanceof protobuf.Service) out.push(nested);
    if (nested instanceof protobuf.Namespace) walk(nested, out);
  }
  return out;
}

const declared = walk(ours).filter((o) => !o.fullName.startsWith('.google.protobuf.'));

test('the walk sees the xDS declarations (a floor, so an empty walk cannot pass)', () => {
  const names = declared.map((o) => o.fullName);
  for (const n of [
    '.envoy.service.discovery.v3.DiscoveryRequest',
    '.envoy.config.cluster.v3.Cluster',
    '.envoy.config.cluster.v3.OutlierDetection',
    '.envoy.config.endpoint.v3.ClusterLoadAssignment',
    '.envoy.config.core.v3.HealthCheck',
    '.envoy.service.discovery.v3.AggregatedDiscoveryService',
  ]) {
    assert.ok(names.includes(n), n);
  }
});

/** Fields newer than the bundled upstream copy (test/protos/wire-compat.test.ts lists them with their numbers). */
const NEWER_THAN_BUNDLED: Record<string, readonly string[]> = { '.envoy.config.core.v3.SocketAddress': ['network_namespace_filepath'] };

const typeName = (f: protobuf.Field): string => (f.resolvedType === null ? f.type : f.resolvedType.fullName);

for (const o of declared) {
  test(`${o.fullName.slice(1)} matches upstream`, () => {
    const up = upstream.lookup(o.fullName);
    assert.ok(up !== null, `${o.fullName} is not in the upstream API`);
    if (o instanceof protobuf.Type) {
      assert.ok(up instanceof protobuf.Type);
      assert.ok(o.fieldsArray.length > 0 || o.name.endsWith('Options') || o.name === 'AggregatedConfigSource', `${o.fullName} declares no field`);
      for (const f of o.fieldsArray) {
        if (NEWER_THAN_BUNDLED[o.fullName]?.includes(f.name) === true) continue;
        const u: protobuf.Field | undefined = up.fields[f.name];
        assert.ok(u !== undefined, `${o.fullName}.${f.name} is not upstream`);
        assert.equal(f.id, u.id, `${f.name} number`);
        assert.equal(typeName(f), typeName(u), `${f.name} type`);
        assert.equal(f.repeated, u.repeated, `${f.name} repeated`);
        assert.equal(f instanceof protobuf.MapField, u instanceof protobuf.MapField, `${f.name} map`);
        if (f instanceof protobuf.MapField && u instanceof protobuf.MapField) assert.equal(f.keyType, u.keyType);
        assert.equal(f.partOf?.name, u.partOf?.name, `${f.name} oneof`);
      }
    } else if (o instanceof protobuf.Enum) {
      assert.ok(up instanceof protobuf.Enum);
      for (const [name, n] of Object.entries(o.values)) assert.equal(up.values[name], n, `${o.fullName}.${name}`);
    } else if (o instanceof protobuf.Service) {
      assert.ok(up instanceof protobuf.Service);
      for (const m of o.methodsArray) {
        const u: protobuf.Method | undefined = up.methods[m.name];
        assert.ok(u !== undefined, m.name);
        assert.equal(m.requestStream, u.requestStream);
        assert.equal(m.responseStream, u.responseStream);
        assert.equal(m.resolvedRequestType?.fullName, u.resolvedRequestType?.fullName);
        assert.equal(m.resolvedResponseType?.fullName, u.resolvedResponseType?.fullName);
      }
    }
  });
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: false };

test('a served Cluster decodes with the upstream definition to what we built, nested Any included', () => {
  const any = clusterResource({
    name: 'vllm-a',
    endpoints: [],
    healthCheck: { path: '/health', intervalMs: 1500, timeoutMs: 250, unhealthyThreshold: 3, healthyThreshold: 2 },
    outlierDetection: { consecutive5xx: 4, baseEjectionMs: 30_000, maxEjectionPercent: 50 },
  });
  const Cluster = upstream.lookupType('envoy.config.cluster.v3.Cluster');
  const c = Cluster.toObject(Cluster.decode(any.value), TO_OBJECT);
  assert.equal(c.name, 'vllm-a');
  assert.equal(c.type, 'EDS');
  assert.deepEqual(c.eds_cluster_config, { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'vllm-a' });
  assert.deepEqual(c.connect_timeout, { seconds: '2' });
  assert.deepEqual(c.health_checks, [
    {
      timeout: { nanos: 250_000_000 },
      interval: { seconds: '1', nanos: 500_000_000 },
      no_traffic_interval: { seconds: '1', nanos: 500_000_000 },
      unhealthy_threshold: { value: 3 },
      healthy_threshold: { value: 2 },
      http_health_check: { path: '/health' },
    },
  ]);
  assert.deepEqual(c.outlier_detection, { consecutive_5xx: { value: 4 }, base_ejection_time: { seconds: '30' }, max_ejection_percent: { value: 50 } });
  const opts = (c.typed_extension_protocol_options as Record<string, { type_url: string; value: Uint8Array }>)[
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
  ];
  assert.equal(opts?.type_url, 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
  const Http = upstream.lookupType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
  assert.deepEqual(Http.toObject(Http.decode(opts.value), TO_OBJECT), {
    common_http_protocol_options: { idle_timeout: { seconds: '4' } },
    explicit_http_config: { http_protocol_options: {} },
  });
});

test('a served ClusterLoadAssignment decodes with the upstream definition: priorities in order, weights per host', () => {
  const any = assignmentResource({
    name: 'vllm-a',
    endpoints: [
      { host: '10.0.0.2', port: 8000, priority: 1 },
      { host: '10.0.0.1', port: 8000, weight: 3 },
      { host: 'fd00::1', port: 8001, weight: 1 },
    ],
  });
  const Cla = upstream.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment');
  const sa = (address: string, port_value: number) => ({ endpoint: { address: { socket_address: { address, port_value } } } });
  assert.deepEqual(Cla.toObject(Cla.decode(any.value), TO_OBJECT), {
    cluster_name: 'vllm-a',
    endpoints: [
      {
        lb_endpoints: [
          { ...sa('10.0.0.1', 8000), load_balancing_weight: { value: 3 } },
          { ...sa('fd00::1', 8001), load_balancing_weight: { value: 1 } },
        ],
      },
      { priority: 1, lb_endpoints: [sa('10.0.0.2', 8000)] },
    ],
  });
});

test('a cluster with a DNS name among its hosts decodes as STRICT_DNS with its endpoints inline (no EDS config)', () => {
  const any = clusterResource({
    name: 'hosted',
    endpoints: [
      { host: 'vllm.models.svc', port: 8000, weight: 2 },
      { host: '10.0.0.9', port: 8000, priority: 1 },
    ],
  });
  const Cluster = upstream.lookupType('envoy.config.cluster.v3.Cluster');
  const c = Cluster.toObject(Cluster.decode(any.value), TO_OBJECT);
  assert.equal(c.type, 'STRICT_DNS');
  assert.equal(c.dns_lookup_family, 'V4_PREFERRED');
  assert.equal(c.eds_cluster_config, undefined);
  const sa = (address: string, port_value: number) => ({ endpoint: { address: { socket_address: { address, port_value } } } });
  assert.deepEqual(c.load_assignment, {
    cluster_name: 'hosted',
    endpoints: [
      { lb_endpoints: [{ ...sa('vllm.models.svc', 8000), load_balancing_weight: { value: 2 } }] },
      { priority: 1, lb_endpoints: [sa('10.0.0.9', 8000)] },
    ],
  });
  assert.equal(discoveryOf({ name: 'ips', endpoints: [{ host: '10.0.0.1', port: 80 }] }), 'EDS');
});
