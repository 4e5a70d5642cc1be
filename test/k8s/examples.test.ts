// The examples in k8s/examples (processor as a network service, Istio
// EnvoyFilter + ext_authz, Envoy Gateway EnvoyExtensionPolicy):
//   - every document validates against the schema of its kind (Kubernetes,
//     Istio, Gateway API and Envoy Gateway models); a kind without a schema
//     fails the test;
//   - the Envoy config inside the EnvoyFilter is accepted by the real Envoy
//     (`envoy --mode validate`) and equals envoy/gateway.yaml's ext_proc
//     settings; the EnvoyExtensionPolicy says the same in its own terms;
//   - the cross-references hold (Service ↔ cluster / backendRef, ports,
//     selectors, the routing header and its values, the embedded configs);
//   - the sidecar really works as a TCP network service behind an Envoy
//     whose ext_proc filter is the EnvoyFilter's, verbatim.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { Gateway as IstioGateway } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway';
import { VirtualService } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import { AuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { GatewayClass } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { EnvoyExtensionPolicy } from '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy';
import { ClientTrafficPolicy } from '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy';
import { BackendTrafficPolicy } from '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy';
import { HTTPRouteFilter } from '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter';
import OpenAI from 'openai';
import { ConfigSchema } from '../../src/config/schema.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { loadGatewayTemplate, renderGatewayConfig, SIDECAR_CLUSTER, TARGET_CLUSTER_HEADER } from '../../src/envoy/config.ts';
import { FALLBACK_HEADER } from '../../src/pipeline/fallback.ts';
import { startEnvoy } from '../../src/envoy/process.ts';
import { startDemoUpstream } from '../../src/demo/upstream.ts';
import { ERROR_CODES } from '../../src/pipeline/errors.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { envoyBinary } from '../envoy/helpers.ts';
import { writeGatewayFiles } from '../helpers/fixtures.ts';
import { startSidecarProcess } from '../helpers/stack.ts';
import { isObj, obj, objs, str, type Obj } from './shape.ts';

const EXAMPLES = join(PROJECT_ROOT, 'k8s', 'examples');
const run = promisify(execFile);

// ---------------------------------------------------------------- plumbing

interface Doc {
  /** Path relative to k8s/examples. */
  file: string;
  doc: Obj;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

function loadExamples(): Doc[] {
  const docs: Doc[] = [];
  for (const file of yamlFiles(EXAMPLES)) {
    for (const d of YAML.parseAllDocuments(readFileSync(file, 'utf8'))) {
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        `${file} must be valid YAML`,
      );
      const v: unknown = d.toJS();
      if (v !== null) docs.push({ file: relative(EXAMPLES, file), doc: obj(v, `a document in ${file}`) });
    }
  }
  return docs;
}

const ALL = loadExamples();

function meta(d: Obj): { name: string; namespace: string | undefined } {
  const m = obj(d.metadata, 'metadata');
  return { name: str(m.name, 'metadata.name'), namespace: m.namespace === undefined ? undefined : str(m.namespace, 'metadata.namespace') };
}
/** The one document of this kind (and name, folder, apiVersion if given): more or fewer is a failure. */
function find(kind: string, opts: { name?: string; dir?: string; apiVersion?: string } = {}): Obj {
  const hits = ALL.filter(
    ({ file, doc }) =>
      doc.kind === kind &&
      (opts.apiVersion === undefined || doc.apiVersion === opts.apiVersion) &&
      (opts.dir === undefined || file.startsWith(`${opts.dir}/`)) &&
      (opts.name === undefined || meta(doc).name === opts.name),
  );
  assert.equal(
    hits.length,
    1,
    `exactly one ${kind}${opts.name === undefined ? '' : ` "${opts.name}"`}${opts.dir === undefined ? '' : ` in ${opts.dir}/`} expected, found ${hits.length}`,
  );
  return hits[0]!.doc;
}

// ---------------------------------------------------------------- schemas

type Validate = (doc: Obj) => void;
/** A model class's validate() for a plain document (the classes copy the data they are given). */
function schema<T>(Model: new (data: T) => { validate(): void }): Validate {
  return (doc) => new Model(doc as unknown as T).validate();
}

/** apiVersion/kind → schema. Anything not listed here fails: no kind goes unchecked. */
const SCHEMAS: ReadonlyMap<string, Validate> = new Map([
  ['v1/ConfigMap', schema(ConfigMap)],
  ['v1/Service', schema(Service)],
  ['apps/v1/Deployment', schema(Deployment)],
  ['networking.k8s.io/v1/NetworkPolicy', schema(NetworkPolicy)],
  ['networking.istio.io/v1alpha3/EnvoyFilter', schema(EnvoyFilter)],
  ['networking.istio.io/v1beta1/Gateway', schema(IstioGateway)],
  ['networking.istio.io/v1beta1/VirtualService', schema(VirtualService)],
  ['security.istio.io/v1/AuthorizationPolicy', schema(AuthorizationPolicy)],
  ['gateway.networking.k8s.io/v1/GatewayClass', schema(GatewayClass)],
  ['gateway.networking.k8s.io/v1/Gateway', schema(Gateway)],
  ['gateway.networking.k8s.io/v1/HTTPRoute', schema(HTTPRoute)],
  ['gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy', schema(EnvoyExtensionPolicy)],
  ['gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy', schema(ClientTrafficPolicy)],
  ['gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy', schema(BackendTrafficPolicy)],
  ['gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter', schema(HTTPRouteFilter)],
]);

function validateDoc(doc: Obj): void {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const validate = SCHEMAS.get(key);
  if (validate === undefined) throw new Error(`no schema for ${key}: add its model to SCHEMAS`);
  validate(doc);
}

test('every document under k8s/examples validates against the schema of its kind', () => {
  assert.ok(ALL.length >= 15, `expected the example documents, found ${ALL.length}`);
  for (const dir of ['processor', 'istio', 'envoy-gateway']) {
    assert.ok(
      ALL.some((d) => d.file.startsWith(`${dir}/`)),
      `k8s/examples/${dir} must hold documents`,
    );
  }
  const failures: string[] = [];
  for (const { file, doc } of ALL) {
    try {
      validateDoc(doc);
    } catch (err) {
      failures.push(`${file}: ${String(doc.kind)} ${meta(doc).name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('broken documents are rejected: wrong enum values, wrong types, unknown kinds', () => {
  const ef = structuredClone(find('EnvoyFilter'));
  objs(obj(ef.spec, 'spec').configPatches, 'configPatches')[0]!.applyTo = 'HTTP_FILTERS';
  assert.throws(() => validateDoc(ef), /applyTo/);

  const policy = structuredClone(find('EnvoyExtensionPolicy'));
  const mode = obj(objs(obj(policy.spec, 'spec').extProc, 'extProc')[0]!.processingMode, 'processingMode');
  obj(mode.request, 'request').body = 'Bufferd';
  assert.throws(() => validateDoc(policy), /body/);

  const svc = structuredClone(find('Service', { name: 'inference-gateway-processor' }));
  objs(obj(svc.spec, 'spec').ports, 'ports')[0]!.port = 'nine thousand';
  assert.throws(() => validateDoc(svc), /port/);

  const route = structuredClone(find('HTTPRoute'));
  objs(obj(route.spec, 'spec').rules, 'rules')[0]!.matches = [{ headers: [{ type: 'Exact', value: 'x' }] }];
  assert.throws(() => validateDoc(route), /name/);

  assert.throws(
    () => validateDoc({ apiVersion: 'networking.istio.io/v1', kind: 'Telemetry', metadata: { name: 'x' } }),
    /no schema for networking\.istio\.io\/v1\/Telemetry/,
  );
});

// ---------------------------------------------------------------- envoy/gateway.yaml

interface BaseEnvoy {
  extProc: Obj;
  routeConfig: Obj;
  route: Obj;
  listener: Obj;
  hcm: Obj;
}

/** envoy/gateway.yaml's listener, HCM, ext_proc filter config and catch-all route. */
function baseEnvoy(): BaseEnvoy {
  const t = loadGatewayTemplate();
  const listener = objs(obj(t.static_resources, 'static_resources').listeners, 'listeners').find((l) => l.name === 'gateway');
  assert.ok(listener !== undefined);
  const hcm = obj(objs(objs(listener.filter_chains, 'filter_chains')[0]!.filters, 'filters')[0]!.typed_config, 'HCM');
  const filters = objs(hcm.http_filters, 'http_filters');
  const extProc = obj(filters.find((f) => f.name === 'envoy.filters.http.ext_proc')?.typed_config, 'ext_proc typed_config');
  const routeConfig = obj(hcm.route_config, 'route_config');
  // The catch-all route (the fallback route before it matches on the sidecar's x-gateway-fallback header).
  const route = objs(objs(routeConfig.virtual_hosts, 'virtual_hosts')[0]!.routes, 'routes').find((r) => obj(r.match, 'match').headers === undefined)!;
  return { extProc, routeConfig, route: obj(route.route, 'route.route'), listener, hcm };
}

// ---------------------------------------------------------------- processor

interface Processor {
  config: ReturnType<typeof ConfigSchema.parse>;
  routingText: string;
  deployment: Obj;
  podLabels: Record<string, string>;
  container: Obj;
  service: Obj;
  servicePort: Obj;
}

function containerPort(container: Obj, name: string): number {
  const p = objs(container.ports, 'ports').find((x) => x.name === name);
  assert.ok(p !== undefined, `container port "${name}" must exist`);
  return p.containerPort as number;
}

function processor(): Processor {
  const cm = find('ConfigMap', { name: 'inference-gateway-processor' });
  const data = obj(cm.data, 'ConfigMap data');
  const parsed = ConfigSchema.safeParse(YAML.parse(str(data['gateway.yaml'], 'gateway.yaml')));
  assert.ok(parsed.success, `embedded gateway.yaml must pass ConfigSchema: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
  const deployment = find('Deployment', { name: 'inference-gateway-processor' });
  const template = obj(obj(deployment.spec, 'spec').template, 'template');
  const podLabels = obj(obj(template.metadata, 'template.metadata').labels, 'pod labels') as Record<string, string>;
  const container = objs(obj(template.spec, 'pod spec').containers, 'containers').find((c) => c.name === 'sidecar');
  assert.ok(container !== undefined, 'container "sidecar" must exist');
  const service = find('Service', { name: 'inference-gateway-processor' });
  const servicePort = objs(obj(service.spec, 'spec').ports, 'ports').find((p) => p.name === 'grpc');
  assert.ok(servicePort !== undefined, 'Service port "grpc" must exist');
  return { config: parsed.data, routingText: str(data['routing.yaml'], 'routing.yaml'), deployment, podLabels, container, service, servicePort };
}

function processorFqdn(p: Processor): string {
  const m = meta(p.service);
  return `${m.name}.${m.namespace ?? 'default'}.svc.cluster.local`;
}

/** Cluster names the routing snapshot puts in the routing header. */
function snapshotClusters(p: Processor): Set<string> {
  const snap = parseSnapshot(p.routingText, 'k8s/examples/processor routing.yaml');
  const out = new Set<string>();
  for (const model of snap.models.values()) {
    for (const route of [model, ...model.overrides.values()]) for (const d of route.targets) out.add(d.cluster);
  }
  return out;
}

test('processor: the embedded gateway.yaml, the container, the Service and the config volume agree', () => {
  const p = processor();
  const grpc = p.config.server.grpc;
  assert.equal(grpc.socket, '', 'no Unix socket: the proxy is in another pod');
  assert.equal(grpc.host, '0.0.0.0', "the gRPC server must listen on the pod's interfaces");
  assert.equal(grpc.port, containerPort(p.container, 'grpc'), 'server.grpc.port = containerPort "grpc"');
  assert.equal(p.config.server.admin.port, containerPort(p.container, 'metrics'), 'server.admin.port = containerPort "metrics"');
  assert.equal(p.config.auth.apiKeys.length, 0, 'no API keys committed in an example');

  // The Service reaches the gRPC port, by name or number, over HTTP/2.
  const target = p.servicePort.targetPort;
  assert.equal(typeof target === 'string' ? containerPort(p.container, target) : target, grpc.port, 'Service targetPort = the gRPC port');
  assert.equal(p.servicePort.appProtocol, 'grpc');
  const selector = obj(obj(p.service.spec, 'spec').selector, 'Service selector');
  for (const [k, v] of Object.entries(selector)) assert.equal(p.podLabels[k], v, `Service selector ${k}=${String(v)} must match the pod`);
  const depSelector = obj(obj(obj(p.deployment.spec, 'spec').selector, 'selector').matchLabels, 'matchLabels');
  for (const [k, v] of Object.entries(depSelector)) assert.equal(p.podLabels[k], v, `Deployment selector ${k} must match the pod template`);

  // Config files: the ConfigMap is mounted where the command and gateway.yaml look.
  const podSpec = obj(obj(obj(p.deployment.spec, 'spec').template, 'template').spec, 'pod spec');
  const mounts = objs(p.container.volumeMounts, 'volumeMounts');
  const volumes = objs(podSpec.volumes, 'volumes');
  const configVolume = volumes.find((v) => isObj(v.configMap) && v.configMap.name === 'inference-gateway-processor');
  assert.ok(configVolume !== undefined, 'the ConfigMap must be a volume');
  const configMount = mounts.find((m) => m.name === configVolume.name);
  assert.ok(configMount !== undefined, 'the config volume must be mounted');
  const dir = str(configMount.mountPath, 'mountPath');
  const command = (p.container.command as string[]).join(' ');
  assert.ok(command.includes(`--config ${posix.join(dir, 'gateway.yaml')}`), `the command must read ${dir}/gateway.yaml: ${command}`);
  assert.equal(p.config.routing.snapshotFile, posix.join(dir, 'routing.yaml'));
  // The audit file and signing key must be on a writable mount (the config mount is read-only).
  for (const file of [p.config.audit.file, p.config.audit.signingKeyFile]) {
    const m = mounts.find((x) => x.readOnly !== true && file.startsWith(`${str(x.mountPath, 'mountPath')}/`));
    assert.ok(m !== undefined, `${file} must be on a writable volume`);
  }
  assert.ok(snapshotClusters(p).size > 0, 'the routing snapshot parses and names clusters');
});

// ---------------------------------------------------------------- Istio

function envoyFilterPatch(applyTo: string): Obj {
  const ef = find('EnvoyFilter', { dir: 'istio' });
  const patches = objs(obj(ef.spec, 'spec').configPatches, 'configPatches').filter((c) => c.applyTo === applyTo);
  assert.equal(patches.length, 1, `one ${applyTo} patch expected`);
  return patches[0]!;
}

function istioExtProc(): { patch: Obj; name: string; typedConfig: Obj } {
  const patch = envoyFilterPatch('HTTP_FILTER');
  const value = obj(obj(patch.patch, 'patch').value, 'patch.value');
  return { patch, name: str(value.name, 'filter name'), typedConfig: obj(value.typed_config, 'typed_config') };
}

test("Istio: the EnvoyFilter inserts ext_proc before the router with envoy/gateway.yaml's settings", () => {
  const { patch, name, typedConfig } = istioExtProc();
  const base = baseEnvoy();
  assert.equal(name, 'envoy.filters.http.ext_proc');
  assert.equal(obj(patch.patch, 'patch').operation, 'INSERT_BEFORE');
  const match = obj(patch.match, 'match');
  assert.equal(match.context, 'GATEWAY');
  const filter = obj(obj(obj(match.listener, 'listener').filterChain, 'filterChain').filter, 'filter');
  assert.equal(filter.name, 'envoy.filters.network.http_connection_manager');
  assert.equal(obj(filter.subFilter, 'subFilter').name, 'envoy.filters.http.router');

  // Everything but the gRPC target is envoy/gateway.yaml's filter, field for field.
  const { grpc_service: _ours, ...mine } = typedConfig;
  const { grpc_service: _theirs, ...reference } = base.extProc;
  assert.deepEqual(mine, reference);

  // The ROUTE_CONFIGURATION patch carries the same internal-only routing header, and drops the same headers upstream.
  const rc = envoyFilterPatch('ROUTE_CONFIGURATION');
  assert.equal(obj(rc.match, 'match').context, 'GATEWAY');
  assert.equal(obj(rc.patch, 'patch').operation, 'MERGE');
  assert.deepEqual(obj(obj(rc.patch, 'patch').value, 'value').internal_only_headers, base.routeConfig.internal_only_headers);
  assert.deepEqual(obj(obj(rc.patch, 'patch').value, 'value').request_headers_to_remove, base.routeConfig.request_headers_to_remove);
  assert.deepEqual(base.routeConfig.internal_only_headers, [TARGET_CLUSTER_HEADER, FALLBACK_HEADER]);
});

test('Istio: the ext_proc cluster, selectors, NetworkPolicy and routes refer to what exists', () => {
  const p = processor();
  const { typedConfig } = istioExtProc();
  const cluster = obj(obj(typedConfig.grpc_service, 'grpc_service').envoy_grpc, 'envoy_grpc').cluster_name;
  assert.equal(cluster, `outbound|${String(p.servicePort.port)}||${processorFqdn(p)}`, "Istio's cluster name for the processor Service port");
  assert.equal(
    obj(obj(typedConfig.grpc_service, 'grpc_service').envoy_grpc, 'envoy_grpc').authority,
    processorFqdn(p),
    'a valid :authority (the cluster name has "|")',
  );

  const ef = find('EnvoyFilter', { dir: 'istio' });
  const gatewayLabels = obj(obj(obj(ef.spec, 'spec').workloadSelector, 'workloadSelector').labels, 'labels');
  const gw = find('Gateway', { dir: 'istio', apiVersion: 'networking.istio.io/v1beta1' });
  assert.deepEqual(obj(gw.spec, 'spec').selector, gatewayLabels, 'the Gateway and the EnvoyFilter select the same proxies');
  assert.equal(meta(ef).namespace, meta(gw).namespace, "the EnvoyFilter lives in the gateway's namespace");

  // NetworkPolicy: the processor pods, its gRPC port, from the gateway pods.
  const np = find('NetworkPolicy', { dir: 'istio' });
  checkNetworkPolicy(np, p, gatewayLabels, meta(ef).namespace);

  // VirtualService: bound to the Gateway; header rules cover exactly the snapshot's clusters.
  const vs = find('VirtualService', { dir: 'istio' });
  const spec = obj(vs.spec, 'spec');
  assert.deepEqual(spec.gateways, [`${meta(gw).namespace}/${meta(gw).name}`]);
  const values = new Set<string>();
  const rules = objs(spec.http, 'http');
  for (const rule of rules.filter((r) => r.match !== undefined)) {
    const headers = obj(objs(rule.match, 'match')[0]!.headers, 'headers');
    assert.deepEqual(Object.keys(headers), [TARGET_CLUSTER_HEADER], "rules match only the sidecar's routing header");
    values.add(str(obj(headers[TARGET_CLUSTER_HEADER], 'header match').exact, 'exact'));
    assert.deepEqual(obj(obj(rule.headers, 'headers').request, 'request').remove, [TARGET_CLUSTER_HEADER], 'the header is removed before the upstream');
    assert.equal(rule.timeout, baseEnvoy().route.timeout, 'route timeout as in envoy/gateway.yaml');
    const retry = obj(baseEnvoy().route.retry_policy, 'envoy/gateway.yaml retry_policy');
    assert.deepEqual(rule.retries, { attempts: retry.num_retries, retryOn: retry.retry_on }, 'retries only where envoy/gateway.yaml retries');
  }
  assert.deepEqual([...values].sort(), [...snapshotClusters(p)].sort());
  // The catch-all is last and answers in the gateway's JSON error shape.
  const last = rules.at(-1)!;
  assert.equal(last.match, undefined, 'the last rule is the catch-all');
  const direct = obj(last.directResponse, 'directResponse');
  checkErrorBody(str(obj(direct.body, 'body').string, 'body.string'), direct.status as number);
  assert.equal(obj(obj(obj(last.headers, 'headers').response, 'response').set, 'set')['content-type'], 'application/json');
});

test('Istio: the ext_authz provider in ext-authz.yaml points at the processor Service', () => {
  // The MeshConfig part is a comment (it belongs to Istio's install), so read it as YAML from there.
  const text = readFileSync(join(EXAMPLES, 'istio', 'ext-authz.yaml'), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^#\s+meshConfig:\s*$/.test(l));
  assert.ok(start >= 0, 'ext-authz.yaml documents the meshConfig');
  const block: string[] = [];
  for (const l of lines.slice(start)) {
    if (!/^# {4}/.test(l)) break;
    block.push(l.slice(5));
  }
  const mesh = obj(obj(YAML.parse(block.join('\n')), 'meshConfig block').meshConfig, 'meshConfig');
  const provider = obj(objs(mesh.extensionProviders, 'extensionProviders')[0]!.envoyExtAuthzGrpc, 'envoyExtAuthzGrpc');
  const p = processor();
  assert.equal(provider.service, processorFqdn(p));
  assert.equal(provider.port, p.servicePort.port);
  assert.equal(provider.failOpen, false);
  // The provider's name is the one the AuthorizationPolicy uses.
  const ap = find('AuthorizationPolicy', { dir: 'istio' });
  assert.equal(obj(obj(ap.spec, 'spec').provider, 'provider').name, objs(mesh.extensionProviders, 'extensionProviders')[0]!.name);
});

function checkNetworkPolicy(np: Obj, p: Processor, fromLabels: Obj, fromNamespace: string | undefined): void {
  const spec = obj(np.spec, 'spec');
  assert.equal(meta(np).namespace, meta(p.service).namespace);
  const sel = obj(obj(spec.podSelector, 'podSelector').matchLabels, 'matchLabels');
  for (const [k, v] of Object.entries(sel)) assert.equal(p.podLabels[k], v, `NetworkPolicy podSelector ${k} must match the processor pods`);
  const grpcRule = objs(spec.ingress, 'ingress').find((r) => objs(r.ports, 'ports').some((x) => x.port === p.config.server.grpc.port));
  assert.ok(grpcRule !== undefined, 'a rule must admit the gRPC port');
  const peer = objs(grpcRule.from, 'from')[0]!;
  assert.deepEqual(obj(peer.podSelector, 'podSelector').matchLabels, fromLabels, 'only the proxy pods reach the gRPC port');
  assert.deepEqual(obj(peer.namespaceSelector, 'namespaceSelector').matchLabels, { 'kubernetes.io/metadata.name': fromNamespace });
}

function checkErrorBody(body: string, status: number): void {
  const parsed = obj(JSON.parse(body), 'error body');
  const error = obj(parsed.error, 'error');
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  const code = str(error.code, 'code') as keyof typeof ERROR_CODES;
  assert.ok(code in ERROR_CODES, `${code} must be a registered error code`);
  assert.equal(ERROR_CODES[code].status, status);
  assert.equal(ERROR_CODES[code].type, error.type);
}

// ---------------------------------------------------------------- Envoy validates the EnvoyFilter's pieces

/**
 * A bootstrap built around the EnvoyFilter's pieces, the way Istio assembles
 * them: an HCM whose filters are the patch's ext_proc + router, the route
 * config patch merged in, and a stand-in for Istio's generated HTTP/2 cluster.
 */
function istioBootstrap(typedConfig: Obj, processorPort: number): Obj {
  const cluster = str(obj(obj(typedConfig.grpc_service, 'grpc_service').envoy_grpc, 'envoy_grpc').cluster_name, 'cluster_name');
  const rc = obj(obj(envoyFilterPatch('ROUTE_CONFIGURATION').patch, 'patch').value, 'value');
  return {
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'gateway',
                    use_remote_address: true,
                    route_config: {
                      name: 'gateway',
                      ...rc,
                      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 503 } }] }],
                    },
                    http_filters: [
                      { name: 'envoy.filters.http.ext_proc', typed_config: typedConfig },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: cluster,
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: cluster,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: processorPort } } } }] }],
          },
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
      ],
    },
  };
}

async function envoyValidate(bin: string, config: Obj): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'igw-examples-'));
  try {
    const file = join(dir, 'envoy.yaml');
    await writeFile(file, YAML.stringify(config));
    try {
      const r = await run(bin, ['--mode', 'validate', '-c', file, '--log-level', 'error'], { timeout: 60_000 });
      return { ok: true, output: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { ok: false, output: `${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("Istio: Envoy accepts the EnvoyFilter's ext_proc config (envoy --mode validate), and rejects a broken one", async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const { typedConfig } = istioExtProc();
  const good = await envoyValidate(bin, istioBootstrap(typedConfig, 9000));
  assert.ok(good.ok, `envoy --mode validate failed:\n${good.output}`);

  // The same bootstrap with one wrong field must fail: the check above can fail.
  const broken = structuredClone(typedConfig);
  obj(broken.processing_mode, 'processing_mode').request_body_mode = 'BUFFERD';
  const bad = await envoyValidate(bin, istioBootstrap(broken, 9000));
  assert.ok(!bad.ok, 'a wrong processing mode must be rejected');
  assert.match(bad.output, /BUFFERD|request_body_mode/);
});

// ---------------------------------------------------------------- Envoy Gateway

const BODY_MODES: Readonly<Record<string, string>> = {
  Buffered: 'BUFFERED',
  Streamed: 'STREAMED',
  BufferedPartial: 'BUFFERED_PARTIAL',
  FullDuplexStreamed: 'FULL_DUPLEX_STREAMED',
};

/** Kubernetes quantities as used here: plain bytes, Ki, Mi. */
function bytes(q: unknown): number {
  const m = /^(\d+)(Ki|Mi)?$/.exec(String(q));
  assert.ok(m !== null, `unsupported quantity ${String(q)}`);
  return Number(m[1]) * (m[2] === 'Mi' ? 1024 * 1024 : m[2] === 'Ki' ? 1024 : 1);
}

test("Envoy Gateway: the EnvoyExtensionPolicy states envoy/gateway.yaml's ext_proc settings", () => {
  const { extProc: ref, listener, hcm } = baseEnvoy();
  const policy = find('EnvoyExtensionPolicy', { dir: 'envoy-gateway' });
  const entries = objs(obj(policy.spec, 'spec').extProc, 'extProc');
  assert.equal(entries.length, 1);
  const ep = entries[0]!;
  assert.equal(ep.failOpen, ref.failure_mode_allow);
  assert.equal(ep.messageTimeout, ref.message_timeout);
  const mode = obj(ep.processingMode, 'processingMode');
  assert.equal(mode.allowModeOverride, ref.allow_mode_override);
  const pm = obj(ref.processing_mode, 'processing_mode');
  // Envoy Gateway: a present request/response block means headers SEND; trailers are never sent.
  assert.equal(pm.request_header_mode, 'SEND');
  assert.equal(pm.response_header_mode, 'SEND');
  assert.equal(pm.request_trailer_mode, 'SKIP');
  assert.equal(pm.response_trailer_mode, 'SKIP');
  const request = obj(mode.request, 'request');
  const response = obj(mode.response, 'response');
  assert.equal(BODY_MODES[str(request.body, 'request.body')], pm.request_body_mode);
  assert.equal(BODY_MODES[str(response.body, 'response.body')], pm.response_body_mode);
  assert.deepEqual(request.attributes, ref.request_attributes);
  assert.equal(response.attributes, undefined, 'envoy/gateway.yaml sends no response attributes');
  // Unknown fields are not rejected by the models: pin the keys.
  assert.deepEqual(Object.keys(ep).sort(), ['backendRefs', 'failOpen', 'messageTimeout', 'processingMode']);
  assert.deepEqual(Object.keys(mode).sort(), ['allowModeOverride', 'request', 'response']);

  // The listener limits that buffered bodies need.
  const ctp = find('ClientTrafficPolicy', { dir: 'envoy-gateway' });
  const cspec = obj(ctp.spec, 'spec');
  assert.equal(bytes(obj(cspec.connection, 'connection').bufferLimit), listener.per_connection_buffer_limit_bytes);
  const h2 = obj(hcm.http2_protocol_options, 'http2_protocol_options');
  const egH2 = obj(cspec.http2, 'http2');
  assert.equal(bytes(egH2.initialStreamWindowSize), h2.initial_stream_window_size);
  assert.equal(bytes(egH2.initialConnectionWindowSize), h2.initial_connection_window_size);
  assert.equal(egH2.maxConcurrentStreams, h2.max_concurrent_streams);

  // Fallback: the same retry conditions and outlier detection as envoy/gateway.yaml.
  const btp = obj(find('BackendTrafficPolicy', { dir: 'envoy-gateway' }).spec, 'spec');
  const retry = obj(baseEnvoy().route.retry_policy, 'retry_policy');
  const egRetry = obj(btp.retry, 'retry');
  assert.equal(egRetry.numRetries, retry.num_retries);
  assert.deepEqual(obj(egRetry.retryOn, 'retryOn').triggers, str(retry.retry_on, 'retry_on').split(','));
  const upstream = objs(obj(loadGatewayTemplate().static_resources, 'static_resources').clusters, 'clusters').find((c) => c.name === 'demo-upstream');
  const od = obj(upstream?.outlier_detection, 'outlier_detection');
  assert.deepEqual(obj(btp.healthCheck, 'healthCheck').passive, {
    consecutive5XxErrors: od.consecutive_5xx,
    consecutiveGatewayErrors: od.consecutive_gateway_failure,
    interval: od.interval,
    baseEjectionTime: od.base_ejection_time,
    maxEjectionPercent: od.max_ejection_percent,
  });
  assert.deepEqual(Object.keys(btp).sort(), ['healthCheck', 'retry', 'targetRefs']);
});

test('Envoy Gateway: policy, routes, filter and NetworkPolicy refer to what exists', () => {
  const p = processor();
  const dir = 'envoy-gateway';
  const gatewayClass = find('GatewayClass', { dir });
  const gateway = find('Gateway', { dir, apiVersion: 'gateway.networking.k8s.io/v1' });
  assert.equal(obj(gateway.spec, 'spec').gatewayClassName, meta(gatewayClass).name);
  assert.equal(obj(gatewayClass.spec, 'spec').controllerName, 'gateway.envoyproxy.io/gatewayclass-controller');
  const gwRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: meta(gateway).name };

  for (const kind of ['EnvoyExtensionPolicy', 'ClientTrafficPolicy']) {
    const pol = find(kind, { dir });
    assert.deepEqual(obj(pol.spec, 'spec').targetRefs, [gwRef], `${kind} targets the Gateway`);
    assert.equal(meta(pol).namespace, meta(gateway).namespace);
  }

  const modelRoute = find('HTTPRoute', { dir });
  const btp = find('BackendTrafficPolicy', { dir });
  assert.deepEqual(
    obj(btp.spec, 'spec').targetRefs,
    [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: meta(modelRoute).name }],
    'the failover policy targets the model route',
  );
  assert.equal(meta(btp).namespace, meta(modelRoute).namespace);

  // backendRef → the processor Service's gRPC port, same namespace (no ReferenceGrant).
  const ep = objs(obj(find('EnvoyExtensionPolicy', { dir }).spec, 'spec').extProc, 'extProc')[0]!;
  const refs = objs(ep.backendRefs, 'backendRefs');
  assert.equal(refs.length, 1);
  assert.equal(refs[0]!.name, meta(p.service).name);
  assert.equal(refs[0]!.port, p.servicePort.port);
  assert.equal(refs[0]!.namespace ?? meta(find('EnvoyExtensionPolicy', { dir })).namespace, meta(p.service).namespace);

  // HTTPRoute: attached to the Gateway; header rules cover exactly the snapshot's clusters.
  const route = find('HTTPRoute', { dir });
  const rspec = obj(route.spec, 'spec');
  assert.deepEqual(rspec.parentRefs, [{ name: meta(gateway).name }]);
  assert.equal(meta(route).namespace, meta(gateway).namespace);
  const rules = objs(rspec.rules, 'rules');
  const values = new Set<string>();
  for (const rule of rules.filter((r) => objs(r.matches, 'matches').some((m) => m.headers !== undefined))) {
    const headers = objs(objs(rule.matches, 'matches')[0]!.headers, 'headers');
    assert.equal(headers.length, 1);
    assert.equal(headers[0]!.name, TARGET_CLUSTER_HEADER);
    assert.equal(headers[0]!.type, 'Exact');
    values.add(str(headers[0]!.value, 'value'));
    const modifier = objs(rule.filters, 'filters').find((f) => f.type === 'RequestHeaderModifier');
    assert.deepEqual(obj(modifier?.requestHeaderModifier, 'requestHeaderModifier').remove, [TARGET_CLUSTER_HEADER]);
    assert.equal(obj(rule.timeouts, 'timeouts').request, baseEnvoy().route.timeout);
    assert.equal(objs(rule.backendRefs, 'backendRefs').length, 1);
  }
  assert.deepEqual([...values].sort(), [...snapshotClusters(p)].sort());

  // The catch-all's ExtensionRef → the HTTPRouteFilter, whose body is our error shape.
  const last = rules.at(-1)!;
  const ext = objs(last.filters, 'filters').find((f) => f.type === 'ExtensionRef');
  const extRef = obj(ext?.extensionRef, 'extensionRef');
  assert.equal(extRef.group, 'gateway.envoyproxy.io');
  assert.equal(extRef.kind, 'HTTPRouteFilter');
  const filter = find('HTTPRouteFilter', { dir, name: str(extRef.name, 'extensionRef.name') });
  assert.equal(meta(filter).namespace, meta(route).namespace);
  const direct = obj(obj(filter.spec, 'spec').directResponse, 'directResponse');
  assert.equal(direct.contentType, 'application/json');
  checkErrorBody(str(obj(direct.body, 'body').inline, 'inline'), direct.statusCode as number);

  checkNetworkPolicy(
    find('NetworkPolicy', { dir }),
    p,
    {
      'gateway.envoyproxy.io/owning-gateway-name': meta(gateway).name,
      'gateway.envoyproxy.io/owning-gateway-namespace': meta(gateway).namespace,
    },
    'envoy-gateway-system',
  );
});

// ---------------------------------------------------------------- end to end over TCP

test("the sidecar as a TCP network service behind Envoy with the EnvoyFilter's ext_proc config", async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const p = processor();
  const { typedConfig } = istioExtProc();
  const clusterName = str(obj(obj(typedConfig.grpc_service, 'grpc_service').envoy_grpc, 'envoy_grpc').cluster_name, 'cluster_name');

  const upstream = await startDemoUpstream({ port: 0 });
  // The example's server.grpc settings, on loopback and port 0: the sidecar reports the port it got.
  const files = writeGatewayFiles({ config: { server: { grpc: { socket: p.config.server.grpc.socket, host: '127.0.0.1', port: 0 } } } });
  const sidecar = await startSidecarProcess(files.configFile);
  t.after(async () => {
    await sidecar.stop();
    await upstream.close();
  });
  const grpcPort = sidecar.tcpPort;
  assert.ok(grpcPort !== null && grpcPort > 0, `the sidecar reports its gRPC TCP port (${String(grpcPort)})`);

  // envoy/gateway.yaml for the stack, with its sidecar cluster moved to TCP
  // under Istio's name and its ext_proc filter replaced by the EnvoyFilter's.
  const config = obj(
    YAML.parse(
      renderGatewayConfig({
        listenerPort: 0,
        adminPort: 0,
        sidecarSocket: files.socketPath,
        clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: upstream.port }],
      }),
    ),
    'rendered config',
  );
  const sr = obj(config.static_resources, 'static_resources');
  const sidecarCluster = objs(sr.clusters, 'clusters').find((c) => c.name === SIDECAR_CLUSTER);
  assert.ok(sidecarCluster !== undefined);
  sidecarCluster.name = clusterName;
  sidecarCluster.load_assignment = {
    cluster_name: clusterName,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: grpcPort } } } }] }],
  };
  const listener = objs(sr.listeners, 'listeners').find((l) => l.name === 'gateway');
  const hcm = obj(objs(objs(listener?.filter_chains, 'filter_chains')[0]!.filters, 'filters')[0]!.typed_config, 'HCM');
  const extProc = objs(hcm.http_filters, 'http_filters').find((f) => f.name === 'envoy.filters.http.ext_proc');
  assert.ok(extProc !== undefined);
  extProc.typed_config = typedConfig;

  const envoyLog: string[] = [];
  const envoy = await startEnvoy({ bin, workDir: join(files.dir, 'envoy'), configYaml: YAML.stringify(config), log: (l) => envoyLog.push(l) });
  t.after(() => envoy.stop());
  const url = `http://127.0.0.1:${await envoy.listenerPort()}`;

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: files.keys.alice!, maxRetries: 0, timeout: 20_000 });
  const done = await client.chat.completions.create({ model: 'gpt-demo', messages: [{ role: 'user', content: 'Hello over TCP' }] }).catch((err: unknown) => {
    throw new Error(`request through Envoy failed\n--- envoy\n${envoyLog.slice(-40).join('\n')}\n--- sidecar\n${sidecar.output()}`, { cause: err });
  });
  assert.ok(done.usage !== undefined && done.usage.total_tokens > 0, 'the sidecar rewrote the request and the upstream answered with usage');

  // Refused by the sidecar (no key): its own JSON error, through the TCP hop.
  const refused = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"model":"gpt-demo","messages":[]}',
  });
  assert.equal(refused.status, 401);
  assert.equal(obj(obj(await refused.json(), 'body').error, 'error').code, 'missing_api_key');

  // The same stack with the sidecar gone fails closed.
  await sidecar.stop();
  const closed = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${files.keys.alice!}` } });
  assert.equal(closed.status, 503);
  assert.equal(obj(obj(await closed.json(), 'body').error, 'error').code, 'gateway_unavailable');
});
