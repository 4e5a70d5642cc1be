/**
 * Top-level parameters a translator does not map itself: every parameter of
 * a request is either mapped, harmless to drop, allowed only at its neutral
 * value, or refused by name. A parameter the table does not know is refused
 * too (it may change the answer; the client learns which one). null is the
 * same as absent in both APIs, so it is always accepted.
 */
import { isObject } from '../../shared/values.ts';
import { unsupported, type UpstreamApi } from './translation-error.ts';

/** `mapped`: the translator reads it; `dropped`: harmless; a predicate: accepted (and dropped) only when it holds. */
export type ParamRule = 'mapped' | 'dropped' | ((value: unknown) => boolean);

export type ParamTable = Readonly<Record<string, ParamRule>>;

/** Throws the first parameter the upstream's API cannot express. */
export function checkParams(req: Readonly<Record<string, unknown>>, table: ParamTable, upstream: UpstreamApi): void {
  for (const key of Object.keys(req)) {
    const value = req[key];
    if (value === null || value === undefined) continue;
    const rule = Object.hasOwn(table, key) ? table[key] : undefined;
    if (rule === 'mapped' || rule === 'dropped') continue;
    if (rule !== undefined && rule(value)) continue;
    throw unsupported(key, upstream, describe(value));
  }
}

/** A short rendering of a refused value for the error message. */
export function describe(value: unknown): string {
  if (isObject(value) && typeof value['type'] === 'string') return `type ${clip(value['type'])}`;
  if (typeof value === 'object') return '';
  return clip(JSON.stringify(value) ?? '');
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

export const isZero = (v: unknown): boolean => v === 0;
export const isFalse = (v: unknown): boolean => v === false;
export const isEmptyObject = (v: unknown): boolean => isObject(v) && Object.keys(v).length === 0;
