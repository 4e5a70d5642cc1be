/**
 * Child process for test/server/lazy-loading.test.ts: starts a sidecar
 * in-process from the config file given as the only argument, then prints
 * one JSON line — the npm packages loaded (by name) and whether proto-loader
 * was — and shuts it down. Loads are recorded with a module hook registered
 * before the sidecar's modules are imported.
 *
 *   node test/helpers/loaded-packages.ts CONFIG_FILE
 */
import { registerHooks } from 'node:module';

const packages = new Set<string>();
registerHooks({
  load(url, context, nextLoad) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m?.[1] !== undefined) packages.add(m[1]);
    return nextLoad(url, context);
  },
});

const configFile = process.argv[2];
if (configFile === undefined) throw new Error('usage: node test/helpers/loaded-packages.ts CONFIG_FILE');
const { loadConfig } = await import('../../src/config/load.ts');
const { createLogger } = await import('../../src/telemetry/logger.ts');
const { startSidecar } = await import('../../src/app.ts');
const { protosLoaded } = await import('../../src/server/proto/deferred.ts');

const config = loadConfig(configFile);
const sidecar = await startSidecar(config, { log: createLogger('error'), processMetrics: false });
process.stdout.write(`${JSON.stringify({ packages: [...packages].sort(), protoLoader: protosLoaded() })}\n`);
await sidecar.shutdown('done');
