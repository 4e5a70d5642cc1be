/**
 * The OpenAI Chat Completions JSON shapes the translators read and write.
 * Requests mirror what src/families/openai/schemas.ts accepts (the caller
 * validates first); open-ended objects keep an index signature so fields
 * this layer does not know survive type-wise and are judged at run time.
 */

/** A plain JSON object as JSON.parse returns it. */
export type JsonObject = Record<string, unknown>;

// ── Requests ────────────────────────────────────────────────────────────────

export interface OpenAITextPart {
  type: 'text';
  text: string;
}

export interface OpenAIImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}

export interface OpenAIRefusalPart {
  type: 'refusal';
  refusal: string;
}

/** Parts this layer cannot translate (input_audio, file…): refused by name. */
export interface OpenAIOtherPart {
  type: 'input_audio' | 'file';
  [key: string]: unknown;
}

export type OpenAIUserPart = OpenAITextPart | OpenAIImagePart | OpenAIOtherPart;
export type OpenAIAssistantPart = OpenAITextPart | OpenAIRefusalPart;

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface OpenAISystemMessage {
  role: 'system' | 'developer';
  content: string | OpenAITextPart[];
  name?: string;
}

export interface OpenAIUserMessage {
  role: 'user';
  content: string | OpenAIUserPart[];
  name?: string;
}

export interface OpenAIAssistantMessage {
  role: 'assistant';
  content?: string | OpenAIAssistantPart[] | null;
  name?: string;
  refusal?: string | null;
  tool_calls?: OpenAIToolCall[];
  [key: string]: unknown;
}

export interface OpenAIToolMessage {
  role: 'tool';
  content: string | OpenAITextPart[];
  tool_call_id: string;
}

export type OpenAIMessage = OpenAISystemMessage | OpenAIUserMessage | OpenAIAssistantMessage | OpenAIToolMessage;

export interface OpenAIFunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonObject; strict?: boolean | null };
}

export interface OpenAICustomTool {
  type: 'custom';
  custom: { name: string; [key: string]: unknown };
}

export type OpenAITool = OpenAIFunctionTool | OpenAICustomTool;

export type OpenAIToolChoice =
  | 'none'
  | 'auto'
  | 'required'
  | { type: 'function'; function: { name: string } }
  | { type: 'custom'; custom: { name: string } }
  | { type: 'allowed_tools'; allowed_tools: JsonObject };

export interface OpenAIChatRequest {
  model: string;
  messages: OpenAIMessage[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stop?: string | string[] | null;
  temperature?: number | null;
  top_p?: number | null;
  /** Not OpenAI's: vLLM and other OpenAI-compatible servers accept it. */
  top_k?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  tools?: OpenAITool[];
  tool_choice?: OpenAIToolChoice;
  parallel_tool_calls?: boolean;
  user?: string;
  [key: string]: unknown;
}

// ── Responses ───────────────────────────────────────────────────────────────

export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
}

export interface OpenAIResponseMessage {
  role: 'assistant';
  content: string | null;
  refusal: string | null;
  tool_calls?: OpenAIToolCall[];
}

export interface OpenAIChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: OpenAIResponseMessage; logprobs: null; finish_reason: OpenAIFinishReason | null }>;
  usage?: OpenAIUsage;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
