/** `inference-gateway keys create|hash`. */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateApiKey, hashApiKey, parseApiKey } from '../stages/auth/api-key-format.ts';

const HELP = `Usage:
  inference-gateway keys create --principal P --org O --tenant T [--tier standard] [--model ID]... [--expires ISO]
      Prints the new key once (stdout, first line) and the auth.apiKeys entry to add to the config.
  inference-gateway keys hash < keyfile
      Prints the stored form of a key read from stdin.
`;

export async function keysCommand(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'create') return create(argv.slice(1));
  if (sub === 'hash') return hash();
  process.stdout.write(HELP);
  return sub === '--help' || sub === '-h' ? 0 : 2;
}

function create(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      principal: { type: 'string' },
      org: { type: 'string' },
      tenant: { type: 'string' },
      tier: { type: 'string', default: 'standard' },
      model: { type: 'string', multiple: true },
      expires: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.principal === undefined || values.org === undefined || values.tenant === undefined) {
    process.stderr.write('keys create: --principal, --org and --tenant are required\n');
    return 2;
  }
  const k = generateApiKey();
  const entry: Record<string, unknown> = {
    id: k.id,
    hash: k.hash,
    principal: values.principal,
    org: values.org,
    tenant: values.tenant,
    tier: values.tier,
    models: values.model ?? ['*'],
  };
  if (values.expires !== undefined) entry['expiresAt'] = values.expires;
  process.stdout.write(`${k.key}\n`);
  process.stderr.write('\nThe key above is shown once. Add this entry under auth.apiKeys:\n');
  process.stderr.write(stringify([entry]));
  return 0;
}

async function hash(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const key = Buffer.concat(chunks).toString('utf8').trim();
  if (!parseApiKey(key).ok) {
    process.stderr.write('keys hash: that is not a well-formed inference-gateway key (bad shape or checksum)\n');
    return 1;
  }
  process.stdout.write(`${hashApiKey(key)}\n`);
  return 0;
}
