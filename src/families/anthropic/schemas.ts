/**
 * Anthropic Messages request bodies, as far as the gateway must judge them:
 * what routing, metering and the data policy read, and what the upstream
 * would refuse anyway. Unknown fields are kept as sent (the API grows).
 */
import * as z from 'zod';

const TextBlock = z.looseObject({ type: z.literal('text'), text: z.string() });
/** Any content block: text, image, document, tool_use, tool_result, thinking… (passed through). */
const Block = z.looseObject({ type: z.string().min(1) });

const Message = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(Block)]),
});

const common = {
  model: z.string().min(1).max(256),
  messages: z.array(Message).min(1),
  system: z.union([z.string(), z.array(TextBlock)]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1).max(128) })).optional(),
  tool_choice: z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']) }).optional(),
};

export const MESSAGES_SCHEMA = z.looseObject({
  ...common,
  max_tokens: z.int().min(1),
  stream: z.boolean().optional(),
  stop_sequences: z.array(z.string()).optional(),
  metadata: z.looseObject({ user_id: z.string().max(256).nullable().optional() }).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.int().min(0).optional(),
});

export const COUNT_TOKENS_SCHEMA = z.looseObject(common);
