#!/usr/bin/env node
// Launcher for the `inference-gateway` CLI. The project runs on Node 24
// (TypeScript by type stripping); when started by an older Node — e.g. the
// system one through a shell without node_modules/.bin on PATH — re-run
// under the Node 24 binary installed by the `node` devDependency.
//
// Before the first .ts file loads it turns on Node's compile cache
// (compile-cache.js): a start that finds the sources there does not load the
// type stripper, which lowers the sidecar's resident memory. This is how the
// sidecar is meant to be started (`inference-gateway serve`); running
// `node src/cli/main.ts` directly still works, without the cache.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { enableCompileCache } from './compile-cache.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const main = join(root, 'src', 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
  enableCompileCache();
  await import(pathToFileURL(main).href);
} else {
  const node24 = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node24)) {
    console.error(`inference-gateway needs Node 24 or newer (this is ${process.version}); run npm install first.`);
    process.exit(1);
  }
  const r = spawnSync(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
