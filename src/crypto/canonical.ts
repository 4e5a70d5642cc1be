/**
 * Canonical JSON and record hashes for the audit chain (docs/audit.md):
 * object keys sorted by UTF-16 code units at every level, no whitespace,
 * strings and numbers as JSON.stringify writes them.
 */
import { hash } from 'node:crypto';

/**
 * When every object in the value already holds its keys in canonical order,
 * the canonical text is exactly what JSON.stringify writes, and the native
 * serializer is several times faster than building the string here
 * (`npm run bench:serialize`). Audit
 * records are built in that order (src/pipeline/audit-record.ts); anything
 * else takes the general path. Integer-like keys, which JavaScript always
 * lists first in numeric order, fail the order check and take it too.
 */
export function canonicalJson(value: unknown): string {
  return inCanonicalOrder(value) ? (JSON.stringify(value) ?? 'null') : sortedJson(value);
}

/** Whether JSON.stringify would write this value canonically: keys in code-unit order everywhere, nothing with toJSON. */
function inCanonicalOrder(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'function' && typeof value !== 'symbol';
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!inCanonicalOrder(value[i])) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const obj = value as Record<string, unknown>;
  let prev: string | null = null;
  for (const k in obj) {
    if (!Object.hasOwn(obj, k)) return false;
    if (prev !== null && !(prev < k)) return false;
    prev = k;
    if (!inCanonicalOrder(obj[k])) return false;
  }
  return true;
}

// Written as plain loops: the map/filter/join form cost ~40% more per record.
function sortedJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (i > 0) out += ',';
      out += sortedJson(v === undefined ? null : v);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += JSON.stringify(k) + ':' + sortedJson(v);
  }
  return out + '}';
}

export function sha256Hex(text: string): string {
  // The one-shot form: no Hash object per record.
  return hash('sha256', text, 'hex');
}

/** The hash that the next record's `chain.prev` and checkpoints refer to. */
export function recordHash(record: object): string {
  return sha256Hex(canonicalJson(record));
}

export const GENESIS = '0'.repeat(64);
