/**
 * Ed25519 keys for audit checkpoints. The key id is derived from the public
 * key (first 16 hex digits of SHA-256 of its SPKI DER), so a verifier can
 * hold several public keys and old checkpoints stay verifiable after a
 * rotation.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function keyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function loadSigningKey(file: string): SigningKey {
  const privateKey = createPrivateKey(readFileSync(file));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`);
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
