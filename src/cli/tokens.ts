/**
 * `inference-gateway tokens revoke|unrevoke|list`: operator revocations of OAuth
 * tokens (auth.tokenRevocation). A revocation is written to Redis and
 * announced on its channel, so every gateway replica refuses the token id,
 * subject or token from then on, whatever its introspection cache holds.
 * A token itself is read from stdin and only its SHA-256 is stored.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RedisTokenRevocations, type Revocation } from '../stores/tokens/revocations.ts';
import { createLogger } from '../telemetry/logger.ts';
import { asUsage, type CommandGroup, dispatch, usage, UsageError } from './dispatch.ts';

const TOKENS: CommandGroup = {
  name: 'tokens',
  header: 'Usage: inference-gateway tokens <command> --redis URL [options]\n\nCommands:\n',
  commands: {
    revoke: {
      usage: `  revoke --jti ID | --subject SUB | --token-stdin
      Refuses, on every gateway at once, tokens with this jti, tokens of this subject (sub, or
      client_id for client-credentials tokens), or the one token read from stdin (only its
      SHA-256 is stored).
`,
      run: revoke,
    },
    unrevoke: {
      usage: `  unrevoke --jti ID | --subject SUB | --token-stdin
      Withdraws such a revocation (a mistake, a subject re-instated): every gateway accepts
      those tokens again at once. Exits 1 if there was no such revocation.
`,
      run: unrevoke,
    },
    list: {
      usage: `  list
      Prints the revocations, one per line: jti:…, sub:…, sha256:….
`,
      run: list,
    },
  },
  footer: `
Options:
  --redis URL        the gateway's redis.url (auth.tokenRevocation), e.g. redis://127.0.0.1:6379/0
  --prefix P         Redis key prefix (redis.keyPrefix; default igw:)
  --timeout-ms N     Redis command timeout for this command (default 5000)
`,
  exitCodeFor: () => 1,
};

const OPTIONS = {
  redis: { type: 'string' },
  prefix: { type: 'string', default: 'igw:' },
  'timeout-ms': { type: 'string', default: '5000' },
  jti: { type: 'string' },
  subject: { type: 'string' },
  'token-stdin': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function tokensCommand(argv: string[]): Promise<number> {
  return dispatch(TOKENS, argv);
}

function open(v: { redis?: string; prefix?: string; 'timeout-ms'?: string }): RedisTokenRevocations {
  if (v.redis === undefined) throw new UsageError('name the Redis the gateways use: --redis URL');
  if (!/^rediss?:\/\//.test(v.redis)) throw new UsageError('--redis must be a redis:// or rediss:// URL');
  const timeout = Number(v['timeout-ms'] ?? '5000');
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError('--timeout-ms must be a positive integer');
  // Failures reach the operator as the command's error.
  return new RedisTokenRevocations({ url: v.redis, keyPrefix: v.prefix ?? 'igw:', commandTimeoutMs: timeout, log: createLogger('silent', process.stderr) });
}

function target(v: { jti?: string; subject?: string; 'token-stdin'?: boolean }): Revocation {
  const given = [v.jti !== undefined, v.subject !== undefined, v['token-stdin'] === true].filter(Boolean).length;
  if (given !== 1) throw new UsageError('give exactly one of --jti, --subject and --token-stdin');
  if (v.jti !== undefined) return { kind: 'jti', value: v.jti };
  if (v.subject !== undefined) return { kind: 'sub', value: v.subject };
  const token = readFileSync(0, 'utf8').trim();
  if (token === '') throw new UsageError('--token-stdin: no token on stdin');
  return { kind: 'sha256', value: createHash('sha256').update(token).digest('hex') };
}

/** Runs `change` on the one revocation the arguments name, against the store they name; null when only help was asked. */
async function onOne<T>(
  argv: string[],
  change: (store: RedisTokenRevocations, r: Revocation) => Promise<T>,
): Promise<{ r: Revocation; store: RedisTokenRevocations; result: T } | null> {
  const { values, positionals } = asUsage(() => parseArgs({ args: argv, allowPositionals: true, options: OPTIONS }));
  if (values.help === true) {
    process.stdout.write(usage(TOKENS));
    return null;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
  const r = asUsage(() => target(values));
  const store = open(values);
  try {
    return { r, store, result: await change(store, r) };
  } finally {
    await store.close();
  }
}

async function revoke(argv: string[]): Promise<number> {
  const done = await onOne(argv, (store, r) => store.revoke(r));
  if (done === null) return 0;
  const { r, store } = done;
  process.stderr.write(`Revoked ${r.kind}:${r.value} in ${store.description}; every gateway with auth.tokenRevocation refuses it now.\n`);
  return 0;
}

async function unrevoke(argv: string[]): Promise<number> {
  const done = await onOne(argv, (store, r) => store.unrevoke(r));
  if (done === null) return 0;
  const { r, store, result: removed } = done;
  if (!removed) {
    process.stderr.write(`No revocation ${r.kind}:${r.value} in ${store.description}; nothing changed.\n`);
    return 1;
  }
  process.stderr.write(`Withdrew the revocation ${r.kind}:${r.value} in ${store.description}; every gateway accepts it again now.\n`);
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const { values } = asUsage(() => parseArgs({ args: argv, options: OPTIONS }));
  if (values.help === true) {
    process.stdout.write(usage(TOKENS));
    return 0;
  }
  const store = open(values);
  try {
    for (const r of await store.list()) process.stdout.write(`${r.kind}:${r.value}\n`);
  } finally {
    await store.close();
  }
  return 0;
}
