/**
 * The folders show the request's path (transport → pipeline → stages →
 * stores), so the import graph must say the same: no folder imports a folder
 * that imports it back, and the layers only look down. Type-only imports
 * count: they couple as much as value imports do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

/** Every relative import (static, dynamic, re-export) of every .ts file: [fromFile, toFile] relative to src. */
function importEdges(root: string): Array<[string, string]> {
  const edges: Array<[string, string]> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const text = readFileSync(path, 'utf8');
        for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
          edges.push([relative(root, path), relative(root, resolve(dirname(path), m[1] as string))]);
        }
      }
    }
  };
  walk(root);
  return edges;
}

/** The folder a file belongs to at a granularity: its directory, or only the first `depth` segments of it. */
function folderOf(file: string, depth: number): string {
  const parts = dirname(file)
    .split(sep)
    .filter((p) => p !== '.');
  return parts.length === 0 ? '(root)' : parts.slice(0, depth).join('/');
}

type Graph = Map<string, Set<string>>;

function folderGraph(edges: ReadonlyArray<[string, string]>, depth: number): Graph {
  const g: Graph = new Map();
  for (const [from, to] of edges) {
    const a = folderOf(from, depth);
    const b = folderOf(to, depth);
    if (!g.has(a)) g.set(a, new Set());
    if (!g.has(b)) g.set(b, new Set());
    if (a !== b) g.get(a)?.add(b);
  }
  return g;
}

/** Strongly connected components with more than one folder (Tarjan): each is a cycle. */
export function cycles(g: Graph): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
        on.delete(w);
        scc.push(w);
        if (w === v) break;
      }
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

const edges = importEdges(SRC);

test('the import scan sees the imports (a sanity floor, so an empty scan cannot pass)', () => {
  assert.ok(edges.length > 200, `only ${edges.length} imports found`);
  assert.ok(edges.some(([f, t]) => f === 'app.ts' && t === 'pipeline/processor.ts'));
  assert.ok(edges.some(([f, t]) => f.startsWith('families/openai/') && t === 'pipeline/ports.ts'));
});

test('the cycle finder finds a cycle, including one through three folders', () => {
  const g: Graph = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a'])],
    ['d', new Set(['a'])],
  ]);
  assert.deepEqual(cycles(g), [['a', 'b', 'c']]);
  assert.deepEqual(
    cycles(
      new Map([
        ['a', new Set(['b'])],
        ['b', new Set()],
      ]),
    ),
    [],
  );
});

for (const [what, depth] of [
  ['top-level folders (src/x)', 1],
  ['every folder (src/x/y)', 9],
] as const) {
  test(`no import cycle between ${what}`, () => {
    assert.deepEqual(cycles(folderGraph(edges, depth)), []);
  });
}

/** Which folders each layer may import (besides itself). A prefix allows its subfolders. */
const LAYERS: ReadonlyArray<{ readonly layer: string; readonly may: readonly string[]; readonly why: string }> = [
  { layer: 'shared', may: [], why: 'the helpers every layer uses import nothing of ours' },
  { layer: 'pipeline', may: ['shared', 'telemetry'], why: 'the core depends on ports, never on what implements them' },
  { layer: 'families', may: ['pipeline', 'shared'], why: 'an API family knows its protocol and the ports, not stages or stores' },
  {
    layer: 'stages',
    may: ['pipeline', 'config', 'crypto', 'stores', 'shared', 'telemetry'],
    why: 'decisions over the request, behind ports; stores are theirs to use',
  },
  { layer: 'server', may: ['pipeline', 'telemetry', 'shared'], why: 'the transport hands requests to the processor; it builds nothing' },
  { layer: 'stores', may: ['pipeline', 'config', 'crypto', 'families/endpoints.ts', 'shared', 'telemetry'], why: 'stores are below the stages' },
  {
    layer: 'control',
    may: ['pipeline', 'config', 'crypto', 'families/endpoints.ts', 'families/common/transform-params.ts', 'stores/redis-connection.ts', 'shared', 'telemetry'],
    why: "snapshot delivery feeds the route stage, it does not use it; the snapshot format names endpoints and transform parameters from the families' plain tables",
  },
  {
    layer: 'control-plane',
    may: ['pipeline', 'config', 'control', 'crypto', 'stores', 'stages/auth', 'families/endpoints.ts', 'shared', 'telemetry'],
    why: 'a separate process, never on the request path (admin API, xDS server): it writes what the data plane reads, and reuses the JWT and mTLS verifiers for its own callers',
  },
  {
    layer: 'tracing',
    may: ['pipeline', 'config', 'telemetry', 'shared'],
    why: 'request spans read the request context behind the RequestTracer port; only the composition root loads them',
  },
  {
    layer: 'config',
    may: ['families/endpoints.ts', 'families/openai/endpoints.ts', 'pipeline/endpoint.ts', 'shared'],
    why: "the schema names endpoints from the families' tables, nothing else",
  },
];

for (const { layer, may, why } of LAYERS) {
  test(`${layer}/ imports only ${may.length === 0 ? 'itself' : may.join(', ')} (${why})`, () => {
    const bad = edges.filter(
      ([from, to]) => from.startsWith(`${layer}/`) && !to.startsWith(`${layer}/`) && !may.some((m) => to === m || to.startsWith(`${m}/`)),
    );
    assert.deepEqual(
      bad.map(([f, t]) => `${f} → ${t}`),
      [],
    );
  });
}

test('a stage imports no other stage (stages meet only in the pipeline)', () => {
  const bad = edges.filter(([from, to]) => from.startsWith('stages/') && to.startsWith('stages/') && from.split('/')[1] !== to.split('/')[1]);
  assert.deepEqual(
    bad.map(([f, t]) => `${f} → ${t}`),
    [],
  );
});

test('only the composition root loads the tracing SDK, and only with a dynamic import (tracing off loads none of it)', () => {
  const importers = edges.filter(([from, to]) => to.startsWith('tracing/') && !from.startsWith('tracing/'));
  assert.deepEqual(
    importers.map(([f, t]) => `${f} → ${t}`),
    ['app.ts → tracing/otel.ts', 'app.ts → tracing/otel.ts'],
  );
  const app = readFileSync(join(SRC, 'app.ts'), 'utf8');
  assert.match(app, /import type \{ Tracing \} from '\.\/tracing\/otel\.ts'/, 'the static import is type-only (erased)');
  assert.match(app, /await import\('\.\/tracing\/otel\.ts'\)/, 'the value import is dynamic');
});

test('only the composition root and the CLI import across every layer', () => {
  const importsStages = new Set(edges.filter(([, to]) => to.startsWith('stages/')).map(([from]) => from.split('/')[0] as string));
  for (const f of importsStages) assert.ok(['stages', 'app.ts', 'cli', 'control-plane'].includes(f), `${f} imports a stage`);
});
