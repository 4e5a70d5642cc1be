/** `inference-gateway config validate FILE`. */
import { loadConfig } from '../config/load.ts';
import { loadSnapshotFile } from '../control/snapshot.ts';
import { loadPublicKeys } from '../crypto/signing.ts';

export async function configCommand(argv: string[]): Promise<number> {
  const [sub, file] = argv;
  if (sub !== 'validate' || file === undefined) {
    process.stdout.write('Usage: inference-gateway config validate FILE\n');
    return sub === '--help' || sub === '-h' ? 0 : 2;
  }
  const config = loadConfig(file); // throws ConfigError naming each bad path
  const snapshot = loadSnapshotFile(config.routing.snapshotFile, { keys: loadPublicKeys(config.routing.publicKeys) });
  process.stdout.write(`${file}: ok (${config.auth.apiKeys.length} API keys; routing snapshot ${snapshot.version} with ${snapshot.models.size} models)\n`);
  return 0;
}
