/**
 * What the data policy reads in Anthropic bodies: every string
 * (src/families/common/strings.ts), `system` then `messages` first, in the
 * order the model reads them. Tool input schemas are inspected but cannot be
 * redacted in place.
 */
import type { TextRef } from '../../pipeline/ports.ts';
import { everyString, matchesPath, type StringWalk } from '../common/strings.ts';

type Json = Record<string, unknown>;

const REQUEST: StringWalk = {
  first: ['system', 'messages'],
  skip: new Set(['model']),
  structured: (path) => matchesPath(path, ['tools', '*', 'input_schema']),
};
/** A message: everything but the ids and names the gateway sets itself. */
const RESPONSE: StringWalk = { first: ['content'], skip: new Set(['id', 'type', 'model']), structured: () => false };

/** Every string of a request: system, messages (text, tool use input, tool results…), then every other field. */
export function requestTexts(body: Json): TextRef[] {
  return everyString(body, REQUEST);
}

/** Every string of a message response: text blocks, tool use inputs, unknown fields. */
export function responseTexts(body: Json): TextRef[] {
  return everyString(body, RESPONSE);
}
