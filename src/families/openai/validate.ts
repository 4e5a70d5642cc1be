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
import { isObject } from '../../shared/values.ts';
import { checkSchema, parseJsonObject } from '../common/json-body.ts';
import { plainChatRequest } from './chat-fast-path.ts';
import { REQUEST_SCHEMAS } from './schemas.ts';

export type ValidatedEndpoint = 'chat' | 'completions' | 'embeddings';

export interface ValidateOptions {
  readonly maxDepth: number;
  readonly maxKeys?: number;
  readonly maxStringBytes?: number;
}

/** Parse and validate one request body. Throws GatewayError('invalid_request_body'). */
export function validateRequest(endpoint: ValidatedEndpoint, body: Buffer, opts: ValidateOptions): Record<string, unknown> {
  const obj = parseJsonObject(body, opts);
  // Stripped first, so the schema judges what is forwarded (e.g. an input of only controls is empty).
  sanitizeText(endpoint, obj);
  // The common chat request skips the schema: the fast path accepts only what the schema accepts (chat-fast-path.ts).
  if (endpoint === 'chat' && plainChatRequest(obj)) return obj;
  checkSchema(REQUEST_SCHEMAS[endpoint], obj);
  return obj;
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
