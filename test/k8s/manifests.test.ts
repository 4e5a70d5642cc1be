// The kustomize base in k8s/base: every file parses, every cross-reference
// holds (kustomization ↔ files, mounts ↔ volumes ↔ ConfigMaps, Envoy ↔ sidecar
// socket, probes ↔ ports ↔ listeners, shutdown timing), the embedded configs
// pass the project's own validation, and — with a real Envoy and the real
// sidecar command — the pod's two configs work together and Envoy's preStop
// hook really starts a drain. (Envoy validates the embedded envoy.yaml in
// test/envoy/validate.test.ts.)

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ConfigSchema } from '../../src/config/schema.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { renderGatewayConfig, SIDECAR_CLUSTER } from '../../src/envoy/config.ts';
import { parseSnapshot } from '../../src/control/snapshot.ts';
import { envoyBinary } from '../envoy/helpers.ts';
import { withFreePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { arr, isObj, localPodConfig, num, obj, str, type Obj } from './shape.ts';

const BASE = join(PROJECT_ROOT, 'k8s', 'base');

// ---------------------------------------------------------------- plumbing

function strings(v: unknown, what: string): string[] {
  return arr(v, what).map((x, i) => str(x, `${what}[${i}]`));
}
function named(list: unknown[], name: string, what: string): Obj {
  const found = list.find((x) => isObj(x) && x.name === name);
  assert.ok(isObj(found), `${what} "${name}" must exist`);
  return found;
}
/** True when `path` is `dir` itself or lies below it (POSIX paths). */
function isUnder(path: string, dir: string): boolean {
  const d = posix.normalize(dir).replace(/\/+$/, '');
  const p = posix.normalize(path);
  return p === d || p.startsWith(`${d}/`);
}

interface Manifest {
  file: string;
  doc: Obj;
}

interface Base {
  kustomization: Obj;
  /** Documents of the files under `resources`. */
  resources: Manifest[];
  /** ConfigMaps by name: static ones from resources and generated ones (name before kustomize's hash suffix). */
  configMaps: Map<string, { generated: boolean; data: Record<string, string> }>;
  deployment: Obj;
  pod: Obj;
  containers: Map<string, Obj>;
  volumes: unknown[];
  service: Obj;
  envoyYaml: Obj;
  gatewayYaml: Obj;
  gatewayText: string;
  routingText: string;
}

function parseYamlFile(file: string): Obj[] {
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  const out: Obj[] = [];
  for (const d of docs) {
    assert.deepEqual(
      d.errors.map((e) => e.message),
      [],
      `${file} must be valid YAML`,
    );
    const v: unknown = d.toJS();
    if (v !== null) out.push(obj(v, `a document in ${file}`));
  }
  return out;
}

/** Reads k8s/base the way kustomize would (resources + configMapGenerator with files). */
function loadBase(): Base {
  const kustomization = obj(parseYamlFile(join(BASE, 'kustomization.yaml'))[0], 'kustomization.yaml');
  const resources: Manifest[] = [];
  for (const r of strings(kustomization.resources, 'resources')) {
    for (const doc of parseYamlFile(join(BASE, r))) resources.push({ file: r, doc });
  }
  const configMaps: Base['configMaps'] = new Map();
  for (const { doc } of resources.filter((m) => m.doc.kind === 'ConfigMap')) {
    const data = obj(doc.data, 'ConfigMap data') as Record<string, string>;
    configMaps.set(str(obj(doc.metadata, 'metadata').name, 'ConfigMap name'), { generated: false, data });
  }
  for (const g of arr(kustomization.configMapGenerator ?? [], 'configMapGenerator')) {
    const gen = obj(g, 'configMapGenerator entry');
    const data: Record<string, string> = {};
    for (const f of strings(gen.files, 'configMapGenerator files')) {
      // "key=path" or "path" (key = file name).
      const eq = f.indexOf('=');
      const key = eq >= 0 ? f.slice(0, eq) : basename(f);
      data[key] = readFileSync(join(BASE, eq >= 0 ? f.slice(eq + 1) : f), 'utf8');
    }
    configMaps.set(str(gen.name, 'generator name'), { generated: true, data });
  }
  const one = (kind: string): Obj => {
    const found = resources.filter((m) => m.doc.kind === kind);
    assert.equal(found.length, 1, `exactly one ${kind}`);
    return (found[0] as Manifest).doc;
  };
  const deployment = one('Deployment');
  const pod = obj(obj(obj(deployment.spec, 'Deployment spec').template, 'pod template').spec, 'pod spec');
  const containers = new Map<string, Obj>();
  for (const c of arr(pod.containers, 'containers')) {
    const co = obj(c, 'container');
    containers.set(str(co.name, 'container name'), co);
  }
  const envoyCm = configMaps.get('inference-gateway-envoy');
  assert.ok(envoyCm?.data['envoy.yaml'] !== undefined, 'ConfigMap inference-gateway-envoy must have the key envoy.yaml');
  const gatewayText = configMaps.get('inference-gateway-config')?.data['gateway.yaml'];
  const routingText = configMaps.get('inference-gateway-routing')?.data['routing.yaml'];
  assert.ok(gatewayText !== undefined, 'ConfigMap inference-gateway-config must have the key gateway.yaml');
  assert.ok(routingText !== undefined, 'ConfigMap inference-gateway-routing must have the key routing.yaml');
  return {
    kustomization,
    resources,
    configMaps,
    deployment,
    pod,
    containers,
    volumes: arr(pod.volumes, 'volumes'),
    service: one('Service'),
    envoyYaml: obj(YAML.parse(envoyCm.data['envoy.yaml']), 'envoy.yaml'),
    gatewayYaml: obj(YAML.parse(gatewayText), 'gateway.yaml'),
    gatewayText,
    routingText,
  };
}

function container(base: Base, name: string): Obj {
  const c = base.containers.get(name);
  assert.ok(c !== undefined, `container "${name}" must exist`);
  return c;
}

function mounts(c: Obj): Obj[] {
  return arr(c.volumeMounts ?? [], 'volumeMounts').map((m) => obj(m, 'volumeMount'));
}

/** The file paths a container sees from ConfigMap-backed volumes, each with its ConfigMap and key. */
function configFiles(base: Base, c: Obj): Map<string, { configMap: string; key: string }> {
  const out = new Map<string, { configMap: string; key: string }>();
  const add = (mountPath: string, source: Obj): void => {
    const cmName = str(source.name, 'configMap name');
    const cm = base.configMaps.get(cmName);
    assert.ok(cm !== undefined, `ConfigMap "${cmName}" must be defined or generated`);
    const items = source.items === undefined ? Object.keys(cm.data).map((key) => ({ key, path: key })) : arr(source.items, 'items').map((i) => obj(i, 'item'));
    for (const item of items) {
      const key = str(item.key, 'item key');
      assert.ok(key in cm.data, `ConfigMap "${cmName}" has no key "${key}"`);
      out.set(posix.join(mountPath, str(item.path, 'item path')), { configMap: cmName, key });
    }
  };
  for (const m of mounts(c)) {
    assert.equal(m.subPath, undefined, 'subPath mounts are not used in the base');
    const vol = named(base.volumes, str(m.name, 'mount name'), 'volume');
    const mountPath = str(m.mountPath, 'mountPath');
    if (vol.configMap !== undefined) add(mountPath, obj(vol.configMap, 'configMap volume'));
    if (vol.projected !== undefined) {
      for (const s of arr(obj(vol.projected, 'projected').sources, 'projected sources')) {
        const src = obj(s, 'projected source');
        if (src.configMap !== undefined) add(mountPath, obj(src.configMap, 'projected configMap'));
      }
    }
  }
  return out;
}

/** The value following `flag` in an argument list. */
function flagValue(args: string[], flag: string): string {
  const i = args.indexOf(flag);
  assert.ok(i >= 0 && i + 1 < args.length, `${flag} must be given with a value`);
  return args[i + 1] as string;
}

function envoyListener(envoy: Obj, name: string): Obj {
  return named(arr(obj(envoy.static_resources, 'static_resources').listeners, 'listeners'), name, 'Envoy listener');
}
function envoyCluster(envoy: Obj, name: string): Obj {
  return named(arr(obj(envoy.static_resources, 'static_resources').clusters, 'clusters'), name, 'Envoy cluster');
}
function socketAddress(holder: Obj, what: string): { address: string; port: number } {
  const sa = obj(obj(holder.address, `${what} address`).socket_address, `${what} socket_address`);
  return { address: str(sa.address, `${what} address`), port: num(sa.port_value, `${what} port`) };
}
/** The single endpoint of a cluster (an object with `address`). */
function clusterEndpoint(cluster: Obj, what: string): Obj {
  const la = obj(cluster.load_assignment, `${what} load_assignment`);
  const eps = arr(obj(arr(la.endpoints, `${what} endpoints`)[0], `${what} endpoints[0]`).lb_endpoints, `${what} lb_endpoints`);
  assert.equal(eps.length, 1, `${what} has one endpoint`);
  return obj(obj(eps[0], 'lb_endpoint').endpoint, `${what} endpoint`);
}
function pipeOf(endpoint: Obj, what: string): Obj {
  return obj(obj(endpoint.address, `${what} address`).pipe, `${what} pipe`);
}

function containerPort(c: Obj, port: unknown, what: string): number {
  const ports = arr(c.ports ?? [], 'ports').map((p) => obj(p, 'port'));
  const found = typeof port === 'number' ? ports.find((p) => p.containerPort === port) : ports.find((p) => p.name === port);
  assert.ok(found !== undefined, `${what}: port ${String(port)} must be a declared containerPort of "${String(c.name)}"`);
  return num(found.containerPort, 'containerPort');
}

/** The seconds of `sleep N` at the end of a preStop exec script. */
function sleepSeconds(script: string): number {
  const m = /(?:^|\n)\s*sleep (\d+)\s*$/.exec(script);
  assert.ok(m !== null, `the preStop script must end with "sleep N":\n${script}`);
  return Number(m[1]);
}

function envoyPreStopScript(envoy: Obj): string {
  const exec = obj(obj(obj(envoy.lifecycle, 'envoy lifecycle').preStop, 'envoy preStop').exec, 'envoy preStop exec');
  const command = strings(exec.command, 'envoy preStop command');
  assert.deepEqual(command.slice(0, 2), ['/bin/bash', '-c'], 'the envoy preStop runs a bash script');
  assert.equal(command.length, 3);
  return command[2] as string;
}

const base = loadBase();

// ---------------------------------------------------------------- static checks

void test('every YAML file under k8s/base parses, and every file is used by the kustomization', () => {
  const files = readdirSync(BASE)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  for (const f of files) parseYamlFile(join(BASE, f));
  const k = base.kustomization;
  assert.equal(k.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  assert.equal(k.kind, 'Kustomization');
  const used = new Set<string>(['kustomization.yaml', ...strings(k.resources, 'resources')]);
  for (const g of arr(k.configMapGenerator ?? [], 'configMapGenerator')) {
    for (const f of strings(obj(g, 'generator').files, 'files')) used.add(f.slice(f.indexOf('=') + 1));
  }
  for (const f of used) assert.ok(existsSync(join(BASE, f)), `k8s/base/${f} (listed in kustomization.yaml) must exist`);
  assert.deepEqual(
    files.filter((f) => !used.has(f)),
    [],
    'YAML files in k8s/base that the kustomization does not use',
  );
});

void test('resources are well-formed and unique; the Service and the Deployment select the pod', () => {
  const ids = new Set<string>();
  for (const { file, doc } of base.resources) {
    assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
    const id = `${str(doc.kind, `${file}: kind`)}/${str(obj(doc.metadata, `${file}: metadata`).name, `${file}: metadata.name`)}`;
    assert.ok(!ids.has(id), `${id} is defined twice`);
    ids.add(id);
  }
  for (const name of base.configMaps.keys())
    assert.ok(!ids.has(`ConfigMap/${name}`) || !base.configMaps.get(name)?.generated, `ConfigMap ${name} is both a resource and generated`);

  const spec = obj(base.deployment.spec, 'Deployment spec');
  const podLabels = obj(obj(obj(spec.template, 'template').metadata, 'template metadata').labels, 'pod labels');
  const selector = obj(obj(spec.selector, 'selector').matchLabels, 'matchLabels');
  assert.ok(Object.keys(selector).length > 0);
  for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v, `Deployment selector ${k} must match the pod labels`);
  const svc = obj(base.service.spec, 'Service spec');
  assert.equal(svc.type, 'ClusterIP');
  const svcSelector = obj(svc.selector, 'Service selector');
  for (const [k, v] of Object.entries(svcSelector)) assert.equal(podLabels[k], v, `Service selector ${k} must match the pod labels`);

  // Ports: 8080 → Envoy's listener, 9464 → the sidecar's admin (metrics).
  const ports = arr(svc.ports, 'Service ports').map((p) => obj(p, 'Service port'));
  const byName = (n: string): Obj => named(ports, n, 'Service port');
  assert.equal(byName('http').port, 8080);
  assert.equal(byName('metrics').port, 9464);
  assert.equal(
    containerPort(container(base, 'envoy'), byName('http').targetPort, 'Service http'),
    socketAddress(envoyListener(base.envoyYaml, 'gateway'), 'gateway listener').port,
  );
  assert.equal(
    containerPort(container(base, 'sidecar'), byName('metrics').targetPort, 'Service metrics'),
    obj(obj(base.gatewayYaml.server, 'server').admin, 'admin').port,
  );
});

void test('the PodDisruptionBudget, the autoscaler and the NetworkPolicy target this Deployment and its ports', () => {
  const spec = obj(base.deployment.spec, 'Deployment spec');
  const podLabels = obj(obj(obj(spec.template, 'template').metadata, 'template metadata').labels, 'pod labels');
  const of = (kind: string): Obj => {
    const found = base.resources.find((r) => r.doc.kind === kind);
    assert.ok(found, `a ${kind} exists`);
    return found.doc;
  };
  const selects = (labels: Obj, what: string) => {
    assert.ok(Object.keys(labels).length > 0, `${what} selects something`);
    for (const [k, v] of Object.entries(labels)) assert.equal(podLabels[k], v, `${what} ${k} must match the pod labels`);
  };
  selects(obj(obj(obj(of('PodDisruptionBudget').spec, 'PDB spec').selector, 'PDB selector').matchLabels, 'matchLabels'), 'PodDisruptionBudget');
  const hpa = obj(of('HorizontalPodAutoscaler').spec, 'HPA spec');
  const target = obj(hpa.scaleTargetRef, 'scaleTargetRef');
  assert.deepEqual([target.kind, target.name], ['Deployment', obj(base.deployment.metadata, 'Deployment metadata').name]);
  assert.ok(num(hpa.minReplicas, 'minReplicas') >= 2, 'at least two replicas, so the PDB can allow a disruption');
  const np = obj(of('NetworkPolicy').spec, 'NetworkPolicy spec');
  selects(obj(obj(np.podSelector, 'podSelector').matchLabels, 'matchLabels'), 'NetworkPolicy');
  const allowed = arr(np.ingress, 'ingress').flatMap((rule) => arr(obj(rule, 'rule').ports, 'ports').map((p) => num(obj(p, 'port').port, 'port')));
  assert.deepEqual(allowed.sort(), [8080, 9464], 'only the listener and the metrics port are reachable');
});

void test('every volumeMount has its volume, every volume is used, and every ConfigMap it names exists', () => {
  const volumeNames = base.volumes.map((v) => str(obj(v, 'volume').name, 'volume name'));
  assert.equal(new Set(volumeNames).size, volumeNames.length, 'volume names are unique');
  const used = new Set<string>();
  for (const [name, c] of base.containers) {
    const paths = new Set<string>();
    for (const m of mounts(c)) {
      const v = str(m.name, 'mount name');
      assert.ok(volumeNames.includes(v), `container ${name} mounts "${v}", which is not a volume of the pod`);
      used.add(v);
      const p = str(m.mountPath, 'mountPath');
      assert.ok(!paths.has(p), `container ${name} mounts ${p} twice`);
      paths.add(p);
    }
    configFiles(base, c); // asserts every referenced ConfigMap and key exists
  }
  assert.deepEqual(
    volumeNames.filter((v) => !used.has(v)),
    [],
    'volumes no container mounts',
  );
  // The Envoy ConfigMap is static (validate.test.ts needs it as a ConfigMap manifest);
  // the sidecar's are generated, so editing them rolls the pods.
  assert.equal(base.configMaps.get('inference-gateway-envoy')?.generated, false);
  assert.equal(base.configMaps.get('inference-gateway-config')?.generated, true);
  assert.equal(base.configMaps.get('inference-gateway-routing')?.generated, true);
});

void test('the two containers run the expected images and commands, and read the config files from their mounts', () => {
  const envoy = container(base, 'envoy');
  const sidecar = container(base, 'sidecar');
  assert.deepEqual([...base.containers.keys()].sort(), ['envoy', 'sidecar']);
  assert.equal(envoy.image, 'envoyproxy/envoy:v1.40.0');
  assert.equal(sidecar.image, 'inference-gateway:0.1.0');
  const envoyArgs = strings(envoy.args, 'envoy args');
  assert.equal(envoyArgs[0], '-c');
  assert.deepEqual(configFiles(base, envoy).get(flagValue(envoyArgs, '-c')), { configMap: 'inference-gateway-envoy', key: 'envoy.yaml' });

  const command = strings(sidecar.command, 'sidecar command');
  assert.deepEqual(command.slice(0, 3), ['node', 'src/cli/main.ts', 'serve']);
  assert.ok(existsSync(join(PROJECT_ROOT, command[1] as string)), 'the sidecar entry point exists in the project');
  const files = configFiles(base, sidecar);
  assert.deepEqual(files.get(flagValue(command, '--config')), { configMap: 'inference-gateway-config', key: 'gateway.yaml' });
  const snapshotFile = str(obj(base.gatewayYaml.routing, 'routing').snapshotFile, 'routing.snapshotFile');
  assert.ok(posix.isAbsolute(snapshotFile), 'routing.snapshotFile is absolute (in the pod)');
  assert.deepEqual(
    files.get(snapshotFile),
    { configMap: 'inference-gateway-routing', key: 'routing.yaml' },
    'routing.snapshotFile must be the routing ConfigMap key, under its mountPath',
  );

  // The audit file — and the checkpoint key the sidecar creates when missing — must be on a
  // writable emptyDir, not on the read-only root or the read-only config mount.
  const auditCfg = obj(base.gatewayYaml.audit, 'audit');
  for (const [what, path] of [
    ['audit.file', str(auditCfg.file, 'audit.file')],
    ['audit.signingKeyFile', str(auditCfg.signingKeyFile, 'audit.signingKeyFile')],
  ] as const) {
    const mount = mounts(sidecar).find((m) => isUnder(dirname(path), str(m.mountPath, 'mountPath')));
    assert.ok(mount !== undefined, `${what} ${path} must lie in a mounted volume`);
    assert.notEqual(mount.readOnly, true, `${what} must be writable`);
    assert.ok(named(base.volumes, str(mount.name, 'name'), 'volume').emptyDir !== undefined, `${what} is on an emptyDir`);
  }
});

/** The sidecar mount and volume that hold `path` (a file or a folder in the pod). */
function mountOf(path: string): { mount: Obj; volume: Obj } {
  const found = mounts(container(base, 'sidecar')).filter((m) => isUnder(path, str(m.mountPath, 'mountPath')));
  assert.equal(found.length, 1, `exactly one sidecar mount holds ${path}`);
  const mount = found[0] as Obj;
  return { mount, volume: named(base.volumes, str(mount.name, 'mount name'), 'volume') };
}

void test('Secrets: the API key file and the upstream credentials folder are Secret mounts of the sidecar, the key Secret is required', () => {
  const auth = obj(base.gatewayYaml.auth, 'auth');
  const [keyFile, ...more] = strings(auth.apiKeyFiles, 'auth.apiKeyFiles');
  assert.ok(keyFile !== undefined && more.length === 0, 'one key file');
  assert.ok(posix.isAbsolute(keyFile));
  const keys = mountOf(keyFile);
  // A folder mount: the kubelet swaps a Secret's files in place only there (subPath mounts never update,
  // and the key file store follows updates by polling the path).
  assert.equal(keys.mount.mountPath, dirname(keyFile), 'the key file sits directly in its Secret mount');
  assert.equal(keys.mount.subPath, undefined);
  assert.equal(keys.mount.readOnly, true);
  const keySecret = obj(keys.volume.secret, `volume ${String(keys.volume.name)}: a secret volume`);
  assert.equal(keySecret.secretName, 'inference-gateway-api-keys');
  // Not optional: without the Secret the pod does not start (never a gateway without its keys).
  assert.notEqual(keySecret.optional, true, 'the API key Secret is required');
  const items = arr(keySecret.items, 'items').map((i) => obj(i, 'item'));
  assert.deepEqual(items, [{ key: basename(keyFile), path: basename(keyFile) }], 'the Secret key is the file name auth.apiKeyFiles names');
  assert.equal(keySecret.defaultMode, 0o440, 'readable by the owner and the pod group (fsGroup) only');

  const credentialsDir = str(obj(base.gatewayYaml.routing, 'routing').credentialsDir, 'routing.credentialsDir');
  const creds = mountOf(credentialsDir);
  assert.equal(creds.mount.mountPath, credentialsDir, 'each Secret key is a file directly in routing.credentialsDir');
  assert.equal(creds.mount.readOnly, true);
  const credSecret = obj(creds.volume.secret, `volume ${String(creds.volume.name)}: a secret volume`);
  assert.equal(credSecret.secretName, 'inference-gateway-upstream-credentials');
  assert.equal(credSecret.optional, true, 'most deployments need no upstream credential');
  assert.equal(credSecret.items, undefined, 'every key of the Secret becomes a credential file');
  assert.equal(credSecret.defaultMode, 0o440);

  // Envoy never sees either Secret.
  for (const m of mounts(container(base, 'envoy'))) {
    const v = named(base.volumes, str(m.name, 'mount name'), 'volume');
    assert.equal(v.secret, undefined, `envoy mounts the secret volume ${String(v.name)}`);
  }
  // Every credential a snapshot target names would be a file in that folder: a valid file name.
  const snapshot = parseSnapshot(base.routingText, 'k8s/base/routing.yaml');
  for (const m of snapshot.models.values()) {
    for (const target of [m, ...m.overrides.values()].flatMap((r) => r.targets)) {
      const credential = (target as { credential?: string | null }).credential;
      if (credential !== undefined && credential !== null)
        assert.match(credential, /^[-._a-zA-Z0-9]+$/, `model ${m.id}: credential "${credential}" must be a Secret key`);
    }
  }
});

void test('without its key file the sidecar refuses to start and names the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ig-k8s-nokeys-'));
  try {
    const cfg = localPodConfig(base.gatewayYaml, dir);
    const missing = join(dir, 'api-keys', 'keys.yaml');
    obj(cfg.auth, 'auth').apiKeyFiles = [missing];
    await writeFile(join(dir, 'routing.yaml'), base.routingText);
    await writeFile(join(dir, 'gateway.yaml'), YAML.stringify(cfg));
    const command = strings(container(base, 'sidecar').command, 'command');
    const args = command.slice(1).map((a, i, all) => (all[i - 1] === '--config' ? join(dir, 'gateway.yaml') : a));
    const err = await promisify(execFile)(process.execPath, args, { cwd: PROJECT_ROOT, timeout: 20_000 }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; stderr?: string },
    );
    assert.ok(err !== undefined, 'the sidecar must not run without its key file');
    assert.equal(err.code, 1);
    assert.ok(err.stderr?.includes(missing) === true && err.stderr.includes('cannot be read'), err.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('the sidecar socket: same path in envoy.yaml and gateway.yaml, inside the emptyDir both containers mount', () => {
  const socket = str(obj(obj(base.gatewayYaml.server, 'server').grpc, 'grpc').socket, 'server.grpc.socket');
  const pipe = pipeOf(clusterEndpoint(envoyCluster(base.envoyYaml, SIDECAR_CLUSTER), SIDECAR_CLUSTER), SIDECAR_CLUSTER);
  assert.equal(pipe.path, socket, `Envoy's ${SIDECAR_CLUSTER} cluster must connect to server.grpc.socket`);
  const shared = new Set<string>();
  for (const [name, c] of base.containers) {
    const m = mounts(c).find((x) => isUnder(dirname(socket), str(x.mountPath, 'mountPath')));
    assert.ok(m !== undefined, `container ${name} must mount the socket's directory ${dirname(socket)}`);
    assert.notEqual(m.readOnly, true, `container ${name}: the socket directory must be writable`);
    assert.equal(m.mountPath, dirname(socket), 'the socket sits directly in the shared mount');
    shared.add(str(m.name, 'name'));
  }
  assert.equal(shared.size, 1, 'both containers mount the same volume for the socket');
  const vol = named(base.volumes, [...shared][0] as string, 'volume');
  assert.ok(vol.emptyDir !== undefined, 'the socket volume is an emptyDir');
  // Connecting to a Unix socket needs write permission on it: same user in both containers.
  const user = (c: Obj): unknown =>
    isObj(c.securityContext) && c.securityContext.runAsUser !== undefined
      ? c.securityContext.runAsUser
      : obj(base.pod.securityContext, 'pod securityContext').runAsUser;
  assert.equal(typeof user(container(base, 'envoy')), 'number');
  assert.equal(user(container(base, 'envoy')), user(container(base, 'sidecar')), 'Envoy must run as the socket owner (the sidecar user)');
});

void test('probes target declared container ports that the configs really listen on', () => {
  const envoy = container(base, 'envoy');
  const sidecar = container(base, 'sidecar');
  const server = obj(base.gatewayYaml.server, 'server');
  const admin = obj(server.admin, 'server.admin');

  // Sidecar: /readyz and /healthz on server.admin, reachable by the kubelet.
  assert.equal(admin.host, '0.0.0.0', 'the kubelet probes the pod IP: the sidecar admin must not be loopback-only');
  const r = obj(obj(sidecar.readinessProbe, 'sidecar readinessProbe').httpGet, 'httpGet');
  const l = obj(obj(sidecar.livenessProbe, 'sidecar livenessProbe').httpGet, 'httpGet');
  assert.equal(r.path, '/readyz');
  assert.equal(l.path, '/healthz');
  assert.equal(containerPort(sidecar, r.port, 'sidecar readiness'), admin.port);
  assert.equal(containerPort(sidecar, l.port, 'sidecar liveness'), admin.port);

  // Envoy: the admin stays on loopback; the envoy-health listener exposes its /ready.
  const envoyAdmin = socketAddress(obj(base.envoyYaml.admin, 'admin'), 'Envoy admin');
  assert.equal(envoyAdmin.address, '127.0.0.1', 'Envoy admin must stay on loopback');
  const health = socketAddress(envoyListener(base.envoyYaml, 'envoy-health'), 'envoy-health listener');
  const gateway = socketAddress(envoyListener(base.envoyYaml, 'gateway'), 'gateway listener');
  assert.equal(health.address, '0.0.0.0');
  assert.equal(gateway.address, '0.0.0.0');
  assert.equal(gateway.port, 8080);
  assert.equal(containerPort(envoy, 'http', 'envoy http'), gateway.port);
  const er = obj(obj(envoy.readinessProbe, 'envoy readinessProbe').httpGet, 'httpGet');
  assert.equal(er.path, '/ready');
  assert.equal(containerPort(envoy, er.port, 'envoy readiness'), health.port);
  const el = obj(envoy.livenessProbe, 'envoy livenessProbe');
  const elPort = obj(el.tcpSocket ?? el.httpGet, 'envoy liveness action').port;
  assert.equal(containerPort(envoy, elPort, 'envoy liveness'), health.port);
  const adminCluster = socketAddress(clusterEndpoint(envoyCluster(base.envoyYaml, 'envoy-admin'), 'envoy-admin'), 'envoy-admin');
  assert.deepEqual(adminCluster, envoyAdmin, 'the envoy-admin cluster points at the admin interface');
  // Every container port is something that listens.
  const listening = new Set([gateway.port, health.port]);
  for (const p of arr(envoy.ports, 'envoy ports')) assert.ok(listening.has(num(obj(p, 'port').containerPort, 'containerPort')));
  for (const p of arr(sidecar.ports, 'sidecar ports')) assert.equal(obj(p, 'port').containerPort, admin.port);
});

void test('both containers are locked down and have resource requests and limits', () => {
  const podSc = obj(base.pod.securityContext, 'pod securityContext');
  assert.equal(base.pod.automountServiceAccountToken, false);
  for (const [name, c] of base.containers) {
    const sc = obj(c.securityContext, `${name} securityContext`);
    assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, `${name}: runAsNonRoot`);
    const uid = sc.runAsUser ?? podSc.runAsUser;
    assert.ok(typeof uid === 'number' && uid > 0, `${name}: a non-zero runAsUser (the Envoy image's user is root)`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${name}: readOnlyRootFilesystem`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${name}: allowPrivilegeEscalation`);
    assert.equal(sc.privileged ?? false, false, `${name}: privileged`);
    assert.deepEqual(obj(sc.capabilities, `${name} capabilities`).drop, ['ALL'], `${name}: drop ALL capabilities`);
    assert.equal(obj(sc.seccompProfile ?? podSc.seccompProfile, `${name} seccompProfile`).type, 'RuntimeDefault');
    const res = obj(c.resources, `${name} resources`);
    for (const kind of ['requests', 'limits']) {
      const r = obj(res[kind], `${name} resources.${kind}`);
      assert.ok(r.cpu !== undefined && r.memory !== undefined, `${name}: resources.${kind} sets cpu and memory`);
    }
  }
});

void test('shutdown: Envoy drains first, the sidecar outlives it, the grace period covers both', () => {
  const envoy = container(base, 'envoy');
  const script = envoyPreStopScript(envoy);
  const adminPort = socketAddress(obj(base.envoyYaml.admin, 'admin'), 'Envoy admin').port;
  assert.ok(script.includes(`/dev/tcp/127.0.0.1/${adminPort}`), 'the preStop talks to the Envoy admin port');
  assert.ok(script.includes('POST /drain_listeners?graceful HTTP/1.1'), 'the preStop starts a graceful drain');
  const envoySleep = sleepSeconds(script);
  const envoyArgs = strings(envoy.args, 'envoy args');
  const drainTime = Number(flagValue(envoyArgs, '--drain-time-s'));
  assert.equal(flagValue(envoyArgs, '--drain-strategy'), 'immediate');
  assert.ok(drainTime <= envoySleep, '--drain-time-s must end within the preStop sleep');

  const sidecarSleep = num(
    obj(obj(obj(container(base, 'sidecar').lifecycle, 'sidecar lifecycle').preStop, 'sidecar preStop').sleep, 'sidecar preStop sleep').seconds,
    'seconds',
  );
  assert.ok(sidecarSleep > envoySleep + 1, 'the sidecar must keep serving until Envoy has stopped');
  const graceMs = num(obj(base.gatewayYaml.server, 'server').shutdownGraceMs, 'server.shutdownGraceMs');
  const grace = num(base.pod.terminationGracePeriodSeconds, 'terminationGracePeriodSeconds');
  assert.ok(sidecarSleep + graceMs / 1000 < grace, 'terminationGracePeriodSeconds must cover the sidecar preStop and its drain');
  // Envoy's worker count follows the CPU limit rather than the node's CPU count.
  assert.equal(flagValue(envoyArgs, '--concurrency'), String(obj(obj(envoy.resources, 'resources').limits, 'limits').cpu));
});

void test('gateway.yaml passes the sidecar config schema; routing.yaml passes parseSnapshot and names only Envoy clusters', () => {
  const parsed = ConfigSchema.safeParse(base.gatewayYaml);
  assert.ok(parsed.success, `gateway.yaml is invalid: ${parsed.success ? '' : parsed.error.message}`);
  // Keys come only from the mounted Secret (see the Secret test below): none are shipped in the config.
  assert.deepEqual(parsed.data.auth.apiKeys, []);
  assert.equal(parsed.data.auth.apiKeyFiles.length, 1);
  assert.ok(parsed.data.limits.maxBodyBytes <= 2 * 1024 * 1024, 'the sidecar body limit stays at or below Envoy buffer limit');

  const snapshot = parseSnapshot(base.routingText, 'k8s/base/routing.yaml');
  assert.ok(snapshot.models.size >= 1);
  const clusters = new Set(
    arr(obj(base.envoyYaml.static_resources, 'static_resources').clusters, 'clusters').map((c) => str(obj(c, 'cluster').name, 'cluster name')),
  );
  for (const m of snapshot.models.values()) {
    for (const { cluster } of [m, ...m.overrides.values()].flatMap((r) => r.targets)) {
      assert.ok(clusters.has(cluster), `routing.yaml model ${m.id} routes to cluster "${cluster}", which envoy.yaml does not define`);
      assert.ok(cluster !== SIDECAR_CLUSTER && cluster !== 'envoy-admin', `model ${m.id} must route to a model server`);
    }
  }
});

void test('envoy.yaml is envoy/gateway.yaml rendered for the pod, plus the envoy-health listener and envoy-admin cluster', () => {
  const socket = str(obj(obj(base.gatewayYaml.server, 'server').grpc, 'grpc').socket, 'server.grpc.socket');
  const model = envoyCluster(base.envoyYaml, 'model-server');
  const addr = socketAddress(clusterEndpoint(model, 'model-server'), 'model-server');
  assert.equal(model.type, 'STRICT_DNS');
  assert.match(addr.address, /\.svc\.cluster\.local$/, 'the placeholder model server is a cluster DNS name');

  const expected = obj(
    YAML.parse(
      renderGatewayConfig({
        listenerPort: 8080,
        adminPort: 9901,
        sidecarSocket: socket,
        clusters: [{ name: 'model-server', host: addr.address, port: addr.port }],
      }),
    ),
    'rendered config',
  );
  const expectedGateway = envoyListener(expected, 'gateway');
  obj(obj(expectedGateway.address, 'address').socket_address, 'socket_address').address = '0.0.0.0';

  const actual = structuredClone(base.envoyYaml);
  const sr = obj(actual.static_resources, 'static_resources');
  sr.listeners = arr(sr.listeners, 'listeners').filter((l) => obj(l, 'listener').name !== 'envoy-health');
  sr.clusters = arr(sr.clusters, 'clusters').filter((c) => obj(c, 'cluster').name !== 'envoy-admin');
  assert.deepEqual(actual, expected);
});

// ---------------------------------------------------------------- the pod, for real

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    // A keep-alive connection, like a real client's: a "connection: close" in the answer is then Envoy's doing.
    const agent = new Agent({ keepAlive: true });
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        agent,
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          agent.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        });
      },
    );
    req.on('close', () => agent.destroy());
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** `probe` until it returns a value; a throwing probe only means "not yet" (its last error is in the timeout message). */
async function until<T>(what: () => string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  try {
    return await waitFor(
      () =>
        probe().catch((err: unknown) => {
          last = err;
          return undefined;
        }),
      { what, timeoutMs, intervalMs: 50 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}${last instanceof Error ? `: ${last.message}` : ''}`, { cause: err });
  }
}

void test("the pod for real: the sidecar command and Envoy from these configs serve, probe, refuse without a key, accept the Secret file's key and drain on preStop", async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  if (!existsSync('/bin/bash')) return t.skip('no /bin/bash for the preStop script');
  const dir = await mkdtemp(join(tmpdir(), 'ig-k8s-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // Pod paths and ports → a temp dir and free ports; everything else as shipped.
  const gatewayCfg = localPodConfig(base.gatewayYaml, dir);
  const socket = str(obj(obj(gatewayCfg.server, 'server').grpc, 'grpc').socket, 'socket');
  obj(gatewayCfg.logging, 'logging').level = 'info';
  // The API key Secret's content, made the way the docs make it: the CLI writes keys.yaml.
  const keyFile = join(dir, 'api-keys', 'keys.yaml');
  await mkdir(dirname(keyFile));
  obj(gatewayCfg.auth, 'auth').apiKeyFiles = [keyFile];
  const created = await promisify(execFile)(
    process.execPath,
    [join(PROJECT_ROOT, 'src/cli/main.ts'), 'keys', 'create', '--file', keyFile, '--principal', 'k8s-test', '--org', 'acme', '--tenant', 'ops'],
    { timeout: 20_000 },
  );
  const apiKey = created.stdout.trim();
  assert.match(apiKey, /^igw_/);
  await writeFile(join(dir, 'routing.yaml'), base.routingText);
  await writeFile(join(dir, 'gateway.yaml'), YAML.stringify(gatewayCfg));

  // The sidecar: the container's own command line, run from the project root (the image's workdir).
  const command = strings(container(base, 'sidecar').command, 'command');
  const sidecarArgs = command.slice(1).map((a, i, all) => (all[i - 1] === '--config' ? join(dir, 'gateway.yaml') : a));
  const sidecar = spawn(process.execPath, sidecarArgs, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let sidecarOut = '';
  sidecar.stdout.on('data', (c: Buffer) => (sidecarOut += c.toString('utf8')));
  sidecar.stderr.on('data', (c: Buffer) => (sidecarOut += c.toString('utf8')));
  const sidecarExit = new Promise<number | null>((resolve) => sidecar.once('exit', (code) => resolve(code)));
  t.after(() => void sidecar.kill('SIGKILL'));

  const sidecarAdmin = await until(
    () => `the sidecar to start\n${sidecarOut}`,
    20_000,
    async () => {
      for (const line of sidecarOut.split('\n')) {
        if (!line.includes('"sidecar ready"')) continue;
        const rec = JSON.parse(line) as { adminPort?: number };
        return rec.adminPort;
      }
      return undefined;
    },
  );

  // Envoy: the container's args, with the config path swapped and a 1 s drain to keep the test short.
  // The pod's config points a cluster (envoy-admin) at Envoy's own admin port, so that port must be in the
  // config up front: picked free, and Envoy started again on another one if it was taken (ports.ts). The
  // listeners bind port 0 and are read back from the admin API.
  const envoyArgs = strings(container(base, 'envoy').args, 'args').map((a, i, all) =>
    all[i - 1] === '-c' ? join(dir, 'envoy.yaml') : all[i - 1] === '--drain-time-s' ? '1' : a,
  );
  const { envoy, adminPort, ports } = await withFreePort(async (adminPort) => {
    const envoyCfg = structuredClone(base.envoyYaml);
    obj(obj(obj(envoyCfg.admin, 'admin').address, 'address').socket_address, 'socket_address').port_value = adminPort;
    for (const l of ['gateway', 'envoy-health']) obj(obj(envoyListener(envoyCfg, l).address, 'address').socket_address, 'socket_address').port_value = 0;
    obj(obj(clusterEndpoint(envoyCluster(envoyCfg, 'envoy-admin'), 'envoy-admin').address, 'address').socket_address, 'socket_address').port_value = adminPort;
    pipeOf(clusterEndpoint(envoyCluster(envoyCfg, SIDECAR_CLUSTER), SIDECAR_CLUSTER), SIDECAR_CLUSTER).path = socket;
    await writeFile(join(dir, 'envoy.yaml'), YAML.stringify(envoyCfg));
    const envoy = spawn(bin, [...envoyArgs, '--disable-hot-restart', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let envoyOut = '';
    envoy.stdout.on('data', (c: Buffer) => (envoyOut += c.toString('utf8')));
    envoy.stderr.on('data', (c: Buffer) => (envoyOut += c.toString('utf8')));
    t.after(() => void envoy.kill('SIGKILL'));
    try {
      const ports = await waitFor(
        async () => {
          // An Envoy that could not bind its admin port exits; whatever answers on that port then is not ours.
          if (envoy.exitCode !== null) throw new Error(`Envoy exited (${envoy.exitCode}):\n${envoyOut}`);
          try {
            const r = await http(adminPort, 'GET', '/listeners?format=json');
            const parsed = JSON.parse(r.body) as { listener_statuses?: Array<{ name?: string; local_address?: { socket_address?: { port_value?: number } } }> };
            const port = (n: string): number | undefined => parsed.listener_statuses?.find((l) => l.name === n)?.local_address?.socket_address?.port_value;
            const g = port('gateway');
            const h = port('envoy-health');
            return g !== undefined && h !== undefined && g !== 0 && h !== 0 ? { gateway: g, health: h } : undefined;
          } catch {
            return undefined; // admin not up yet
          }
        },
        { what: () => `Envoy to start\n${envoyOut}`, timeoutMs: 20_000, intervalMs: 50 },
      );
      return { envoy, adminPort, ports };
    } catch (err) {
      envoy.kill('SIGKILL');
      // Only a taken admin port is worth another try (withFreePort looks for "Address already in use").
      throw new Error(envoyOut.includes('Address already in use') ? `Envoy admin port taken:\n${envoyOut}` : (err as Error).message, { cause: err });
    }
  });

  // Probes, as the kubelet would send them.
  const paths = (c: string): Obj => obj(obj(container(base, c).readinessProbe, 'readinessProbe').httpGet, 'httpGet');
  assert.equal((await http(sidecarAdmin, 'GET', str(paths('sidecar').path, 'path'))).status, 200);
  const sidecarLiveness = obj(obj(container(base, 'sidecar').livenessProbe, 'livenessProbe').httpGet, 'httpGet');
  assert.equal((await http(sidecarAdmin, 'GET', str(sidecarLiveness.path, 'path'))).status, 200);
  const ready = await until(
    () => 'Envoy /ready',
    10_000,
    async () => {
      const r = await http(ports.health, 'GET', str(paths('envoy').path, 'path'));
      return r.status === 200 ? r : undefined;
    },
  );
  assert.equal(ready.body.trim(), 'LIVE');
  // The health listener exposes nothing else of the admin.
  assert.equal((await http(ports.health, 'GET', '/stats')).status, 404);
  assert.equal((await http(ports.health, 'POST', '/ready')).status, 404);
  assert.equal((await http(ports.health, 'POST', '/drain_listeners')).status, 404);

  // A client request crosses Envoy and the socket to the sidecar, which refuses it: no keys are configured.
  const chat = JSON.stringify({ model: 'example-model', messages: [{ role: 'user', content: 'hi' }] });
  const refused = await http(ports.gateway, 'POST', '/v1/chat/completions', chat);
  assert.equal(refused.status, 401, refused.body);
  assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'missing_api_key');
  const bogus = await http(ports.gateway, 'POST', '/v1/chat/completions', chat, { authorization: 'Bearer igw_not_a_real_key' });
  assert.equal(bogus.status, 401, bogus.body);
  // The key from the Secret file is accepted; the placeholder model server does not resolve here, so
  // Envoy answers for the upstream — past authentication, routing and quotas.
  const accepted = await http(ports.gateway, 'POST', '/v1/chat/completions', chat, { authorization: `Bearer ${apiKey}` });
  assert.equal(accepted.status, 503, accepted.body);
  assert.equal((JSON.parse(accepted.body) as { error: { code: string } }).error.code, 'upstream_unavailable');
  assert.equal(refused.headers.connection, undefined, 'no drain yet');

  // Envoy's preStop script, verbatim except for the admin port and the sleep.
  const script = envoyPreStopScript(container(base, 'envoy'));
  const local = script.replace('/dev/tcp/127.0.0.1/9901', `/dev/tcp/127.0.0.1/${adminPort}`).replace(/sleep \d+\s*$/, 'sleep 0\n');
  assert.notEqual(local, script);
  const started = Date.now();
  const { stdout } = await promisify(execFile)('/bin/bash', ['-c', local], { timeout: 10_000 });
  assert.match(stdout, /^HTTP\/1\.1 200 OK/, 'the admin accepted the drain request');
  assert.ok(Date.now() - started < 5000);

  // Draining: responses now ask clients to close their connections...
  const during = await http(ports.gateway, 'POST', '/v1/chat/completions', chat);
  assert.equal(during.status, 401);
  assert.equal(during.headers.connection, 'close', 'a draining Envoy closes client connections after the response');
  // ... and after --drain-time-s the listeners close; Envoy itself keeps running until SIGTERM.
  await until(
    () => 'the gateway listener to close',
    10_000,
    async () => ((await refusesConnections(ports.gateway)) ? true : undefined),
  );
  assert.equal(envoy.exitCode, null, 'Envoy waits for SIGTERM');
  envoy.kill('SIGTERM');

  // The sidecar drains on SIGTERM and exits cleanly.
  sidecar.kill('SIGTERM');
  assert.equal(await sidecarExit, 0, sidecarOut);
});
