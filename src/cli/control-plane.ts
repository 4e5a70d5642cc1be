/** `inference-gateway control-plane --config FILE` (docs/control-plane.md). */
import { parseArgs } from 'node:util';
import { createLogger } from '../telemetry/logger.ts';
import { loadControlPlaneConfig } from '../control-plane/config.ts';
import { startControlPlane } from '../control-plane/main.ts';
import { openApiDocument } from '../control-plane/openapi.ts';

const USAGE = `Usage: inference-gateway control-plane --config FILE
       inference-gateway control-plane --openapi      print the admin API's OpenAPI document
`;

export async function controlPlaneCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, openapi: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.openapi === true) {
    process.stdout.write(`${JSON.stringify(openApiDocument(), null, 2)}\n`);
    return 0;
  }
  if (values.config === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const cfg = loadControlPlaneConfig(values.config);
  const log = createLogger(cfg.logging.level);
  const cp = await startControlPlane(cfg, log);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('control plane stopping');
  await cp.stop();
  return 0;
}
