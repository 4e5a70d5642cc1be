/**
 * A strict JSON parser for request bodies.
 *
 * Differences from `JSON.parse`, all on purpose:
 * - the raw bytes must be valid UTF-8 (overlong forms, lone continuation
 *   bytes, encoded surrogates and truncated sequences are refused); a byte
 *   order mark is refused too;
 * - `\uXXXX` escapes must not leave a lone surrogate;
 * - nesting is bounded (`maxDepth`), and the parser is iterative with an
 *   explicit stack, so no input can overflow the call stack;
 * - duplicate keys are refused in every object (no "last one wins"
 *   ambiguity between us and the model server);
 * - keys `__proto__`, `constructor` and `prototype` are refused, and every
 *   object is created with a null prototype, so nothing parsed can reach
 *   `Object.prototype`;
 * - number literals that overflow to ±Infinity, and integer literals (no
 *   fraction, no exponent) beyond ±(2^53 − 1), are refused rather than
 *   silently rounded;
 * - optional limits on keys per object and on the UTF-8 size of strings.
 *
 * Runs in time linear in the input: each character is looked at a bounded
 * number of times and duplicate detection is a hash lookup.
 */

export type JsonErrorReason =
  | 'empty'
  | 'invalid_utf8'
  | 'invalid_json'
  | 'invalid_unicode_escape'
  | 'too_deep'
  | 'duplicate_key'
  | 'forbidden_key'
  | 'too_many_keys'
  | 'string_too_long'
  | 'number_out_of_range'
  | 'unsafe_integer';

export type JsonPath = readonly (string | number)[];

export interface JsonLimits {
  /** Deepest nesting of objects/arrays allowed; the top-level value is depth 1. */
  readonly maxDepth: number;
  /** Most members a single object may have. */
  readonly maxKeys?: number;
  /** Largest UTF-8 size of any one string (keys included). */
  readonly maxStringBytes?: number;
}

export class JsonParseError extends Error {
  readonly reason: JsonErrorReason;
  /** Where in the document the problem is (keys and array indexes). */
  readonly path: JsonPath;
  /** The path in OpenAI's `param` notation (`messages[0].content`), or null for the top level. */
  readonly param: string | null;
  /** Character offset in the decoded text (or byte offset for invalid UTF-8). */
  readonly offset: number;

  constructor(reason: JsonErrorReason, message: string, path: JsonPath, offset: number) {
    super(message);
    this.name = 'JsonParseError';
    this.reason = reason;
    this.path = path;
    this.param = formatParam(path);
    this.offset = offset;
  }
}

/** OpenAI-style parameter path: `messages[0].content`, `stop[2]`, `logit_bias.50256`. */
export function formatParam(path: JsonPath): string | null {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? null : out;
}

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type JsonObject = Record<string, unknown>;

interface ObjectFrame {
  readonly kind: 'object';
  readonly value: JsonObject;
  key: string;
  /** Whether `key` names the member being read (false while a key itself is read). */
  hasKey: boolean;
  count: number;
}
interface ArrayFrame {
  readonly kind: 'array';
  readonly value: unknown[];
}
type Frame = ObjectFrame | ArrayFrame;

// Character codes.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Parse `bytes` as one strict JSON document. Throws {@link JsonParseError}. */
export function parseStrictJson(bytes: Uint8Array, limits: JsonLimits): unknown {
  if (bytes.length === 0) throw new JsonParseError('empty', 'The body is empty.', [], 0);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new JsonParseError('invalid_utf8', 'The body is not valid UTF-8.', [], firstInvalidUtf8(bytes));
  }
  return new Parser(text, limits).parseDocument();
}

/** Same rules for a string already decoded (used by tests and callers holding text). */
export function parseStrictJsonText(text: string, limits: JsonLimits): unknown {
  if (text.length === 0) throw new JsonParseError('empty', 'The body is empty.', [], 0);
  return new Parser(text, limits).parseDocument();
}

class Parser {
  private readonly s: string;
  private readonly n: number;
  private i = 0;
  private readonly stack: Frame[] = [];
  private readonly maxDepth: number;
  private readonly maxKeys: number;
  private readonly maxStringBytes: number;

  constructor(text: string, limits: JsonLimits) {
    this.s = text;
    this.n = text.length;
    this.maxDepth = limits.maxDepth;
    this.maxKeys = limits.maxKeys ?? Number.POSITIVE_INFINITY;
    this.maxStringBytes = limits.maxStringBytes ?? Number.POSITIVE_INFINITY;
  }

  parseDocument(): unknown {
    const { s, stack } = this;
    let value: unknown;
    // Each turn of the outer loop parses one value start; the inner loop then
    // hands finished values to their containers until one wants another value.
    outer: while (true) {
      this.skipWs();
      if (this.i >= this.n) throw this.fail('invalid_json', 'Unexpected end of JSON input.');
      const c = s.charCodeAt(this.i);
      if (c === LBRACE) {
        this.i++;
        this.push();
        const obj = Object.create(null) as JsonObject;
        this.skipWs();
        if (s.charCodeAt(this.i) === RBRACE) {
          this.i++;
          value = obj;
        } else {
          const frame: ObjectFrame = { kind: 'object', value: obj, key: '', hasKey: false, count: 0 };
          stack.push(frame);
          this.readKey(frame);
          continue outer;
        }
      } else if (c === LBRACKET) {
        this.i++;
        this.push();
        const arr: unknown[] = [];
        this.skipWs();
        if (s.charCodeAt(this.i) === RBRACKET) {
          this.i++;
          value = arr;
        } else {
          stack.push({ kind: 'array', value: arr });
          continue outer;
        }
      } else if (c === QUOTE) {
        value = this.readString();
      } else if (c === MINUS || isDigit(c)) {
        value = this.readNumber();
      } else if (s.startsWith('true', this.i)) {
        this.i += 4;
        value = true;
      } else if (s.startsWith('false', this.i)) {
        this.i += 5;
        value = false;
      } else if (s.startsWith('null', this.i)) {
        this.i += 4;
        value = null;
      } else {
        throw this.fail('invalid_json', `Unexpected character at position ${this.i}.`);
      }

      // Deliver `value` upward.
      while (true) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.skipWs();
          if (this.i !== this.n) throw this.fail('invalid_json', `Unexpected data after the JSON value at position ${this.i}.`);
          return value;
        }
        if (top.kind === 'array') {
          top.value.push(value);
          this.skipWs();
          const d = s.charCodeAt(this.i);
          if (d === COMMA) {
            this.i++;
            continue outer;
          }
          if (d === RBRACKET) {
            this.i++;
            stack.pop();
            value = top.value;
            continue;
          }
          throw this.fail('invalid_json', `Expected ',' or ']' at position ${this.i}.`);
        }
        top.value[top.key] = value;
        this.skipWs();
        const d = s.charCodeAt(this.i);
        if (d === COMMA) {
          this.i++;
          this.skipWs();
          this.readKey(top);
          continue outer;
        }
        if (d === RBRACE) {
          this.i++;
          stack.pop();
          value = top.value;
          continue;
        }
        throw this.fail('invalid_json', `Expected ',' or '}' at position ${this.i}.`);
      }
    }
  }

  /** Enter a container: depth check. Called before the frame is pushed. */
  private push(): void {
    if (this.stack.length + 1 > this.maxDepth) {
      throw this.fail('too_deep', `The JSON nesting is deeper than ${this.maxDepth} levels.`);
    }
  }

  /** Read `"key" :` into the frame, checking it. */
  private readKey(frame: ObjectFrame): void {
    frame.hasKey = false;
    if (this.s.charCodeAt(this.i) !== QUOTE) throw this.fail('invalid_json', `Expected a string key at position ${this.i}.`);
    const key = this.readString();
    frame.key = key;
    frame.hasKey = true;
    if (FORBIDDEN_KEYS.has(key)) throw this.fail('forbidden_key', `The key "${key}" is not allowed.`);
    if (key in frame.value) throw this.fail('duplicate_key', `Duplicate key "${key}".`);
    frame.count++;
    if (frame.count > this.maxKeys) throw this.fail('too_many_keys', `An object has more than ${this.maxKeys} keys.`);
    this.skipWs();
    if (this.s.charCodeAt(this.i) !== COLON) throw this.fail('invalid_json', `Expected ':' at position ${this.i}.`);
    this.i++;
  }

  private skipWs(): void {
    const s = this.s;
    let i = this.i;
    while (i < this.n) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  /** At an opening quote; returns the string and leaves `i` after the closing quote. */
  private readString(): string {
    const s = this.s;
    const start = this.i + 1;
    let i = start;
    let out = '';
    let chunk = start;
    while (true) {
      if (i >= this.n) {
        this.i = i;
        throw this.fail('invalid_json', 'Unterminated string.');
      }
      const c = s.charCodeAt(i);
      if (c === QUOTE) break;
      if (c < 0x20) {
        this.i = i;
        throw this.fail('invalid_json', `Unescaped control character in a string at position ${i}.`);
      }
      if (c !== BACKSLASH) {
        i++;
        continue;
      }
      out += s.slice(chunk, i);
      const e = s.charCodeAt(i + 1);
      i += 2;
      switch (e) {
        case QUOTE:
          out += '"';
          break;
        case BACKSLASH:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const u = this.hex4(i);
          i += 4;
          if (u >= 0xd800 && u <= 0xdbff) {
            // A high surrogate must be followed by an escaped low surrogate.
            if (s.charCodeAt(i) !== BACKSLASH || s.charCodeAt(i + 1) !== 0x75) {
              this.i = i;
              throw this.fail('invalid_unicode_escape', `Lone surrogate escape in a string at position ${i - 6}.`);
            }
            const lo = this.hex4(i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) {
              this.i = i;
              throw this.fail('invalid_unicode_escape', `Lone surrogate escape in a string at position ${i - 6}.`);
            }
            i += 6;
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            this.i = i;
            throw this.fail('invalid_unicode_escape', `Lone surrogate escape in a string at position ${i - 6}.`);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.i = i - 2;
          throw this.fail('invalid_json', `Invalid escape in a string at position ${i - 2}.`);
      }
      chunk = i;
    }
    out += s.slice(chunk, i);
    this.i = i + 1;
    // UTF-8 is at most 3 bytes per UTF-16 unit: only measure when it could matter.
    if (out.length * 3 > this.maxStringBytes && Buffer.byteLength(out, 'utf8') > this.maxStringBytes) {
      this.i = start - 1;
      throw this.fail('string_too_long', `A string is longer than ${this.maxStringBytes} bytes.`);
    }
    return out;
  }

  private hex4(at: number): number {
    const s = this.s;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = at + k < this.n ? hexValue(s.charCodeAt(at + k)) : -1;
      if (h < 0) {
        this.i = at;
        throw this.fail('invalid_json', `Invalid \\u escape at position ${at - 2}.`);
      }
      v = v * 16 + h;
    }
    return v;
  }

  private readNumber(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    if (s.charCodeAt(i) === MINUS) i++;
    const first = s.charCodeAt(i);
    if (first === ZERO) {
      i++;
    } else if (isDigit(first)) {
      while (isDigit(s.charCodeAt(i))) i++;
    } else {
      this.i = i;
      throw this.fail('invalid_json', `Invalid number at position ${start}.`);
    }
    let integer = true;
    if (s.charCodeAt(i) === DOT) {
      integer = false;
      i++;
      if (!isDigit(s.charCodeAt(i))) {
        this.i = i;
        throw this.fail('invalid_json', `Invalid number at position ${start}.`);
      }
      while (isDigit(s.charCodeAt(i))) i++;
    }
    const e = s.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      integer = false;
      i++;
      const sign = s.charCodeAt(i);
      if (sign === PLUS || sign === MINUS) i++;
      if (!isDigit(s.charCodeAt(i))) {
        this.i = i;
        throw this.fail('invalid_json', `Invalid number at position ${start}.`);
      }
      while (isDigit(s.charCodeAt(i))) i++;
    }
    this.i = i;
    const value = Number(s.slice(start, i));
    if (!Number.isFinite(value)) {
      this.i = start;
      throw this.fail('number_out_of_range', `A number at position ${start} is too large.`);
    }
    if (integer && !Number.isSafeInteger(value)) {
      this.i = start;
      throw this.fail('unsafe_integer', `An integer at position ${start} is beyond ±(2^53 − 1) and would lose precision.`);
    }
    return value;
  }

  /** Build the error with the path of the value being read. */
  private fail(reason: JsonErrorReason, message: string): JsonParseError {
    return new JsonParseError(reason, message, this.currentPath(), this.i);
  }

  private currentPath(): (string | number)[] {
    const path: (string | number)[] = [];
    for (const f of this.stack) {
      if (f.kind === 'array') path.push(f.value.length);
      else if (f.hasKey) path.push(f.key);
    }
    return path;
  }
}

/** Byte offset of the first invalid UTF-8 sequence (for the error; only called on failure). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] ?? 0;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= n) return i;
    let cp = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
    for (let k = 1; k <= need; k++) {
      const cb = bytes[i + k];
      if (cb === undefined || (cb & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cb & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return n;
}
