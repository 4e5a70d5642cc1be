/**
 * Canonical JSON and record hashes for the audit chain (docs/audit.md):
 * object keys sorted by UTF-16 code units at every level, no whitespace,
 * strings and numbers as JSON.stringify writes them.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The hash that the next record's `chain.prev` and checkpoints refer to. */
export function recordHash(record: object): string {
  return sha256Hex(canonicalJson(record));
}

export const GENESIS = '0'.repeat(64);
