/**
 * The Anthropic Messages JSON shapes the translators read and write (field
 * names as in @anthropic-ai/sdk's resources/messages types). Requests are
 * validated by the caller; open-ended objects keep an index signature.
 */
import type { JsonObject } from './openai-types.ts';

// ── Requests ────────────────────────────────────────────────────────────────

export interface AnthropicTextBlock {
  type: 'text';
  text: string;
  [key: string]: unknown; // cache_control, citations
}

export type AnthropicImageMediaType = 'image/jpeg' | 'image/png' | 'image/gif' | 'image/webp';

export type AnthropicImageSource = { type: 'base64'; media_type: AnthropicImageMediaType; data: string } | { type: 'url'; url: string };

export interface AnthropicImageBlock {
  type: 'image';
  source: AnthropicImageSource | { type: 'file'; file_id: string };
  [key: string]: unknown;
}

export interface AnthropicToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: JsonObject;
  [key: string]: unknown;
}

export interface AnthropicToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content?: string | Array<AnthropicTextBlock | AnthropicImageBlock | AnthropicOtherBlock>;
  is_error?: boolean;
  [key: string]: unknown;
}

/** Blocks this layer drops (thinking in history) or refuses (documents, server tools…). */
export interface AnthropicOtherBlock {
  type: 'thinking' | 'redacted_thinking' | 'document' | 'search_result' | 'server_tool_use' | 'web_search_tool_result';
  [key: string]: unknown;
}

export type AnthropicBlock = AnthropicTextBlock | AnthropicImageBlock | AnthropicToolUseBlock | AnthropicToolResultBlock | AnthropicOtherBlock;

export interface AnthropicMessageParam {
  role: 'user' | 'assistant' | 'system';
  content: string | AnthropicBlock[];
}

export interface AnthropicTool {
  name: string;
  description?: string;
  input_schema: JsonObject;
  strict?: boolean;
  /** Absent or 'custom' for a client tool; a dated name (`web_search_20250305`…) for a server tool. */
  type?: string | null;
  [key: string]: unknown;
}

export type AnthropicToolChoice =
  | { type: 'auto'; disable_parallel_tool_use?: boolean }
  | { type: 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

export interface AnthropicMessagesRequest {
  model: string;
  max_tokens: number;
  messages: AnthropicMessageParam[];
  system?: string | AnthropicTextBlock[];
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stream?: boolean;
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id?: string | null };
  [key: string]: unknown;
}

// ── Responses ───────────────────────────────────────────────────────────────

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal' | 'model_context_window_exceeded';

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
}

export type AnthropicResponseBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: JsonObject };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: AnthropicResponseBlock[];
  stop_reason: AnthropicStopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
}
