/**
 * The common chat request, accepted without running the schema (issue #15:
 * zod's safeParse was 2.5% of the sidecar's busy time in a saturation
 * profile, docs/benchmarks.md "third round"). It only ever says "accepted": a body it does
 * not recognise field for field — any schema field it does not check here
 * (tools, stop, logit_bias, content parts, tool calls, …), a value outside
 * the plain cases, a field the schema gains later — goes to the schema in
 * schemas.ts, which alone refuses and words the error. So it must accept
 * nothing the schema refuses; test/families/openai/chat-fast-path.test.ts
 * holds it to that over generated bodies.
 */
import { isObject } from '../../shared/values.ts';
import { CHAT_MESSAGE_FIELDS, chatCompletionRequest } from './schemas.ts';

type Check = (v: unknown) => boolean;

const isNumberIn =
  (min: number, max: number): Check =>
  (v) =>
    v === null || (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max);
const isIntIn =
  (min: number, max: number): Check =>
  (v) =>
    v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max);
const isNullableBoolean: Check = (v) => v === null || typeof v === 'boolean';

const isStreamOptions: Check = (v) => {
  if (v === null) return true;
  if (!isObject(v)) return false;
  const usage = v['include_usage'];
  const obfuscation = v['include_obfuscation'];
  return (usage === undefined || isNullableBoolean(usage)) && (obfuscation === undefined || isNullableBoolean(obfuscation));
};

/**
 * The top-level fields checked here, each as the schema does (null where the schema takes null). The ranges repeat
 * schemas.ts's: a drift that lets through what the schema refuses fails the fast-path property test; one that is
 * stricter only sends more bodies to the schema.
 */
const TOP: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['model', (v) => typeof v === 'string' && v.length > 0],
  ['messages', (v) => Array.isArray(v) && v.length > 0 && v.every(isPlainMessage)],
  ['stream', isNullableBoolean],
  ['stream_options', isStreamOptions],
  ['max_tokens', isIntIn(1, Number.MAX_SAFE_INTEGER)],
  ['max_completion_tokens', isIntIn(1, Number.MAX_SAFE_INTEGER)],
  ['temperature', isNumberIn(0, 2)],
  ['top_p', isNumberIn(0, 1)],
  ['n', isIntIn(1, 128)],
  ['presence_penalty', isNumberIn(-2, 2)],
  ['frequency_penalty', isNumberIn(-2, 2)],
  ['seed', isIntIn(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)],
  ['user', (v) => typeof v === 'string'],
  ['logprobs', isNullableBoolean],
  ['top_logprobs', isIntIn(0, 20)],
]);

/** Every field the schema checks: one of them not in TOP sends the body to the schema. */
const SCHEMA_FIELDS: ReadonlySet<string> = new Set(Object.keys(chatCompletionRequest.shape));

/** The message fields checked here; a message with another field the schema checks (tool_calls, refusal, …) is not plain. */
const MESSAGE_CHECKED: ReadonlySet<string> = new Set(['role', 'content', 'name', 'tool_call_id']);

/** A message of a known role whose content is a string (an assistant's may be null), with string name or tool_call_id. */
function isPlainMessage(m: unknown): boolean {
  if (!isObject(m)) return false;
  const role = m['role'];
  if (typeof role !== 'string' || !Object.hasOwn(CHAT_MESSAGE_FIELDS, role)) return false;
  const schemaFields = CHAT_MESSAGE_FIELDS[role]!;
  for (const key in m) if (!MESSAGE_CHECKED.has(key) && schemaFields.has(key)) return false;
  const content = m['content'];
  if (!(typeof content === 'string' || (role === 'assistant' && (content === null || content === undefined)))) return false;
  const name = m['name'];
  if (name !== undefined && typeof name !== 'string') return false;
  if (role === 'tool') {
    const id = m['tool_call_id'];
    if (typeof id !== 'string' || id.length === 0) return false;
  }
  return true;
}

/** True when the schema would accept this chat request too; false means "ask the schema", not "refused". */
export function plainChatRequest(obj: Record<string, unknown>): boolean {
  if (!Object.hasOwn(obj, 'model') || !Object.hasOwn(obj, 'messages')) return false;
  for (const key in obj) {
    const check = TOP.get(key);
    if (check === undefined) {
      if (SCHEMA_FIELDS.has(key)) return false;
      continue;
    }
    if (!check(obj[key])) return false;
  }
  return true;
}
