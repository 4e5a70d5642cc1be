// Every Kubernetes object under k8s/base and k8s/overlays — each document of
// each resource file, and each object of each kustomize build (patched
// objects and generated ConfigMaps included) — validated against the
// Kubernetes API schema with the kubernetes-models package.
//
// kubernetes-models' validate() checks types, required fields and enums but
// accepts unknown fields (a misspelled `readOnlyRootFileSystem` would pass and
// the API server would drop it with a warning). So each object is also
// type-checked, as an object literal, against the package's TypeScript
// interface for its kind: excess-property checking rejects every field the
// schema does not define, at any depth, and names it.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';
import YAML from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { build, idOf, isObj, parseYamlDocs, type Build, type Obj } from './kustomize.ts';

interface Model {
  validate(): void;
}

/** apiVersion/kind → the model class (schema validation) and the module + interface that type it (strict field names). */
const MODELS: Record<string, { make: (doc: Obj) => Model; module: string; iface: string }> = {
  'v1/ConfigMap': { make: (d) => new ConfigMap(d), module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Secret': { make: (d) => new Secret(d), module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { make: (d) => new Service(d), module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'apps/v1/Deployment': { make: (d) => new Deployment(d), module: 'kubernetes-models/apps/v1/Deployment', iface: 'IDeployment' },
  'apps/v1/StatefulSet': { make: (d) => new StatefulSet(d), module: 'kubernetes-models/apps/v1/StatefulSet', iface: 'IStatefulSet' },
  'policy/v1/PodDisruptionBudget': {
    make: (d) => new PodDisruptionBudget(d),
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    iface: 'IPodDisruptionBudget',
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    make: (d) => new HorizontalPodAutoscaler(d as never),
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    iface: 'IHorizontalPodAutoscaler',
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    make: (d) => new NetworkPolicy(d),
    module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
    iface: 'INetworkPolicy',
  },
};

function modelFor(doc: Obj, label: string): (typeof MODELS)[string] {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const m = MODELS[key];
  // Unknown kinds fail: a manifest this test cannot check must not slip through unchecked.
  assert.ok(m !== undefined, `${label}: no schema for apiVersion "${String(doc.apiVersion)}" kind "${String(doc.kind)}" (add it to MODELS)`);
  return m;
}

/** Schema validation (types, required fields, enums, formats); throws naming the JSON path. */
function validateSchema(doc: Obj, label: string): void {
  const m = modelFor(doc, label);
  try {
    m.make(structuredClone(doc)).validate();
  } catch (err) {
    throw new Error(`${label} (${idOf(doc)}) does not match the Kubernetes schema: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Strict field names: one in-memory TypeScript file declaring each object as a
 * constant of its kind's interface. Returns the compiler's complaints, each
 * prefixed with the object's label; empty when every field is known.
 */
function strictFieldProblems(
  entries: ReadonlyArray<{ label: string; doc: Obj }>,
  typeOf: (doc: Obj, label: string) => { module: string; iface: string } = modelFor,
): string[] {
  const file = join(PROJECT_ROOT, 'test', 'k8s', '__manifests_under_test__.ts');
  const lines: string[] = [];
  const lineLabel: string[] = [];
  entries.forEach(({ label, doc }, i) => {
    const m = typeOf(doc, label);
    lines.push(`import type { ${m.iface} as T${i} } from '${m.module}';`);
    lineLabel.push(label);
  });
  entries.forEach(({ label, doc }, i) => {
    lines.push(`export const m${i}: T${i} = ${JSON.stringify(doc)};`);
    lineLabel.push(label);
  });
  const text = `${lines.join('\n')}\n`;
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? text : readFile(name));
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file);
  assert.ok(source !== undefined);
  return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) => {
    const line = d.start === undefined ? -1 : source.getLineAndCharacterOfPosition(d.start).line;
    return `${lineLabel[line] ?? '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

// ---------------------------------------------------------------- what is checked

const K8S = join(PROJECT_ROOT, 'k8s');
/** The kustomization roots: the base and every overlay. */
const ROOTS = [
  join(K8S, 'base'),
  ...readdirSync(join(K8S, 'overlays'))
    .map((d) => join(K8S, 'overlays', d))
    .filter((d) => statSync(d).isDirectory()),
];

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f))
    .sort();
}

const builds: Build[] = ROOTS.map((r) => build(r));
const rel = (p: string): string => relative(PROJECT_ROOT, p);

/** Each document of each file that a kustomization lists under `resources`, as written. */
function resourceDocuments(): Array<{ label: string; doc: Obj }> {
  const out: Array<{ label: string; doc: Obj }> = [];
  const seen = new Set<string>();
  for (const b of builds) {
    for (const o of b.objects) {
      if (o.generated || seen.has(o.source)) continue;
      seen.add(o.source);
      parseYamlDocs(join(PROJECT_ROOT, o.source)).forEach((doc, i) => out.push({ label: `${o.source}#${i}`, doc }));
    }
  }
  return out;
}

/** Each object of each build (after patches; generated ConfigMaps included). */
function builtObjects(): Array<{ label: string; doc: Obj }> {
  return builds.flatMap((b) => b.objects.map((o) => ({ label: `kustomize build ${rel(b.dir)}: ${idOf(o.doc)}`, doc: o.doc })));
}

void test('every YAML file under k8s/base and k8s/overlays is read by a kustomization (resource, generator file or patch)', () => {
  assert.ok(ROOTS.length >= 2, 'the base and at least one overlay');
  const used = new Set(builds.flatMap((b) => [...b.files]));
  for (const root of ROOTS) {
    const unused = yamlFilesUnder(root)
      .map(rel)
      .filter((f) => !used.has(f));
    assert.deepEqual(unused, [], `YAML files under ${rel(root)} that no kustomization uses`);
  }
});

void test('every resource document and every built object matches the Kubernetes schema of its kind', () => {
  const all = [...resourceDocuments(), ...builtObjects()];
  assert.ok(all.length >= 10);
  const kinds = new Set<string>();
  for (const { label, doc } of all) {
    validateSchema(doc, label);
    kinds.add(`${String(doc.apiVersion)}/${String(doc.kind)}`);
  }
  // The kinds the manifests are expected to hold (guards against an empty or truncated build).
  const expected = ['v1/ConfigMap', 'v1/Service', 'apps/v1/Deployment', 'apps/v1/StatefulSet', 'networking.k8s.io/v1/NetworkPolicy'];
  assert.deepEqual(
    expected.filter((k) => !kinds.has(k)),
    [],
    'kinds no manifest has',
  );
});

void test('no manifest has a field its kind does not define (strict field names against the kubernetes-models types)', () => {
  const problems = strictFieldProblems([...resourceDocuments(), ...builtObjects()]);
  assert.deepEqual(problems, []);
});

/**
 * The examples' kinds (Istio, Gateway API, Envoy Gateway CRDs): their model
 * classes' validate() accepts unknown fields too, so the same strict check
 * runs on them against each CRD's TypeScript interface.
 */
const EXAMPLE_TYPES: Record<string, { module: string; iface: string }> = {
  'networking.istio.io/v1alpha3/EnvoyFilter': { module: '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter', iface: 'IEnvoyFilter' },
  'networking.istio.io/v1beta1/Gateway': { module: '@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway', iface: 'IGateway' },
  'networking.istio.io/v1beta1/VirtualService': { module: '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService', iface: 'IVirtualService' },
  'security.istio.io/v1/AuthorizationPolicy': { module: '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy', iface: 'IAuthorizationPolicy' },
  'gateway.networking.k8s.io/v1/GatewayClass': { module: '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass', iface: 'IGatewayClass' },
  'gateway.networking.k8s.io/v1/Gateway': { module: '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway', iface: 'IGateway' },
  'gateway.networking.k8s.io/v1/HTTPRoute': { module: '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute', iface: 'IHTTPRoute' },
  'gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy': {
    module: '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy',
    iface: 'IEnvoyExtensionPolicy',
  },
  'gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy': {
    module: '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy',
    iface: 'IClientTrafficPolicy',
  },
  'gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy': {
    module: '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy',
    iface: 'IBackendTrafficPolicy',
  },
  'gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter': {
    module: '@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter',
    iface: 'IHTTPRouteFilter',
  },
};

function exampleType(doc: Obj, label: string): { module: string; iface: string } {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const t = EXAMPLE_TYPES[key] ?? MODELS[key];
  assert.ok(t !== undefined, `${label}: no type for ${key} (add it to EXAMPLE_TYPES)`);
  return t;
}

function exampleDocuments(): Array<{ label: string; doc: Obj }> {
  return yamlFilesUnder(join(K8S, 'examples')).flatMap((f) => parseYamlDocs(f).map((doc, i) => ({ label: `${rel(f)}#${i}`, doc })));
}

void test('no example manifest (Istio, Gateway API, Envoy Gateway) has a field its kind does not define', () => {
  const docs = exampleDocuments();
  assert.ok(docs.length >= 10);
  assert.deepEqual(strictFieldProblems(docs, exampleType), []);
  // The check bites: a misspelled field in an EnvoyFilter patch match and in an HTTPRoute rule.
  const broken = structuredClone(docs.filter(({ doc }) => doc.kind === 'EnvoyFilter' || doc.kind === 'HTTPRoute'));
  assert.ok(broken.length >= 2);
  for (const { doc } of broken) (doc.spec as Obj)[doc.kind === 'EnvoyFilter' ? 'workloadSelectr' : 'rulez'] = [];
  assert.equal(strictFieldProblems(broken, exampleType).length, broken.length);
});

void test('broken manifests fail: wrong type, misspelled field, unknown kind, missing file', () => {
  const deployment = builds[0]?.objects.find((o) => o.doc.kind === 'Deployment')?.doc;
  assert.ok(deployment !== undefined);
  const container = (d: Obj): Obj => {
    const c = ((((d.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0];
    assert.ok(c !== undefined);
    return c;
  };

  // containerPort as a string: the schema rejects it, naming the path.
  const wrongType = structuredClone(deployment);
  (container(wrongType).ports as Obj[])[0] = { name: 'http', containerPort: '8080', protocol: 'TCP' };
  assert.throws(() => validateSchema(wrongType, 'wrongType'), /containers\/0\/ports\/0\/containerPort must be integer/);
  assert.ok(strictFieldProblems([{ label: 'wrongType', doc: wrongType }]).some((p) => p.includes("'string' is not assignable to type 'number'")));

  // A misspelled field: the schema alone accepts it (which is why the strict check exists) ...
  const misspelled = structuredClone(deployment);
  (container(misspelled).securityContext as Obj).readOnlyRootFileSystem = true;
  assert.doesNotThrow(() => validateSchema(misspelled, 'misspelled'));
  // ... the strict check names it.
  const problems = strictFieldProblems([{ label: 'misspelled', doc: misspelled }]);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0] as string, /^misspelled: .*'"?readOnlyRootFileSystem"?' does not exist/);
  // A misspelled top-level spec field too.
  const topLevel = structuredClone(deployment);
  (topLevel.spec as Obj).replica = 2;
  assert.match(strictFieldProblems([{ label: 'topLevel', doc: topLevel }]).join('\n'), /'"?replica"?' does not exist/);

  // An apiVersion/kind without a schema fails instead of being skipped.
  assert.throws(
    () => validateSchema({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }, 'widget'),
    /no schema for apiVersion "example.com\/v1" kind "Widget"/,
  );
  assert.throws(() => validateSchema({ ...deployment, apiVersion: 'apps/v1beta1' }, 'old'), /no schema/);
});

void test('kustomizations: unsupported fields and missing files fail the build', async (t) => {
  const { mkdtemp, rm, writeFile, mkdir } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'ig-kustomize-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const k = (body: Obj): Promise<void> =>
    writeFile(join(dir, 'kustomization.yaml'), YAML.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...body }));
  await k({ resources: ['missing.yaml'] });
  assert.throws(() => build(dir), /missing\.yaml \(resources of .*\) must exist/);
  await k({ configMapGenerator: [{ name: 'x', files: ['nope.yaml'] }] });
  assert.throws(() => build(dir), /nope\.yaml \(configMapGenerator x\) must exist/);
  await k({ patches: [{ path: 'patch.yaml' }] });
  assert.throws(() => build(dir), /patch\.yaml \(patches of .*\) must exist/);
  await k({ commonLabels: { a: 'b' } });
  assert.throws(() => build(dir), /"commonLabels" is not supported/);
  // A replace of a ConfigMap nobody generated.
  await mkdir(join(dir, 'f'), { recursive: true });
  await writeFile(join(dir, 'f', 'a.yaml'), 'a: 1\n');
  await k({ configMapGenerator: [{ name: 'x', behavior: 'replace', files: ['f/a.yaml'] }] });
  assert.throws(() => build(dir), /behavior replace needs a ConfigMap x/);
});

void test('the test kustomize builds what `kubectl kustomize` builds (where kubectl is installed)', async (t) => {
  const run = promisify(execFile);
  try {
    await run('kubectl', ['version', '--client'], { timeout: 10_000 });
  } catch {
    return t.skip('kubectl not installed (CI relies on the test kustomize alone)');
  }
  for (const b of builds) {
    const { stdout } = await run('kubectl', ['kustomize', b.dir], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
    let text = JSON.stringify(YAML.parseAllDocuments(stdout).map((d) => d.toJS() as unknown));
    // Strip the content-hash suffix of generated names, here and in every reference.
    for (const o of b.objects.filter((x) => x.generated)) {
      const name = String((o.doc.metadata as Obj).name);
      text = text.replaceAll(new RegExp(`"${name}-[a-z0-9]{10}"`, 'g'), JSON.stringify(name));
    }
    const theirs = new Map((JSON.parse(text) as unknown[]).map((d) => (isObj(d) ? [idOf(d), d] : ['?', d])));
    const ours = new Map(b.objects.map((o) => [idOf(o.doc), o.doc]));
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), `${rel(b.dir)}: the same objects`);
    for (const [id, doc] of ours) assert.deepEqual(doc, theirs.get(id), `${rel(b.dir)}: ${id}`);
  }
});
