/**
 * Request schemas for the OpenAI-compatible endpoints, compiled once at
 * module load.
 *
 * Policy: unknown fields are allowed everywhere (loose objects), so requests
 * using newer OpenAI or server-specific parameters (vLLM's `top_k`,
 * `repetition_penalty`, …) still pass; every field listed here is checked
 * for type and range. `null` is accepted wherever OpenAI documents a field
 * as nullable, which for optional scalars it does almost everywhere.
 *
 * The schemas only validate: validate.ts keeps its own parsed object (with
 * null prototypes and unknown fields intact) and never uses zod's output.
 */
import * as z from 'zod';

const int = z.number().int();
const posInt = int.min(1);
const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

const model = z.string().min(1, '`model` must be a non-empty string.');
const user = z.string();

const stop = nullable(
  z.union([z.string(), z.array(z.string()).max(4, 'At most 4 stop sequences are allowed.')], { error: 'Expected a string or an array of up to 4 strings.' }),
);
const penalty = nullable(z.number().min(-2).max(2));
const streamOptions = nullable(z.looseObject({ include_usage: nullable(z.boolean()), include_obfuscation: nullable(z.boolean()) }));
/** Token ids as keys (`"50256"`), biases -100..100. */
const logitBias = nullable(z.record(z.string().regex(/^(0|[1-9][0-9]{0,9})$/, 'logit_bias keys must be token ids.'), z.number().min(-100).max(100)));

const common = {
  model,
  stream: nullable(z.boolean()),
  stream_options: streamOptions,
  max_tokens: nullable(posInt),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  n: nullable(posInt.max(128)),
  stop,
  presence_penalty: penalty,
  frequency_penalty: penalty,
  seed: nullable(int),
  user: user.optional(),
  logit_bias: logitBias,
};

// --- /v1/chat/completions ---------------------------------------------------

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const audioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string(), format: z.string().min(1) }),
});
const filePart = z.looseObject({
  type: z.literal('file'),
  file: z.looseObject({ file_data: z.string().optional(), file_id: z.string().optional(), filename: z.string().optional() }),
});
const refusalPart = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });

const partError = (types: string) => ({ error: `Expected a content part of type ${types}.` });
const textContent = z.union([z.string(), z.array(textPart)], { error: 'Expected a string or an array of text parts.' });
const userContent = z.union(
  [z.string(), z.array(z.discriminatedUnion('type', [textPart, imagePart, audioPart, filePart], partError('text, image_url, input_audio or file')))],
  { error: 'Expected a string or an array of content parts.' },
);
const assistantContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [textPart, refusalPart], partError('text or refusal')))], {
  error: 'Expected a string or an array of text or refusal parts.',
});

const toolCall = z.looseObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const name = z.string().optional();

/** The message variants by role (the discriminator). */
const messageVariants = {
  system: z.looseObject({ role: z.literal('system'), content: textContent, name }),
  developer: z.looseObject({ role: z.literal('developer'), content: textContent, name }),
  user: z.looseObject({ role: z.literal('user'), content: userContent, name }),
  assistant: z.looseObject({
    role: z.literal('assistant'),
    content: nullable(assistantContent),
    name,
    refusal: nullable(z.string()),
    tool_calls: z.array(toolCall).optional(),
  }),
  tool: z.looseObject({ role: z.literal('tool'), content: textContent, tool_call_id: z.string().min(1) }),
};

const chatMessage = z.discriminatedUnion(
  'role',
  [messageVariants.system, messageVariants.developer, messageVariants.user, messageVariants.assistant, messageVariants.tool],
  { error: 'Expected a message whose role is system, developer, user, assistant or tool.' },
);

/** Per role, the message fields the schema checks (the chat fast path leaves a message with any it does not know to the schema). */
export const CHAT_MESSAGE_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = Object.fromEntries(
  Object.entries(messageVariants).map(([role, v]) => [role, new Set(Object.keys(v.shape))]),
);

const functionName = z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'Function names are 1-64 letters, digits, _ . or -.');

const tool = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('function'),
    function: z.looseObject({
      name: functionName,
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
      strict: nullable(z.boolean()),
    }),
  }),
  z.looseObject({ type: z.literal('custom'), custom: z.looseObject({ name: functionName }) }),
]);

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: functionName }) }),
  z.looseObject({ type: z.literal('custom'), custom: z.looseObject({ name: functionName }) }),
  z.looseObject({
    type: z.literal('allowed_tools'),
    allowed_tools: z.looseObject({ mode: z.enum(['auto', 'required']), tools: z.array(z.record(z.string(), z.unknown())) }),
  }),
]);

const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'Schema names are 1-64 letters, digits, _ or -.'),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: nullable(z.boolean()),
    }),
  }),
]);

export const chatCompletionRequest = z.looseObject({
  ...common,
  messages: z.array(chatMessage).min(1, '`messages` must contain at least one message.'),
  max_completion_tokens: nullable(posInt),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: responseFormat.optional(),
  logprobs: nullable(z.boolean()),
  top_logprobs: nullable(int.min(0).max(20)),
});

// --- /v1/completions ----------------------------------------------------------

const tokenId = int.min(0);
const tokens = z.array(tokenId).min(1);

export const completionRequest = z.looseObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokens, z.array(tokens).min(1)], {
    error: 'Expected a string, an array of strings, an array of token ids, or an array of token-id arrays.',
  }),
  logprobs: nullable(int.min(0).max(5)),
  echo: nullable(z.boolean()),
  best_of: nullable(posInt.max(20)),
  suffix: nullable(z.string()),
});

// --- /v1/embeddings -----------------------------------------------------------

/** OpenAI's documented cap on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;

const nonEmpty = z.string().min(1, 'Embedding inputs must not be empty strings.');

export const embeddingRequest = z.looseObject({
  model,
  input: z.union([nonEmpty, z.array(nonEmpty).min(1).max(MAX_EMBEDDING_INPUTS), tokens, z.array(tokens).min(1).max(MAX_EMBEDDING_INPUTS)], {
    error: 'Expected a non-empty string, an array of strings, an array of token ids, or an array of token-id arrays.',
  }),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: posInt.optional(),
  user: user.optional(),
});

export const REQUEST_SCHEMAS = {
  chat: chatCompletionRequest,
  completions: completionRequest,
  embeddings: embeddingRequest,
} as const;
