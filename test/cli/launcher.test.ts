/**
 * The launcher (bin/inference-gateway.js) and Node's compile cache it turns
 * on (bin/compile-cache.js): a second start of the same sources loads no
 * type stripper, an edited source is stripped again (never run stale), and
 * without the cache everything still runs, by type stripping. Each case is a
 * fresh process with its own cache directory (NODE_COMPILE_CACHE), except
 * the one that checks the launcher's own choice of directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMPILE_CACHE_DIR } from '../../bin/compile-cache.js';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';

const LAUNCHER = join(PROJECT_ROOT, 'bin', 'inference-gateway.js');
const COMPILE_CACHE_JS = pathToFileURL(join(PROJECT_ROOT, 'bin', 'compile-cache.js')).href;

/** Node's type stripper is a bundled module; a process that strips any .ts file has it in its load list. */
const REPORT_STRIPPER = `data:text/javascript,process.on('exit', () => process.stderr.write('stripper=' + process.moduleLoadList.some((m) => m.includes('amaro')) + '\\n'))`;

/** Environment without the variables that would turn the cache on or off around what a case sets. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const out = { ...process.env, ...extra };
  if (!('NODE_COMPILE_CACHE' in extra)) delete out.NODE_COMPILE_CACHE;
  if (!('NODE_DISABLE_COMPILE_CACHE' in extra)) delete out.NODE_DISABLE_COMPILE_CACHE;
  return out;
}

function run(args: string[], extraEnv: Record<string, string>): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, args, { env: env(extraEnv), encoding: 'utf8', timeout: 60_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** Imports `module` after enableCompileCache(); reports the directory in use, the module's value, and the stripper. */
function importThroughCache(module: string, extraEnv: Record<string, string>): { dir: string | null; value: number; stripper: boolean } {
  const code = [
    `import { enableCompileCache } from '${COMPILE_CACHE_JS}';`,
    'const dir = enableCompileCache();',
    `const { value } = await import('${pathToFileURL(module).href}');`,
    "console.log(JSON.stringify({ dir, value, stripper: process.moduleLoadList.some((m) => m.includes('amaro')) }));",
  ].join('\n');
  const r = run(['--input-type=module', '-e', code], extraEnv);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { dir: string | null; value: number; stripper: boolean };
}

test('compile cache: the second run of a module does not load the stripper; an edited module is stripped again, never run stale', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-compile-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cache = join(dir, 'cache');
  const module = join(dir, 'm.ts');
  writeFileSync(module, 'export const value: number = 1;\n');
  // What a run saw: the value, the stripper, and whether the cache in use was this one (Node adds a subdirectory).
  const seen = (): { value: number; stripper: boolean; here: boolean } => {
    const r = importThroughCache(module, { NODE_COMPILE_CACHE: cache });
    return { value: r.value, stripper: r.stripper, here: r.dir === cache || r.dir?.startsWith(`${cache}/`) === true };
  };
  assert.deepEqual(seen(), { value: 1, stripper: true, here: true });
  assert.deepEqual(seen(), { value: 1, stripper: false, here: true });
  writeFileSync(module, 'export const value: number = 2;\n');
  assert.deepEqual(seen(), { value: 2, stripper: true, here: true });
  assert.deepEqual(seen(), { value: 2, stripper: false, here: true });
});

test("compile cache: the launcher's directory is under node_modules/.cache; NODE_DISABLE_COMPILE_CACHE turns it off and modules still load", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-compile-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const module = join(dir, 'm.ts');
  writeFileSync(module, 'export const value: number = 3;\n');
  assert.equal(COMPILE_CACHE_DIR, join(PROJECT_ROOT, 'node_modules', '.cache', 'inference-gateway', 'compile'));
  const inUse = importThroughCache(module, {}).dir;
  assert.ok(inUse === COMPILE_CACHE_DIR || inUse?.startsWith(`${COMPILE_CACHE_DIR}/`) === true, String(inUse));
  assert.deepEqual(importThroughCache(module, { NODE_DISABLE_COMPILE_CACHE: '1' }), { dir: null, value: 3, stripper: true });
});

test("launcher: `serve` loads the sidecar's modules from the cache on the second start, without the type stripper", (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'igw-compile-cache-'));
  t.after(() => rmSync(cache, { recursive: true, force: true }));
  // `serve --help` imports the serve command and, with it, the sidecar's whole static module graph.
  const args = ['--import', REPORT_STRIPPER, LAUNCHER, 'serve', '--help'];
  const first = run(args, { NODE_COMPILE_CACHE: cache });
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /Usage: inference-gateway serve/);
  assert.match(first.stderr, /stripper=true/);
  const second = run(args, { NODE_COMPILE_CACHE: cache });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /Usage: inference-gateway serve/);
  assert.match(second.stderr, /stripper=false/);
  // Without the cache: the same answer, by type stripping.
  const off = run(args, { NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.equal(off.status, 0, off.stderr);
  assert.equal(off.stdout, second.stdout);
  assert.match(off.stderr, /stripper=true/);
});
