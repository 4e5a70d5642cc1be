/**
 * Full request validation: strict JSON (json.ts) then the endpoint schema
 * (schemas.ts). Every failure is a 400 `invalid_request_body` naming the
 * offending field in OpenAI's `param` notation (`messages[0].content`).
 *
 * The returned object is the parser's own tree: objects have a null
 * prototype, unknown fields are kept as sent, and control characters are
 * removed from the text fields the model reads:
 * - chat: `messages[].content` when a string, and `.text` of `text` parts;
 * - completions: `prompt` when a string or an array of strings;
 * - embeddings: `input` when a string or an array of strings.
 * Other strings (names, ids, tool arguments, URLs, base64 data) are left
 * alone: changing them could change their meaning.
 */
import type * as z from 'zod';
import { GatewayError } from '../../pipeline/errors.ts';
import { formatParam, JsonParseError, parseStrictJson } from '../../pipeline/json.ts';
import { REQUEST_SCHEMAS } from './schemas.ts';
import { isObject } from '../../shared/values.ts';

export type ValidatedEndpoint = 'chat' | 'completions' | 'embeddings';

export interface ValidateOptions {
  readonly maxDepth: number;
  readonly maxKeys?: number;
  readonly maxStringBytes?: number;
}

/** Parse and validate one request body. Throws GatewayError('invalid_request_body'). */
export function validateRequest(endpoint: ValidatedEndpoint, body: Buffer, opts: ValidateOptions): Record<string, unknown> {
  let json: unknown;
  try {
    json = parseStrictJson(body, opts);
  } catch (err) {
    if (err instanceof JsonParseError) {
      let message: string;
      if (err.reason === 'empty') message = 'The request body is empty; a JSON object is required.';
      else if (err.reason === 'invalid_utf8') message = `The request body is not valid UTF-8 (byte ${err.offset}).`;
      else if (err.reason === 'invalid_json') message = `The request body is not valid JSON: ${err.message}`;
      else message = `Invalid request body${err.param === null ? '' : ` at '${err.param}'`}: ${err.message}`;
      throw new GatewayError('invalid_request_body', message, { param: err.param });
    }
    throw err;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GatewayError('invalid_request_body', 'The request body must be a JSON object.', { param: null });
  }
  const obj = json as Record<string, unknown>;
  // Stripped first, so the schema judges what is forwarded (e.g. an input of only controls is empty).
  sanitizeText(endpoint, obj);
  const result = REQUEST_SCHEMAS[endpoint].safeParse(obj);
  if (!result.success) throw schemaError(result.error.issues, obj);
  return obj;
}

type Issue = z.core.$ZodIssue;

interface Picked {
  issue: Issue;
  path: PropertyKey[];
}

/**
 * How well an alternative fits: "right type, wrong value" (a range, length or
 * format issue) beats any type mismatch; then the deeper the issue, the
 * further the value got into that alternative.
 */
function progress(p: Picked): number {
  return (p.issue.code === 'invalid_type' || p.issue.code === 'invalid_union' ? 0 : 1_000_000) + p.path.length;
}

/** The most specific issue: for unions, the alternative that got furthest. */
function pickIssue(issue: Issue, base: readonly PropertyKey[]): Picked {
  const here: Picked = { issue, path: [...base, ...issue.path] };
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    let best: Picked | null = null;
    for (const alt of issue.errors) {
      const first = alt[0];
      if (first === undefined) continue;
      const cand = pickIssue(first, here.path);
      if (best === null || progress(cand) > progress(best)) best = cand;
    }
    // Only descend when an alternative got further than "not this type".
    if (best !== null && progress(best) > progress(here)) return best;
  }
  return here;
}

/** Whether the member at `path` is present (own property / array slot). */
function present(root: unknown, path: readonly (string | number)[]): boolean {
  let cur: unknown = root;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return false;
    if (!Object.prototype.hasOwnProperty.call(cur, key)) return false;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return true;
}

function schemaError(issues: readonly Issue[], root: unknown): GatewayError {
  const first = issues[0];
  if (first === undefined) return new GatewayError('invalid_request_body', 'The request body does not match the schema.');
  const { issue, path } = pickIssue(first, []);
  const parts = path.filter((p): p is string | number => typeof p !== 'symbol');
  const param = formatParam(parts);
  let detail: string;
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && !present(root, parts)) {
    detail = 'this field is required';
  } else if (issue.code === 'invalid_union') {
    detail = issue.message !== 'Invalid input' ? issue.message : issue.errors.length === 0 ? 'unsupported value' : 'the value has none of the accepted shapes';
  } else detail = issue.message.replace(/^Invalid input: /, '');
  const message = param === null ? `Invalid request body: ${detail}.` : `Invalid value for '${param}': ${detail}${detail.endsWith('.') ? '' : '.'}`;
  return new GatewayError('invalid_request_body', message, { param });
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]+/g;

/**
 * Remove C0 controls except tab, line feed and carriage return, DEL, and
 * C1 controls (U+0080–U+009F). Returns the same string when there are none.
 */
export function stripControlChars(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROL_ALL, '') : text;
}

function stripField(obj: Record<string, unknown>, field: string): void {
  const value = obj[field];
  if (typeof value === 'string') {
    obj[field] = stripControlChars(value);
  } else if (Array.isArray(value)) {
    for (let k = 0; k < value.length; k++) {
      const v: unknown = value[k];
      if (typeof v === 'string') value[k] = stripControlChars(v);
    }
  }
}

/** In place; tolerant of any shape (it runs before the schema). */
function sanitizeText(endpoint: ValidatedEndpoint, obj: Record<string, unknown>): void {
  switch (endpoint) {
    case 'chat': {
      const messages = obj['messages'];
      if (!Array.isArray(messages)) return;
      for (const m of messages as unknown[]) {
        if (!isObject(m)) continue;
        const content = m['content'];
        if (typeof content === 'string') {
          m['content'] = stripControlChars(content);
        } else if (Array.isArray(content)) {
          for (const part of content as unknown[]) {
            if (!isObject(part)) continue;
            const text = part['text'];
            if (part['type'] === 'text' && typeof text === 'string') part['text'] = stripControlChars(text);
          }
        }
      }
      return;
    }
    case 'completions':
      stripField(obj, 'prompt');
      return;
    case 'embeddings':
      stripField(obj, 'input');
      return;
  }
}
