// Node's on-disk compile cache for the gateway's processes.
//
// Node runs the TypeScript sources by type stripping, and the stripper is a
// WebAssembly module that, once loaded, stays resident for the life of the
// process (with the cache the sidecar idles ~27 MB lower: docs/benchmarks.md,
// "2026-12-06: idle RSS", `npm run bench:idle-rss`). With the
// compile cache on, Node keeps the stripped JavaScript and V8's code cache of
// every module it loads on disk, and a later start that finds a module there
// neither strips it nor loads the stripper. Node checks each entry against
// the module's current source, so an edited file is stripped again, never
// served stale.
//
// Plain JavaScript on purpose: it must run before the first .ts file loads.
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the cache lives: with the dependencies, so `npm ci` starts it afresh (`NODE_COMPILE_CACHE` overrides it). */
export const COMPILE_CACHE_DIR = join(dirname(dirname(fileURLToPath(import.meta.url))), 'node_modules', '.cache', 'inference-gateway', 'compile');

/**
 * Turns the cache on for this process and returns the directory in use (NODE_COMPILE_CACHE's, when that is set), or
 * null when it is off: disabled with
 * NODE_DISABLE_COMPILE_CACHE, or the directory cannot be created (a read-only file system). Without the cache
 * everything runs as before, by type stripping alone.
 */
export function enableCompileCache() {
  try {
    const { status, directory } = module.enableCompileCache(COMPILE_CACHE_DIR);
    const { ENABLED, ALREADY_ENABLED } = module.constants.compileCacheStatus;
    return status === ENABLED || status === ALREADY_ENABLED ? (directory ?? null) : null;
  } catch {
    return null;
  }
}
