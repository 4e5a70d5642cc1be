/**
 * The OpenAI API family: chat completions, completions, embeddings and the
 * model catalogue, as OpenAI-compatible clients call them and
 * OpenAI-compatible servers (vLLM, TGI, …) answer them.
 */
import { isObject } from '../../shared/values.ts';
import type { EndpointSpec } from '../../pipeline/endpoint.ts';
import type { GatewayError } from '../../pipeline/errors.ts';
import type { ApiFamily, BodyLimits, ParsedResponse, RedactFn, StreamMeter, StreamRedactor } from '../../pipeline/ports.ts';
import type { ModelRoute, Snapshot } from '../../pipeline/snapshot.ts';
import { JsonResponse, parseJsonResponse } from '../common/json-response.ts';
import { matchEndpoint, OPENAI_ENDPOINTS } from './endpoints.ts';
import { modelListBody, modelObjectBody } from './models.ts';
import { parseRequestBody, type OpenAIRequest } from './request.ts';
import { SseRedactor } from './sse-redact.ts';
import { SseStreamMeter } from './sse.ts';
import { responseTexts } from './texts.ts';
import { usageFrom } from './usage.ts';

/** `{"error": {"message", "type", "code", "param"}}`: the shape the official SDKs parse. */
export function openAIErrorBody(err: GatewayError): object {
  return { error: { message: err.message, type: err.type, code: err.code, param: err.param } };
}

export const openAIFamily = {
  name: 'openai',
  endpoints: OPENAI_ENDPOINTS,
  match: matchEndpoint,
  /** OpenAI's SDKs send nothing that marks them; OpenAI is the default family instead. */
  isClient: (): boolean => false,

  parseRequest(endpoint: EndpointSpec, body: Buffer, limits: BodyLimits): OpenAIRequest {
    return parseRequestBody(endpoint.name, body, limits.maxJsonDepth);
  },

  parseResponse(_endpoint: EndpointSpec, body: Buffer): ParsedResponse | null {
    const json = parseJsonResponse(body);
    return json === null ? null : new JsonResponse(json, usageFrom(json), responseTexts);
  },

  isStream(contentType: string): boolean {
    return contentType.toLowerCase().startsWith('text/event-stream');
  },

  streamMeter(opts: { readonly stripUsageChunk: boolean; readonly responseModel: string | null }): StreamMeter {
    return new SseStreamMeter(opts);
  },

  streamRedactor(redact: RedactFn, holdBackChars: number): StreamRedactor {
    return new SseRedactor(redact, holdBackChars);
  },

  errorBody: openAIErrorBody,
  // OpenAI's error: {"error": {"message": …}} (vLLM, TGI and other compatible servers answer the same way).
  isErrorBody: (json) => isObject(json) && isObject(json['error']) && typeof json['error']['message'] === 'string',

  modelList(routes: readonly ModelRoute[], snapshot: Snapshot): object {
    return modelListBody(routes, snapshot);
  },

  modelObject(route: ModelRoute, snapshot: Snapshot): object {
    return modelObjectBody(route, snapshot);
  },
} as const satisfies ApiFamily;
