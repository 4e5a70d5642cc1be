/**
 * What the data policy reads in OpenAI bodies: every string (src/families/common/strings.ts),
 * the prompt first, in the order the model reads it. Tool parameter schemas and
 * `response_format` schemas are inspected but cannot be redacted in place.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import type { TextRef } from '../../pipeline/ports.ts';
import { everyString, matchesPath, type StringWalk } from '../common/strings.ts';

export type { TextRef };

type Json = Record<string, unknown>;

const SCHEMAS: readonly (readonly string[])[] = [
  ['tools', '*', 'function', 'parameters'],
  ['functions', '*', 'parameters'],
  ['response_format', 'json_schema', 'schema'],
];
const structured = (path: readonly (string | number)[]): boolean => SCHEMAS.some((p) => matchesPath(path, p));
const SKIP: ReadonlySet<string> = new Set(['model']);

const WALKS: Readonly<Record<string, StringWalk>> = {
  chat: { first: ['messages'], skip: SKIP, structured },
  completions: { first: ['prompt', 'suffix'], skip: SKIP, structured },
  embeddings: { first: ['input'], skip: SKIP, structured },
};
/** A response: everything but the ids and names the gateway sets itself. */
const RESPONSE: StringWalk = { first: ['choices'], skip: new Set(['id', 'object', 'model', 'system_fingerprint']), structured: () => false };

/** Every string of a request body: messages (or prompt, or input) first, then every other field. */
export function requestTexts(endpoint: Endpoint, body: Json): TextRef[] {
  const walk = WALKS[endpoint];
  return walk === undefined ? [] : everyString(body, walk);
}

/** Every string of a non-streaming response: message contents, tool call arguments, refusals, reasoning, unknown fields. */
export function responseTexts(body: Json): TextRef[] {
  return everyString(body, RESPONSE);
}
