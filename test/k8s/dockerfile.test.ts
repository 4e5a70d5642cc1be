// The sidecar image (Dockerfile, .dockerignore). No Docker engine runs these
// tests, so the image is checked in three ways:
//  - its structure: pinned Node 24 base, a dependency stage with
//    `npm ci --omit=dev`, a numeric non-root user, the entrypoint + command
//    equal to the Deployment's sidecar command;
//  - its contents: every module reachable from the CLI entry point lies in a
//    copied folder, and every package it imports is a production dependency
//    (importing a devDependency from runtime code fails here);
//  - for real: a folder laid out as the image's /app — the COPY list and the
//    production packages of package-lock.json only, nothing above it to fall
//    back on — runs the Deployment's command with the base's config, serves
//    its probes, drains on SIGTERM, writes nothing into /app, and runs the
//    operator CLI commands the docs use.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { build, find, isObj, type Obj } from './kustomize.ts';

const run = promisify(execFile);

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Instructions with continuation lines joined and comments dropped; `stage` counts FROMs (0-based). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (pending !== '' && line.startsWith('#')) continue;
    pending = pending === '' ? line : `${pending} ${line}`;
    if (pending.endsWith('\\')) {
      pending = pending.slice(0, -1).trim();
      continue;
    }
    const m = /^(\S+)\s*(.*)$/.exec(pending);
    pending = '';
    if (m === null) continue;
    const op = (m[1] as string).toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2] as string, stage });
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'));
const finalStage = Math.max(...dockerfile.map((i) => i.stage));
const inFinal = (op: string): Instruction[] => dockerfile.filter((i) => i.stage === finalStage && i.op === op);

/** The build-context sources of the final stage's COPY instructions (not `--from=`). */
function contextCopies(): Array<{ sources: string[]; dest: string }> {
  return inFinal('COPY')
    .filter((i) => !/--from=/.test(i.args))
    .map((i) => {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      assert.ok(parts.length >= 2, `COPY ${i.args}`);
      return { sources: parts.slice(0, -1), dest: parts.at(-1) as string };
    });
}

const overlay = build(join(PROJECT_ROOT, 'k8s', 'base'));
const deployment = find(overlay, 'Deployment', 'inference-gateway');
const podSpec = ((deployment.spec as Obj).template as Obj).spec as Obj;
const sidecar = (podSpec.containers as Obj[]).find((c) => c.name === 'sidecar');
assert.ok(sidecar !== undefined);

void test('Dockerfile: pinned Node 24 slim base, a production-only dependency stage, a numeric non-root user', () => {
  const args = new Map(
    dockerfile
      .filter((i) => i.op === 'ARG' && i.stage === -1)
      .map((i) => {
        const [k, v] = i.args.split('=');
        return [k as string, v ?? ''];
      }),
  );
  const froms = dockerfile.filter((i) => i.op === 'FROM');
  assert.ok(froms.length >= 2, 'multi-stage: dependencies are installed in their own stage');
  for (const f of froms) {
    const image = (f.args.split(/\s+/)[0] as string).replace(/^\$\{(\w+)\}$/, (_m, k: string) => args.get(k) ?? `<unset ${k}>`);
    assert.match(image, /^node:24-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/, `FROM ${f.args}: the official Node 24 slim image, major pinned`);
  }
  const deps = dockerfile.filter((i) => i.stage === 0);
  const install = deps.filter((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
  assert.equal(install.length, 1, 'the first stage runs npm ci');
  assert.match((install[0] as Instruction).args, /--omit=dev/, 'production dependencies only');
  // npm ci installs exactly the lock file: both must be copied before it runs.
  const copiedBefore = deps
    .slice(0, deps.indexOf(install[0] as Instruction))
    .filter((i) => i.op === 'COPY')
    .map((i) => i.args)
    .join(' ');
  assert.match(copiedBefore, /package\.json/);
  assert.match(copiedBefore, /package-lock\.json/);

  // The runtime stage takes node_modules from the dependency stage, never from the build context.
  assert.ok(
    inFinal('COPY').some((i) => /--from=\S+/.test(i.args) && /node_modules/.test(i.args)),
    'node_modules comes from the dependency stage',
  );
  for (const c of contextCopies()) assert.ok(!c.sources.some((s) => s === '.' || s.includes('node_modules')), `COPY ${c.sources.join(' ')}: only named files`);

  const user = inFinal('USER').at(-1);
  assert.ok(user !== undefined, 'the image sets USER');
  const m = /^(\d+):(\d+)$/.exec(user.args);
  assert.ok(m !== null, 'USER is numeric uid:gid, so the kubelet can check runAsNonRoot');
  assert.ok(Number(m[1]) > 0 && Number(m[2]) > 0, 'not root');
  const sc = podSpec.securityContext as Obj;
  assert.deepEqual([Number(m[1]), Number(m[2])], [sc.runAsUser, sc.runAsGroup], 'the same uid/gid as the pod');
  assert.equal(inFinal('WORKDIR').at(-1)?.args, '/app');
  assert.ok(!inFinal('RUN').some((i) => /\b(chmod|chown)\b/.test(i.args)), 'the app files stay root-owned and read-only for the runtime user');
});

void test('Dockerfile: ENTRYPOINT + CMD are the Deployment sidecar command; the image refers to the same entry point', () => {
  const json = (op: string): string[] => {
    const i = inFinal(op).at(-1);
    assert.ok(i !== undefined, `${op} is set`);
    const v: unknown = JSON.parse(i.args);
    assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${op} in exec (JSON) form: no shell, signals reach node`);
    return v;
  };
  const command = sidecar.command as string[];
  assert.deepEqual([...json('ENTRYPOINT'), ...json('CMD')], command, 'docker run IMAGE runs what the pod runs');
  assert.equal(sidecar.args, undefined, 'the Deployment overrides the whole command, not just CMD');
  assert.ok(existsSync(join(PROJECT_ROOT, command[1] as string)));
  assert.equal(inFinal('EXPOSE').at(-1)?.args, String(((sidecar.ports as Obj[])[0] as Obj).containerPort));
  assert.match(String(sidecar.image), /^inference-gateway:/, 'the base refers to the image by the name the docs build');
});

// ---------------------------------------------------------------- the runtime import graph

interface Graph {
  /** Project files reachable from the entry point (static imports, re-exports, literal dynamic imports and require calls). */
  readonly files: Set<string>;
  /** Bare package specifiers imported for their values (type-only imports are erased). */
  readonly packages: Map<string, string>;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

function importGraph(entry: string): Graph {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [resolve(entry)];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const specs: string[] = [];
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) && !(node.importClause?.isTypeOnly ?? false) && ts.isStringLiteral(node.moduleSpecifier))
        specs.push(node.moduleSpecifier.text);
      if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier))
        specs.push(node.moduleSpecifier.text);
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const arg = node.arguments[0];
        assert.ok(arg !== undefined && ts.isStringLiteralLike(arg), `${relative(PROJECT_ROOT, file)}: a dynamic import of a computed name cannot be checked`);
        specs.push(arg.text);
      }
      // A `require` made with createRequire loads on first use what a static import would load at start (proto/deferred.ts).
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
        const arg = node.arguments[0];
        assert.ok(arg !== undefined && ts.isStringLiteralLike(arg), `${relative(PROJECT_ROOT, file)}: a require of a computed name cannot be checked`);
        specs.push(arg.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    for (const s of specs) {
      if (s.startsWith('.')) {
        const target = resolve(dirname(file), s);
        assert.ok(existsSync(target), `${relative(PROJECT_ROOT, file)} imports ${s}, which does not exist`);
        queue.push(target);
      } else if (!isBuiltin(s)) {
        packages.set(packageName(s), relative(PROJECT_ROOT, file));
      }
    }
  }
  return { files, packages };
}

/** The problems of a graph against package.json: packages that are not production dependencies. */
function nonProductionImports(graph: Graph, pkg: { dependencies?: Record<string, string>; devDependencies?: Record<string, string> }): string[] {
  return [...graph.packages]
    .filter(([name]) => pkg.dependencies?.[name] === undefined)
    .map(
      ([name, from]) =>
        `${from} imports "${name}", which is ${pkg.devDependencies?.[name] === undefined ? 'not a dependency' : 'a devDependency'} (not installed by npm ci --omit=dev)`,
    );
}

const pkgJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const entry = join(PROJECT_ROOT, (sidecar.command as string[])[1] as string);

void test('every package the CLI can load at run time is a production dependency, and every module lies in a copied folder', () => {
  const graph = importGraph(entry);
  // Every command the CLI dispatches to is in the graph (they are dynamic imports).
  assert.ok([...graph.files].some((f) => f.endsWith(`${sep}serve.ts`)) && [...graph.files].some((f) => f.endsWith(`${sep}keys.ts`)));
  assert.ok(graph.packages.has('@grpc/proto-loader') && graph.packages.has('zod'), 'the scan finds the runtime packages');
  // The sidecar serves gRPC on its own HTTP/2 transport: grpc-js' runtime is for the control plane's xDS server (and
  // clients in tests and tools) only — `serve` never loads it.
  assert.ok(!importGraph(join(PROJECT_ROOT, 'src', 'cli', 'serve.ts')).packages.has('@grpc/grpc-js'), 'the sidecar does not load @grpc/grpc-js');
  assert.match(graph.packages.get('@grpc/grpc-js') ?? 'src/control-plane/', /^src\/control-plane\//, 'only the control plane loads @grpc/grpc-js');
  assert.deepEqual(nonProductionImports(graph, pkgJson), []);

  const copied = contextCopies().flatMap((c) => c.sources);
  for (const f of graph.files) {
    const r = relative(PROJECT_ROOT, f);
    assert.ok(
      copied.some((c) => r === c || r.startsWith(`${c.replace(/\/$/, '')}/`)),
      `${r} is loaded at run time but not copied into the image`,
    );
  }
  // The .proto files proto-loader loads for ext_authz (src/server/proto/load.ts: PROTOS_DIR), on the first call.
  assert.ok(copied.includes('protos'), 'protos/ is copied');
});

void test('the import scan catches a runtime import of a devDependency, including a dynamic one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ig-imports-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'main.ts'), "import type { Foo } from 'typescript';\nimport { a } from './a.ts';\nexport const x = a;\n");
  writeFileSync(
    join(dir, 'a.ts'),
    "import { z } from 'zod';\nexport const a = z;\nexport const later = () => import('openai');\nexport { thing } from '@kubernetes-models/istio';\n",
  );
  const problems = nonProductionImports(importGraph(join(dir, 'main.ts')), pkgJson);
  assert.deepEqual(problems.map((p) => p.replace(/^\S+ /, '')).sort(), [
    'imports "@kubernetes-models/istio", which is a devDependency (not installed by npm ci --omit=dev)',
    'imports "openai", which is a devDependency (not installed by npm ci --omit=dev)',
  ]);
});

// ---------------------------------------------------------------- .dockerignore

/** Docker's rules: patterns in order, the last match wins, `!` re-includes; a pattern matching a parent folder matches everything below. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegex = (p: string): RegExp => {
    let re = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i] as string;
      if (c === '*' && p[i + 1] === '*') {
        re += p[i + 2] === '/' ? '(?:.*/)?' : '.*';
        i += p[i + 2] === '/' ? 2 : 1;
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${re}$`);
  };
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+/, '').replace(/\/+$/, '');
    const re = toRegex(pattern);
    if (candidates.some((c) => re.test(c))) ignored = !negate;
  }
  return ignored;
}

void test('.dockerignore keeps dependencies, local state, tests and docs out of the build context and lets every COPY source in', () => {
  const patterns = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const kept = [
    'node_modules/zod/package.json',
    '.venv/bin/python',
    '.run/stack/demo-api-key',
    'test/k8s/dockerfile.test.ts',
    'docs/api-keys.md',
    '.git/HEAD',
    'bench/run.ts',
    'k8s/base/gateway.yaml',
    'src/node_modules/x.js',
    'npm-debug.log',
    '.tmp/x',
  ];
  assert.deepEqual(
    kept.filter((p) => !dockerIgnored(patterns, p)),
    [],
    'sent to the Docker build but must not be',
  );
  for (const c of contextCopies()) {
    for (const s of c.sources) {
      const full = join(PROJECT_ROOT, s);
      assert.ok(existsSync(full), `COPY source ${s} exists`);
      const files = statSync(full).isDirectory() ? readdirSync(full, { recursive: true, encoding: 'utf8' }).map((f) => `${s}/${f}`) : [s];
      for (const f of files) assert.ok(!dockerIgnored(patterns, f), `${f} (COPY ${s}) is excluded by .dockerignore`);
    }
  }
  // The matcher itself: a negated pattern re-includes, the last match wins.
  assert.equal(dockerIgnored(['*', '!src/', '**/x'], 'src/a/x'), true);
  assert.equal(dockerIgnored(['*', '!src/'], 'src/a/b.ts'), false);
});

// ---------------------------------------------------------------- the image, laid out and run

/** Lays out /app: the final stage's context COPYs, plus the production packages of package-lock.json. */
function stageImage(app: string): void {
  // Docker's COPY: a folder's contents go into the destination; a file goes
  // into it when it ends with "/", else becomes it. Destinations are relative
  // to WORKDIR (/app).
  for (const c of contextCopies()) {
    for (const s of c.sources) {
      const src = join(PROJECT_ROOT, s);
      const dest = join(app, c.dest);
      const target = statSync(src).isDirectory() || !c.dest.endsWith('/') ? dest : join(dest, basename(s));
      cpSync(src, target, { recursive: true });
    }
  }
  const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  for (const [path, meta] of Object.entries(lock.packages)) {
    // Top-level production packages; their nested node_modules come along with them.
    if (path === '' || meta.dev === true || path.slice('node_modules/'.length).includes('node_modules/')) continue;
    cpSync(join(PROJECT_ROOT, path), join(app, path), { recursive: true, dereference: true });
  }
}

function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

void test('the image layout runs: production packages only, the Deployment command and the base config serve and drain; the CLI works', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ig-image-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  // Nothing above /app may supply a package (Node looks in every parent's node_modules).
  for (let d = root; d !== dirname(d); d = dirname(d)) assert.ok(!existsSync(join(d, 'node_modules')), `${d}/node_modules would hide a missing package`);
  const app = join(root, 'app');
  stageImage(app);
  const nodeBin = process.execPath;
  // The layout really lacks the devDependencies.
  await assert.rejects(run(nodeBin, ['--input-type=module', '-e', "await import('typescript')"], { cwd: app }), /Cannot find package 'typescript'/);

  // Pod paths → a temp dir; everything else as shipped in the base.
  const pod = join(root, 'pod');
  mkdirSync(join(pod, 'audit'), { recursive: true });
  const gatewayYaml = YAML.parse(readFileSync(join(PROJECT_ROOT, 'k8s', 'base', 'gateway.yaml'), 'utf8')) as Obj;
  const g = structuredClone(gatewayYaml);
  const server = g.server as Obj;
  (server.grpc as Obj).socket = join(pod, 'sidecar.sock');
  server.admin = { host: '127.0.0.1', port: 0 };
  (g.routing as Obj).snapshotFile = join(pod, 'routing.yaml');
  (g.routing as Obj).credentialsDir = join(pod, 'credentials');
  (g.auth as Obj).apiKeyFiles = [join(pod, 'keys.yaml')];
  (g.audit as Obj).file = join(pod, 'audit', 'audit.jsonl');
  (g.audit as Obj).signingKeyFile = join(pod, 'audit', 'key.pem');
  writeFileSync(join(pod, 'routing.yaml'), readFileSync(join(PROJECT_ROOT, 'k8s', 'base', 'routing.yaml')));
  writeFileSync(join(pod, 'gateway.yaml'), YAML.stringify(g));
  mkdirSync(join(pod, 'credentials'));

  const before = listTree(app);
  const [nodeCmd, ...cliArgs] = sidecar.command as string[];
  assert.equal(nodeCmd, 'node');
  const cli = (args: string[]) => run(nodeBin, [cliArgs[0] as string, ...args], { cwd: app, timeout: 30_000 });

  // The operator chores the docs run from the image: a key file for the Secret, config validation.
  const created = await cli(['keys', 'create', '--file', join(pod, 'keys.yaml'), '--principal', 'smoke', '--org', 'acme', '--tenant', 'ops']);
  assert.match(created.stdout.trim(), /^igw_[0-9A-Za-z]{46}$/);
  await cli(['config', 'validate', join(pod, 'gateway.yaml')]);

  // The Deployment's command, with only the config path swapped.
  const args = cliArgs.map((a, i) => (cliArgs[i - 1] === '--config' ? join(pod, 'gateway.yaml') : a));
  const child = spawn(nodeBin, args, { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' } });
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const adminPort = await new Promise<number>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sidecar did not start:\n${out}`)), 20_000);
    const check = (): void => {
      const line = out.split('\n').find((l) => l.includes('"sidecar ready"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolveReady((JSON.parse(line) as { adminPort: number }).adminPort);
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`the sidecar exited (${code}):\n${out}`)));
  });
  for (const probe of [sidecar.readinessProbe, sidecar.livenessProbe]) {
    const path = ((probe as Obj).httpGet as Obj).path as string;
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}${path}`)).status, 200, path);
  }
  assert.match(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(), /^inference_gateway_/m);
  assert.ok(existsSync(join(pod, 'sidecar.sock')), 'the ext_proc socket is up');
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.ok(isObj(JSON.parse(out.split('\n').find((l) => l.includes('"sidecar ready"')) ?? '{}')));
  // Read-only root filesystem: the runtime wrote nothing under /app.
  assert.deepEqual(listTree(app), before, 'the sidecar and the CLI must not write into the image');
});
