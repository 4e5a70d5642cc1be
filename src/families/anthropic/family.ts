/**
 * The Anthropic API family: the Messages API (`POST /v1/messages`, streaming
 * included), token counting and the model catalogue, as the official
 * Anthropic SDKs call them and Anthropic-compatible servers answer them.
 */
import { isObject } from '../../shared/values.ts';
import type { EndpointSpec } from '../../pipeline/endpoint.ts';
import type { GatewayError } from '../../pipeline/errors.ts';
import type { ApiFamily, BodyLimits, ParsedResponse, RedactFn, StreamMeter, StreamRedactor } from '../../pipeline/ports.ts';
import type { ModelRoute, Snapshot } from '../../pipeline/snapshot.ts';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { JsonResponse, parseJsonResponse } from '../common/json-response.ts';
import { ANTHROPIC_ENDPOINTS, matchEndpoint } from './endpoints.ts';
import { parseRequestBody, type AnthropicRequest } from './request.ts';
import { AnthropicSseRedactor } from './sse-redact.ts';
import { AnthropicStreamMeter } from './sse.ts';
import { responseTexts } from './texts.ts';
import { usageFromMessage } from './usage.ts';

/**
 * The error type in Anthropic's envelope for a status: the official SDKs pick
 * their error class by status, and clients that read `error.type` get
 * Anthropic's names.
 */
export function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

/** `{"type": "error", "error": {"type", "message"}}`: Anthropic's envelope. */
export function anthropicErrorBody(err: GatewayError): object {
  return { type: 'error', error: { type: anthropicErrorType(err.status), message: err.message } };
}

const NO_USAGE: ReportedUsage = Object.freeze({ promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 });

function modelObject(route: ModelRoute, snapshot: Snapshot): object {
  return { type: 'model', id: route.id, display_name: route.id, created_at: new Date(snapshot.loadedAt).toISOString() };
}

export const anthropicFamily = {
  name: 'anthropic',
  endpoints: ANTHROPIC_ENDPOINTS,
  match: matchEndpoint,
  /** Anthropic's SDKs always send `anthropic-version`. */
  isClient: (headers: ReadonlyMap<string, string>): boolean => headers.has('anthropic-version'),

  parseRequest(endpoint: EndpointSpec, body: Buffer, limits: BodyLimits): AnthropicRequest {
    return parseRequestBody(endpoint, body, limits.maxJsonDepth);
  },

  parseResponse(endpoint: EndpointSpec, body: Buffer): ParsedResponse | null {
    const json = parseJsonResponse(body);
    if (json === null) return null;
    // Counting tokens runs no model: nothing to charge.
    return new JsonResponse(json, endpoint.name === 'count_tokens' ? NO_USAGE : usageFromMessage(json), responseTexts);
  },

  isStream(contentType: string): boolean {
    return contentType.toLowerCase().startsWith('text/event-stream');
  },

  streamMeter(opts: { readonly responseModel: string | null }): StreamMeter {
    return new AnthropicStreamMeter(opts);
  },

  streamRedactor(redact: RedactFn, holdBackChars: number): StreamRedactor {
    return new AnthropicSseRedactor(redact, holdBackChars);
  },

  errorBody: anthropicErrorBody,
  // Anthropic's error: {"type": "error", "error": {"type": …, "message": …}}.
  isErrorBody: (json) =>
    isObject(json) &&
    json['type'] === 'error' &&
    isObject(json['error']) &&
    typeof json['error']['type'] === 'string' &&
    typeof json['error']['message'] === 'string',

  modelList(routes: readonly ModelRoute[], snapshot: Snapshot): object {
    const data = routes.map((r) => modelObject(r, snapshot));
    return { data, has_more: false, first_id: routes[0]?.id ?? null, last_id: routes.at(-1)?.id ?? null };
  },

  modelObject,
} as const satisfies ApiFamily;
