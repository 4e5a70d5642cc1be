/**
 * Translation between API families: a client of one family served by a
 * deployment that speaks another. Pure functions and stream translators
 * over plain JSON and bytes; the processor decides when to use them
 * (translatorFor) and maps a TranslationError to its own error.
 */
export type { AnthropicErrorBody, AnthropicMessage, AnthropicMessagesRequest } from './anthropic-types.ts';
export { anthropicErrorToOpenAI, openAIErrorToAnthropic } from './error-bodies.ts';
export type { JsonObject, OpenAIChatCompletion, OpenAIChatRequest, OpenAIErrorBody } from './openai-types.ts';
export { translatorFor } from './registry.ts';
export { anthropicToOpenAIChat } from './request-anthropic-to-openai.ts';
export { openAIChatToAnthropic, type OpenAIToAnthropicOptions } from './request-openai-to-anthropic.ts';
export { anthropicResponseToOpenAIChat, type ResponseOptions } from './response-anthropic-to-openai.ts';
export { openAIChatResponseToAnthropic } from './response-openai-to-anthropic.ts';
export { AnthropicToOpenAISse } from './stream-anthropic-to-openai.ts';
export { OpenAIToAnthropicSse } from './stream-openai-to-anthropic.ts';
export { TranslationError, type TranslationErrorCode } from './translation-error.ts';
export {
  CLIENT_FAMILIES,
  PROVIDERS,
  type ClientFamily,
  type Provider,
  type StreamTranslator,
  type TranslateRequestOptions,
  type TranslateStreamOptions,
  type Translator,
  type UpstreamRequest,
} from './translator.ts';
export { ANTHROPIC_MESSAGES_PATH, ANTHROPIC_VERSION } from './upstream-anthropic.ts';
export { OPENAI_CHAT_PATH } from './upstream-openai.ts';
