/** `inference-gateway config validate FILE`. */
import { loadConfig } from '../config/load.ts';
import { ConfigError } from '../config/errors.ts';
import { reviewSnapshot } from '../control/destinations-check.ts';
import { loadSnapshotFile } from '../control/snapshot.ts';
import { loadPublicKeys } from '../crypto/signing.ts';
import { type CommandGroup, dispatch, usage } from './dispatch.ts';

const CONFIG: CommandGroup = {
  name: 'config',
  header: 'Usage: ',
  commands: { validate: { usage: 'inference-gateway config validate FILE\n', run: validate } },
  // As config has always answered: the usage on stdout, `help` not a help word.
  helpWords: ['--help', '-h'],
  missingTo: 'stdout',
  unknown: 'as-missing',
};

export async function configCommand(argv: string[]): Promise<number> {
  return dispatch(CONFIG, argv);
}

function validate(argv: string[]): number {
  const file = argv[0];
  if (file === undefined) {
    process.stdout.write(usage(CONFIG));
    return 2;
  }
  const config = loadConfig(file); // throws ConfigError naming each bad path
  const snapshot = loadSnapshotFile(config.routing.snapshotFile, { keys: loadPublicKeys(config.routing.publicKeys) });
  // Destination rules against this snapshot: a rule no deployment of a model it applies to satisfies.
  const review = reviewSnapshot({ rules: config.policy.destinations, mode: config.policy.destinationCheck }, null, snapshot);
  if (review.refuse) throw new ConfigError(config.routing.snapshotFile, review.problems);
  for (const p of review.problems) process.stderr.write(`warning: ${p}\n`);
  process.stdout.write(`${file}: ok (${config.auth.apiKeys.length} API keys; routing snapshot ${snapshot.version} with ${snapshot.models.size} models)\n`);
  return 0;
}
