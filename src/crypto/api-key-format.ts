/**
 * API key format: `igw_` + 8-char id + 32-char secret + 6-char checksum, all
 * base62. The id is the only part that may be logged; the checksum (CRC-32 of
 * everything before it) lets a mistyped or invented key be refused without
 * touching any store. Only `sha256(key)` is ever stored.
 */
import { createHash, randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_PREFIX = 'igw_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_LEN = 8;
const SECRET_LEN = 32; // 32 base62 chars ≈ 190 bits
const CHECK_LEN = 6; // 62^6 > 2^32
export const KEY_LENGTH = KEY_PREFIX.length + ID_LEN + SECRET_LEN + CHECK_LEN;
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${ID_LEN + SECRET_LEN + CHECK_LEN}}$`);

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET.charAt(n % 62) + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function checksum(body: string): string {
  return base62(crc32(body), CHECK_LEN);
}

function randomBase62(len: number): string {
  let out = '';
  for (let i = 0; i < len; i++) out += ALPHABET.charAt(randomInt(62));
  return out;
}

export interface NewKey {
  readonly key: string;
  readonly id: string;
  /** What goes in config or a key store. */
  readonly hash: string;
}

export function generateApiKey(): NewKey {
  const id = randomBase62(ID_LEN);
  const body = KEY_PREFIX + id + randomBase62(SECRET_LEN);
  const key = body + checksum(body);
  return { key, id, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

export type ParsedKey = { readonly ok: true; readonly id: string } | { readonly ok: false };

/** Shape and checksum only: no secret comparison happens here. */
export function parseApiKey(candidate: string): ParsedKey {
  if (candidate.length !== KEY_LENGTH || !KEY_SHAPE.test(candidate)) return { ok: false };
  const body = candidate.slice(0, -CHECK_LEN);
  if (checksum(body) !== candidate.slice(-CHECK_LEN)) return { ok: false };
  return { ok: true, id: candidate.slice(KEY_PREFIX.length, KEY_PREFIX.length + ID_LEN) };
}
