/**
 * Deployments that speak Anthropic's Messages API, for clients of the other
 * families. A provider that wraps the Messages API (Bedrock, Vertex) would
 * be a file like this one, reusing these translations with its own path,
 * version field and stream framing.
 */
import type { OpenAIChatRequest } from './openai-types.ts';
import { anthropicErrorToOpenAI } from './error-bodies.ts';
import { openAIChatToAnthropic } from './request-openai-to-anthropic.ts';
import { anthropicResponseToOpenAIChat } from './response-anthropic-to-openai.ts';
import { AnthropicToOpenAISse } from './stream-anthropic-to-openai.ts';
import type { Translator } from './translator.ts';

export const ANTHROPIC_MESSAGES_PATH = '/v1/messages';
/** The Messages API version these translations are written against. */
export const ANTHROPIC_VERSION = '2023-06-01';

/** An OpenAI Chat Completions client served by an Anthropic deployment. */
export const openAIClientOnAnthropic: Translator = {
  client: 'openai',
  provider: 'anthropic',
  request: (json, upstreamModel, opts) => ({
    body: openAIChatToAnthropic(json as OpenAIChatRequest, upstreamModel, opts),
    path: ANTHROPIC_MESSAGES_PATH,
    headers: [['anthropic-version', ANTHROPIC_VERSION]],
    removeHeaders: [],
  }),
  response: (json, clientModel) => anthropicResponseToOpenAIChat(json, clientModel),
  stream: (opts) => new AnthropicToOpenAISse(opts),
  error: anthropicErrorToOpenAI,
};

export const ANTHROPIC_UPSTREAM: readonly Translator[] = [openAIClientOnAnthropic];
