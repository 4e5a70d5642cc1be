/**
 * Deployments that speak OpenAI's Chat Completions API (OpenAI, vLLM, TGI…),
 * for clients of the other families.
 */
import type { AnthropicMessagesRequest } from './anthropic-types.ts';
import { openAIErrorToAnthropic } from './error-bodies.ts';
import { anthropicToOpenAIChat } from './request-anthropic-to-openai.ts';
import { openAIChatResponseToAnthropic } from './response-openai-to-anthropic.ts';
import { OpenAIToAnthropicSse } from './stream-openai-to-anthropic.ts';
import type { Translator } from './translator.ts';

export const OPENAI_CHAT_PATH = '/v1/chat/completions';

/** An Anthropic Messages client served by an OpenAI-compatible deployment. */
export const anthropicClientOnOpenAI: Translator = {
  client: 'anthropic',
  provider: 'openai',
  request: (json, upstreamModel) => ({
    body: anthropicToOpenAIChat(json as AnthropicMessagesRequest, upstreamModel),
    path: OPENAI_CHAT_PATH,
    headers: [],
    removeHeaders: ['anthropic-version', 'anthropic-beta'],
  }),
  response: (json, clientModel) => openAIChatResponseToAnthropic(json, clientModel),
  stream: (opts) => new OpenAIToAnthropicSse(opts),
  error: openAIErrorToAnthropic,
};

export const OPENAI_UPSTREAM: readonly Translator[] = [anthropicClientOnOpenAI];
