/** `inference-gateway snapshot sign|verify`: routing snapshots signed by the control plane's key. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { loadPublicKeys, loadSigningKey, signText } from '../crypto/signing.ts';
import { parseSnapshot, signedContent } from '../stages/route/snapshot.ts';

const HELP = `Usage:
  inference-gateway snapshot sign --key CONTROL_PLANE_KEY.pem [--issued-at ISO] [--out FILE] SNAPSHOT.yaml
      Sets issuedAt (now unless given), signs with the Ed25519 key, writes the signed snapshot
      (in place unless --out). Sidecars with routing.publicKeys accept only signed snapshots.
  inference-gateway snapshot verify --keys PUBLIC_KEY.pem [--keys …] SNAPSHOT.yaml
      Validates the snapshot and its signature; exit 1 if either fails.
`;

export async function snapshotCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'sign') return sign(rest);
  if (sub === 'verify') return verify(rest);
  process.stdout.write(HELP);
  return sub === '--help' || sub === '-h' ? 0 : 2;
}

function sign(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { key: { type: 'string' }, 'issued-at': { type: 'string' }, out: { type: 'string' } } });
  const file = positionals[0];
  if (values.key === undefined || file === undefined) {
    process.stderr.write(HELP);
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
    process.stderr.write(HELP);
    return 2;
  }
  const snapshot = parseSnapshot(readFileSync(file, 'utf8'), file, { keys: loadPublicKeys(values.keys) });
  process.stdout.write(`${file}: ok (version ${snapshot.version}, signed by ${snapshot.signedBy ?? '?'}, ${snapshot.models.size} models)\n`);
  return 0;
}
