/**
 * `inference-gateway snapshot sign|verify|publish`: routing snapshots signed
 * by the control plane's key, and published to sidecars over Redis.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { parse as parseYaml, stringify } from 'yaml';
import { ConfigError } from '../config/errors.ts';
import { loadPublicKeys, loadSigningKey, signText } from '../crypto/signing.ts';
import { type CommandGroup, dispatch, usage } from './dispatch.ts';
import { describeRedisUrl } from '../stores/redis-connection.ts';
import { publishSnapshot } from '../control/publish.ts';
import { NO_TRUST, parseSnapshot, signedContent } from '../control/snapshot.ts';
import type { Snapshot } from '../pipeline/snapshot.ts';
import { errorMessage } from '../shared/values.ts';

const SNAPSHOT: CommandGroup = {
  name: 'snapshot',
  header: 'Usage:\n',
  commands: {
    sign: {
      usage: `  inference-gateway snapshot sign --key CONTROL_PLANE_KEY.pem [--issued-at ISO] [--out FILE] SNAPSHOT.yaml
      Sets issuedAt (now unless given), signs with the Ed25519 key, writes the signed snapshot
      (in place unless --out). Sidecars with routing.publicKeys accept only signed snapshots.
`,
      run: sign,
    },
    verify: {
      usage: `  inference-gateway snapshot verify --keys PUBLIC_KEY.pem [--keys …] SNAPSHOT.yaml
      Validates the snapshot and its signature; exit 1 if either fails.
`,
      run: verify,
    },
    publish: {
      usage: `  inference-gateway snapshot publish --redis URL [--key K] [--channel C] [--keys PUBLIC_KEY.pem …]
                                     [--timeout-ms N] SNAPSHOT.yaml
      Checks the snapshot is valid, signed and carries issuedAt (with --keys: that the signature
      verifies), refuses if the Redis key holds a newer one, then SETs the key and PUBLISHes the
      version on the channel (sidecars with routing.redis re-read the key). Defaults match
      routing.redis: key igw:routing:snapshot, channel igw:routing:snapshot:published.
`,
      run: publish,
    },
  },
  // As snapshot has always answered: the usage on stdout, `help` not a help word.
  helpWords: ['--help', '-h'],
  missingTo: 'stdout',
  unknown: 'as-missing',
};

export async function snapshotCommand(argv: string[]): Promise<number> {
  return dispatch(SNAPSHOT, argv);
}

function sign(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { key: { type: 'string' }, 'issued-at': { type: 'string' }, out: { type: 'string' } },
  });
  const file = positionals[0];
  if (values.key === undefined || file === undefined) {
    process.stderr.write(usage(SNAPSHOT));
    return 2;
  }
  const key = loadSigningKey(values.key);
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete doc['signature'];
  doc['issuedAt'] = values['issued-at'] ?? new Date().toISOString();
  doc['signature'] = { kid: key.kid, sig: signText(key, signedContent(doc)) };
  const text = stringify(doc);
  // Refuse to write something a sidecar would refuse.
  parseSnapshot(text, file, { keys: new Map([[key.kid, key.publicKey]]) });
  const out = values.out ?? file;
  writeFileSync(`${out}.tmp`, text);
  renameSync(`${out}.tmp`, out); // atomic: a watching sidecar never sees half a file
  process.stdout.write(`signed ${out} (kid ${key.kid}, issuedAt ${String(doc['issuedAt'])})\n`);
  return 0;
}

function verify(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { keys: { type: 'string', multiple: true } } });
  const file = positionals[0];
  if (values.keys === undefined || file === undefined) {
    process.stderr.write(usage(SNAPSHOT));
    return 2;
  }
  const snapshot = parseSnapshot(readFileSync(file, 'utf8'), file, { keys: loadPublicKeys(values.keys) });
  process.stdout.write(`${file}: ok (version ${snapshot.version}, signed by ${snapshot.signedBy ?? '?'}, ${snapshot.models.size} models)\n`);
  return 0;
}

/** The snapshot in `text` as sidecars would see it, or the reason they would refuse it. */
function checkPublishable(text: string, file: string, keyFiles: readonly string[] | undefined): { snapshot: Snapshot; kid: string } {
  const snapshot = parseSnapshot(text, file, keyFiles === undefined ? NO_TRUST : { keys: loadPublicKeys([...keyFiles]) });
  // Without --keys the signature cannot be checked here, but its absence can: sidecars would refuse it.
  const sig = (parseYaml(text) as { signature?: { kid?: unknown } }).signature;
  if (sig === undefined || typeof sig.kid !== 'string')
    throw new ConfigError(file, ['signature: is required: sidecars accept only signed snapshots over Redis (inference-gateway snapshot sign)']);
  if (snapshot.issuedAt === null) throw new ConfigError(file, ['issuedAt: is required: it is what stops an older snapshot replacing a newer one']);
  return { snapshot, kid: snapshot.signedBy ?? sig.kid };
}

async function publish(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      redis: { type: 'string' },
      key: { type: 'string' },
      channel: { type: 'string' },
      keys: { type: 'string', multiple: true },
      'timeout-ms': { type: 'string' },
    },
  });
  const file = positionals[0];
  const timeoutMs = Number(values['timeout-ms'] ?? '5000');
  if (
    values.redis === undefined ||
    !/^rediss?:\/\//.test(values.redis) ||
    file === undefined ||
    positionals.length !== 1 ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs <= 0
  ) {
    process.stderr.write(usage(SNAPSHOT));
    return 2;
  }
  const key = values.key ?? 'igw:routing:snapshot';
  const channel = values.channel ?? 'igw:routing:snapshot:published';
  const text = readFileSync(file, 'utf8');
  const { snapshot, kid } = checkPublishable(text, file, values.keys);
  const where = describeRedisUrl(values.redis);
  // One attempt, bounded: an operator command reports an unreachable Redis instead of retrying forever.
  const redis = new Redis(values.redis, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis reports a refused connection as 'Connection is closed'; the socket error says why.
  let lastError = null as string | null;
  redis.on('error', (err: Error) => {
    lastError = err.message;
  });
  try {
    await redis.connect();
    const outcome = await publishSnapshot(redis, { key, channel, text, snapshot });
    if (!outcome.published && outcome.reason === 'newer') {
      const current = outcome.current;
      process.stderr.write(
        `${file}: not published: ${where} key ${key} holds version ${current.version} issued ${new Date(current.issuedAt ?? 0).toISOString()}, newer than this one (${new Date(snapshot.issuedAt ?? 0).toISOString()}); sidecars would refuse it as a rollback\n`,
      );
      return 1;
    }
    if (!outcome.published) {
      process.stderr.write(`${file}: not published: ${where} key ${key} changed while publishing (another publish?); run again\n`);
      return 1;
    }
    const receivers = outcome.receivers;
    process.stdout.write(
      `published ${file} (version ${snapshot.version}, issuedAt ${new Date(snapshot.issuedAt ?? 0).toISOString()}, kid ${kid}) to ${where}: SET ${key}, PUBLISH ${channel} (${receivers} subscriber${receivers === 1 ? '' : 's'} notified)\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`${file}: not published: Redis ${where}: ${errorMessage(err)}${lastError === null ? '' : ` (${lastError})`}\n`);
    return 1;
  } finally {
    redis.disconnect();
  }
}
