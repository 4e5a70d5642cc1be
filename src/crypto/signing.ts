/**
 * Ed25519 keys (audit checkpoints, routing snapshots). The key id is derived from the public
 * key (first 16 hex digits of SHA-256 of its SPKI DER), so a verifier can
 * hold several public keys and old checkpoints stay verifiable after a
 * rotation.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { errorMessage } from '../shared/values.ts';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function loadSigningKey(file: string): SigningKey {
  const privateKey = createPrivateKey(readFileSync(file));
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error(`${file}: audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  const publicKey = createPublicKey(privateKey);
  return { kid: keyId(publicKey), privateKey, publicKey };
}

/** Writes a new key pair: `<file>` (private, PKCS#8 PEM, 0600) and `<file>.pub` (SPKI PEM). */
export function generateSigningKey(file: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(`${file}.pub`, publicKey.export({ type: 'spki', format: 'pem' }));
  return { kid: keyId(publicKey), privateKey, publicKey };
}

/** The configured key, or (embedded default) one created on first use. */
export function loadOrCreateSigningKey(file: string): { key: SigningKey; created: boolean } {
  if (existsSync(file)) return { key: loadSigningKey(file), created: false };
  return { key: generateSigningKey(file), created: true };
}

export function signText(key: SigningKey, text: string): string {
  return sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64');
}

export function verifyText(publicKey: KeyObject, text: string, signature: string): boolean {
  try {
    return verify(null, Buffer.from(text, 'utf8'), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** Public keys by kid from PEM files (public or private keys) or directories of *.pem / *.pub. */
export function loadPublicKeys(paths: readonly string[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  const files: string[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      const names = readdirSync(p, { withFileTypes: true })
        .filter((d) => d.isFile() && ['.pem', '.pub'].includes(extname(d.name)))
        .map((d) => d.name);
      names.sort();
      for (const n of names) files.push(join(p, n));
    } else files.push(p);
  }
  for (const file of files) {
    const pem = readFileSync(file, 'utf8');
    let pub: KeyObject;
    try {
      pub = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem) ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
    } catch (err) {
      throw new Error(`${file}: not a PEM public or private key (${errorMessage(err)})`, { cause: err });
    }
    if (pub.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: keys must be Ed25519, this one is ${pub.asymmetricKeyType ?? 'unknown'}`);
    keys.set(keyId(pub), pub);
  }
  return keys;
}
