/**
 * Every string a model reads or writes in a JSON body, for the data policy:
 * not only message text but names, tool arguments and definitions, schemas,
 * unknown fields, object keys and the text inside `data:` URLs. A field the
 * family does not know is inspected like any other: what the gateway does not
 * understand may still reach the model.
 *
 * Each string is a TextRef that can be rewritten in place, except where a
 * rewrite would change meaning or cannot be expressed: object keys, anything
 * inside a JSON schema (tool parameters, response formats), and text decoded
 * from a data URL. There the data policy's *redact* becomes *deny*, naming
 * the field (src/stages/policy/content.ts).
 */
import type { TextRef } from '../../pipeline/ports.ts';
import { isObject } from '../../shared/values.ts';

type Json = Record<string, unknown>;

/** Where a family's bodies hold what the walk treats specially. */
export interface StringWalk {
  /** Top-level keys walked first, in this order (the order the model reads them); the rest follow in document order. */
  readonly first: readonly string[];
  /** Top-level keys never inspected: routing fields the gateway itself validated and rewrites (`model`). */
  readonly skip: ReadonlySet<string>;
  /** Whether the value at this path is a JSON schema (or other structure) whose strings cannot be rewritten in place. */
  readonly structured: (path: readonly (string | number)[]) => boolean;
}

/** Every string in `root`, in the walk's order. */
export function everyString(root: Json, walk: StringWalk): TextRef[] {
  const out: TextRef[] = [];
  const keys = Object.keys(root);
  const ordered = [...walk.first.filter((k) => k in root), ...keys.filter((k) => !walk.first.includes(k) && !walk.skip.has(k))];
  visitObject(root, ordered, [], false, walk, out);
  return out;
}

function visitKey(holder: Json | unknown[], key: string | number, path: (string | number)[], frozen: boolean, walk: StringWalk, out: TextRef[]): void {
  const fixed = frozen || walk.structured(path);
  const v = (holder as Record<string | number, unknown>)[key];
  if (typeof v === 'string') {
    // A data URL is inspected as the text it carries (binary media are not text); its encoded form is not prose.
    if (v.startsWith('data:')) dataUrlText(v, path, out);
    else out.push(site(holder, key, v, path, fixed));
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) visitKey(v, i, [...path, i], fixed, walk, out);
  } else if (isObject(v)) {
    visitObject(v, Object.keys(v), path, fixed, walk, out);
  }
}

function visitObject(v: Json, keys: readonly string[], path: (string | number)[], fixed: boolean, walk: StringWalk, out: TextRef[]): void {
  keys.forEach((k, index) => {
    // A key is read by the model too (a schema's property names); it cannot be renamed without changing meaning.
    // The APIs' and JSON Schema's own vocabulary carries nothing of the caller's and is not inspected. A refusal
    // names the key by position: its name is what may hold the value.
    if (!VOCABULARY.has(k)) out.push({ ...readOnly(k, `${pathText(path)} (the name of key ${index + 1})`), separate: true });
    // A role or a part type from the APIs' fixed vocabulary is structure, not text: left out, so that the
    // texts around it stay adjacent for the conversation-level scan (a value split across two messages).
    const child = v[k];
    if ((k === 'role' || k === 'type') && typeof child === 'string' && VOCABULARY.has(child)) return;
    if (k === 'data' && typeof child === 'string' && encodedMedia(v, path)) {
      // Base64 media beside its type (Anthropic's image and document sources, OpenAI's input_audio): text media are
      // inspected as the text they carry, binary media are not text at all.
      const type = typeof v['media_type'] === 'string' ? v['media_type'] : '';
      if (isTextType(type.toLowerCase())) out.push(readOnly(decodeBase64Text(child), `${pathText([...path, k])} (base64 text)`));
      return;
    }
    visitKey(v, k, [...path, k], fixed, walk, out);
  });
}

/**
 * Keys and enum values of the OpenAI and Anthropic APIs and of JSON Schema.
 * A word in this set is the API's, not the caller's (a detector never fires
 * on one), so it is not inspected.
 */
const VOCABULARY: ReadonlySet<string> = new Set([
  // messages and content parts / blocks
  'model',
  'messages',
  'role',
  'content',
  'name',
  'type',
  'text',
  'image_url',
  'url',
  'detail',
  'input_audio',
  'data',
  'format',
  'file',
  'file_id',
  'filename',
  'file_data',
  'refusal',
  'audio',
  'tool_calls',
  'tool_call_id',
  'function',
  'arguments',
  'function_call',
  'id',
  'system',
  'user',
  'assistant',
  'tool',
  'developer',
  'image',
  'document',
  'source',
  'media_type',
  'tool_use',
  'tool_result',
  'input',
  'is_error',
  'cache_control',
  'ephemeral',
  'base64',
  'thinking',
  'redacted_thinking',
  'signature',
  'citations',
  'title',
  'context',
  'reasoning_content',
  // request parameters
  'prompt',
  'suffix',
  'stream',
  'stream_options',
  'include_usage',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'top_k',
  'n',
  'stop',
  'stop_sequences',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'seed',
  'tools',
  'tool_choice',
  'functions',
  'parallel_tool_calls',
  'response_format',
  'json_schema',
  'json_object',
  'schema',
  'strict',
  'metadata',
  'user_id',
  'service_tier',
  'store',
  'modalities',
  'reasoning_effort',
  'prediction',
  'echo',
  'best_of',
  'encoding_format',
  'dimensions',
  'auto',
  'none',
  'required',
  'any',
  'disable_parallel_tool_use',
  'tool_use_id',
  'budget_tokens',
  'enabled',
  'disabled',
  'input_schema',
  'float',
  // responses
  'choices',
  'message',
  'index',
  'finish_reason',
  'usage',
  'delta',
  'created',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'prompt_tokens_details',
  'completion_tokens_details',
  'cached_tokens',
  'reasoning_tokens',
  'audio_tokens',
  'accepted_prediction_tokens',
  'rejected_prediction_tokens',
  'stop_reason',
  'stop_sequence',
  'input_tokens',
  'output_tokens',
  'cache_read_input_tokens',
  'cache_creation_input_tokens',
  'cache_creation',
  'server_tool_use',
  'system_fingerprint',
  'annotations',
  'token',
  'bytes',
  'embedding',
  'chunk',
  // JSON Schema
  'properties',
  'items',
  'enum',
  'const',
  'description',
  'default',
  'additionalProperties',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  '$ref',
  '$defs',
  'definitions',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'pattern',
  'examples',
  'nullable',
  'object',
  'string',
  'number',
  'integer',
  'boolean',
  'array',
  'null',
  'uniqueItems',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
]);

function site(holder: Json | unknown[], key: string | number, text: string, path: readonly (string | number)[], fixed: boolean): TextRef {
  if (fixed) return readOnly(text, pathText(path));
  return {
    text,
    where: pathText(path),
    redactable: true,
    set: (t) => {
      (holder as Record<string | number, unknown>)[key] = t;
    },
  };
}

function readOnly(text: string, where: string): TextRef {
  return {
    text,
    where,
    redactable: false,
    set: () => {
      throw new Error(`${where} cannot be rewritten in place`);
    },
  };
}

/**
 * The text carried by a `data:` URL with a text media type (text/*, JSON,
 * XML…), decoded: a model reads it like any prompt. Binary media (images)
 * are not text the classifier can read and are left as they are.
 */
function dataUrlText(value: string, path: readonly (string | number)[], out: TextRef[]): void {
  const comma = value.indexOf(',');
  if (comma < 0) return;
  const meta = value.slice(5, comma).toLowerCase();
  const parts = meta.split(';');
  if (!isTextType(parts[0] ?? '')) return;
  const payload = value.slice(comma + 1);
  let text: string;
  try {
    text = parts.includes('base64') ? decodeBase64Text(payload) : decodeURIComponent(payload);
  } catch {
    text = payload;
  }
  out.push(readOnly(text, `${pathText(path)} (data URL text)`));
}

/** A media type whose content is text (an empty one is text/plain, as in data URLs). */
function isTextType(type: string): boolean {
  return (
    type === '' || type.startsWith('text/') || /^application\/(?:[a-z0-9.+-]*\+)?(?:json|xml|x-www-form-urlencoded|javascript|yaml|x-yaml|csv)$/.test(type)
  );
}

/** An object carrying base64 media in `data`: a source with a `media_type`, or OpenAI's `input_audio`. */
function encodedMedia(v: Json, path: readonly (string | number)[]): boolean {
  return typeof v['media_type'] === 'string' || path.at(-1) === 'input_audio';
}

function decodeBase64Text(payload: string): string {
  // Whole: the body's size bounds it (2 MiB), and a cap would be a place to hide a value behind.
  return Buffer.from(payload, 'base64').toString('utf8');
}

/** `messages[0].content[1].text` */
export function pathText(path: readonly (string | number)[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

/** Path matching for `structured`: `*` matches any one segment (an array index or a key). */
export function matchesPath(path: readonly (string | number)[], pattern: readonly string[]): boolean {
  if (path.length < pattern.length) return false;
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i];
    if (want !== '*' && want !== String(path[i])) return false;
  }
  return true;
}
