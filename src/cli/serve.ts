/**
 * `inference-gateway serve --config FILE`: run the sidecar until SIGTERM.
 * A process-level fault is logged and the process exits non-zero so the
 * orchestrator restarts it: never a silent pass-through.
 */
import { flushCompileCache } from 'node:module';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { startSidecar } from '../app.ts';
import { createLogger } from '../telemetry/logger.ts';
import { errorMessage } from '../shared/values.ts';
import { trimHeapAfterStartup } from './trim-heap.ts';

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help === true) {
    process.stdout.write('Usage: inference-gateway serve [--config FILE]\n  Without --config the embedded defaults apply (see docs/configuration.md).\n');
    return 0;
  }
  const config = loadConfig(values.config ?? null);
  const log = createLogger(config.logging.level);
  process.on('uncaughtException', (err) => {
    log.fatal({ err: err.message, stack: err.stack }, 'uncaught exception: exiting');
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err: errorMessage(err) }, 'unhandled rejection: exiting');
    process.exit(70);
  });
  const sidecar = await startSidecar(config, { log });
  // Everything the configuration loads is loaded now: write it to the compile cache (bin/compile-cache.js) so the next
  // start skips the type stripper even if this process is killed rather than stopped. A no-op when the cache is off.
  flushCompileCache();
  // Start-up's garbage and the young generation it grew are released now rather than kept for the life of the
  // process (./trim-heap.ts); a one-off pause, before any stream is likely to be open.
  log.debug({ ms: Math.round(trimHeapAfterStartup()) }, 'start-up heap trimmed');
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void sidecar.shutdown(sig));
  await sidecar.stopped;
  return 0;
}
