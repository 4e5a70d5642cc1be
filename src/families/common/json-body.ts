/**
 * What every API family does first with a JSON request body: the strict
 * parser (src/pipeline/json.ts: UTF-8, depth, duplicate keys, prototype keys,
 * unsafe numbers), the top level an object, and schema failures turned into
 * one 400 `invalid_request_body` naming the offending field (`param`, in
 * OpenAI's notation `messages[0].content`).
 */
import type * as z from 'zod';
import { GatewayError } from '../../pipeline/errors.ts';
import { formatParam, JsonParseError, parseStrictJson, type JsonLimits } from '../../pipeline/json.ts';

/** Parses a request body strictly; throws GatewayError('invalid_request_body'). */
export function parseJsonObject(body: Uint8Array, limits: JsonLimits): Record<string, unknown> {
  let json: unknown;
  try {
    json = parseStrictJson(body, limits);
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
  return json as Record<string, unknown>;
}

/** Validates a parsed body against a schema; throws the 400 naming the most specific failing field. */
export function checkSchema(schema: z.ZodType, obj: Record<string, unknown>): void {
  const result = schema.safeParse(obj);
  if (!result.success) throw schemaError(result.error.issues, obj);
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

export function schemaError(issues: readonly Issue[], root: unknown): GatewayError {
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
