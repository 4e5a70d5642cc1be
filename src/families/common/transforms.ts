/**
 * Applying a model's request transforms (src/pipeline/snapshot.ts
 * RequestTransforms) to a client's body, for any family: each family says
 * which body fields carry each parameter on an endpoint, and where its system
 * prompt is. The result is a new object; the client's body is not touched.
 */
import type { AppliedTransforms } from '../../pipeline/context.ts';
import type { RequestTransforms } from '../../pipeline/snapshot.ts';
import { transformParamsOf } from './transform-params.ts';

type Json = Record<string, unknown>;

/**
 * The body fields that carry each parameter on one endpoint. With several
 * (OpenAI chat's `max_tokens` and `max_completion_tokens`), the client sent
 * the parameter if it sent any of them; a forced value replaces every one it
 * sent, and the first is the one set when it sent none.
 */
export type ParamFields = Readonly<Record<string, readonly [string, ...string[]]>>;

/** Every parameter of the allowlist that applies to `endpoint`, in a field of its own name, unless `special` says otherwise. */
export function paramFields(endpoint: string, special: ParamFields = {}): ParamFields {
  return Object.fromEntries(transformParamsOf(endpoint).map((p) => [p, special[p] ?? [p]]));
}

/** Puts the prefix before the body's system prompt (editing `out`, a shallow copy of the body). */
export type SystemPrefixer = (out: Json, prefix: string) => void;

/** Sent: present and not null (null means absent in both APIs). */
const sent = (json: Json, field: string): boolean => json[field] !== undefined && json[field] !== null;

export function applyTransforms(
  json: Json,
  t: RequestTransforms,
  fields: ParamFields,
  prefixer: SystemPrefixer | null,
): { readonly json: Json; readonly applied: AppliedTransforms } | null {
  const out: Json = { ...json };
  const defaults: string[] = [];
  const forced: string[] = [];
  for (const [name, value] of Object.entries(t.defaults)) {
    const at = fields[name];
    if (at === undefined || at.some((f) => sent(json, f))) continue;
    out[at[0]] = value;
    defaults.push(name);
  }
  for (const [name, value] of Object.entries(t.forced)) {
    const at = fields[name];
    if (at === undefined) continue;
    const clients = at.filter((f) => sent(json, f));
    for (const f of clients.length === 0 ? [at[0]] : clients) out[f] = value;
    forced.push(name);
  }
  const prefixed = t.systemPrefix !== null && prefixer !== null;
  if (prefixed) prefixer(out, t.systemPrefix);
  if (defaults.length === 0 && forced.length === 0 && !prefixed) return null;
  return { json: out, applied: { defaults: defaults.sort(), forced: forced.sort(), systemPrefix: prefixed } };
}

/**
 * A system prompt with the prefix before it: a string gets the prefix and a
 * blank line (the prefix alone when it was empty); a list of text parts or
 * blocks gets a text part of its own in front (the client's parts stay as
 * they were, cache hints included); nothing becomes the prefix.
 */
export function prefixedSystem(system: unknown, prefix: string): unknown {
  if (typeof system === 'string') return system === '' ? prefix : `${prefix}\n\n${system}`;
  if (Array.isArray(system)) return [{ type: 'text', text: prefix }, ...(system as unknown[])];
  return prefix;
}
