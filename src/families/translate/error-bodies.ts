/**
 * An upstream's error body in the client's family's envelope, so a client
 * always parses its own kind of error (the HTTP status is kept as it is):
 *
 *   OpenAI     {"error": {"message", "type", "param", "code"}}
 *   Anthropic  {"type": "error", "error": {"type", "message"}}
 *
 * Anthropic's error types are finer than OpenAI's, so going to OpenAI the
 * type decides (the status when it is unknown); going to Anthropic the
 * status decides (OpenAI reports a bad key as an invalid_request_error with
 * a 401), the type when the status says nothing (an error inside a stream).
 * A body that is not JSON (a proxy's plain-text page) becomes the message.
 */
import { isObject } from '../../shared/values.ts';
import type { AnthropicErrorBody, AnthropicErrorType } from './anthropic-types.ts';
import type { OpenAIErrorBody } from './openai-types.ts';

const ANTHROPIC_TO_OPENAI: Readonly<Record<AnthropicErrorType, { readonly type: string; readonly code: string | null }>> = {
  invalid_request_error: { type: 'invalid_request_error', code: null },
  authentication_error: { type: 'authentication_error', code: 'invalid_api_key' },
  billing_error: { type: 'insufficient_quota', code: 'insufficient_quota' },
  permission_error: { type: 'permission_error', code: null },
  not_found_error: { type: 'not_found_error', code: null },
  request_too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  rate_limit_error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  timeout_error: { type: 'server_error', code: 'timeout' },
  api_error: { type: 'server_error', code: null },
  overloaded_error: { type: 'server_error', code: 'overloaded' },
};

const OPENAI_TO_ANTHROPIC: Readonly<Record<string, AnthropicErrorType>> = {
  invalid_request_error: 'invalid_request_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  not_found_error: 'not_found_error',
  rate_limit_error: 'rate_limit_error',
  insufficient_quota: 'billing_error',
  server_error: 'api_error',
  api_error: 'api_error',
};

const STATUS_TO_ANTHROPIC: Readonly<Record<number, AnthropicErrorType>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

export function anthropicErrorToOpenAI(status: number, body: unknown): OpenAIErrorBody {
  const { type, message } = readError(body);
  const mapped = type !== null && Object.hasOwn(ANTHROPIC_TO_OPENAI, type) ? ANTHROPIC_TO_OPENAI[type as AnthropicErrorType] : null;
  const { type: openaiType, code } = mapped ?? ANTHROPIC_TO_OPENAI[anthropicTypeForStatus(status)];
  return { error: { message: message ?? fallbackMessage(status, body), type: openaiType, param: null, code } };
}

export function openAIErrorToAnthropic(status: number, body: unknown): AnthropicErrorBody {
  const { type, code, message } = readError(body);
  let anthropicType: AnthropicErrorType;
  if (type === 'insufficient_quota' || code === 'insufficient_quota') anthropicType = 'billing_error';
  else if (Object.hasOwn(STATUS_TO_ANTHROPIC, status)) anthropicType = STATUS_TO_ANTHROPIC[status] as AnthropicErrorType;
  else if (status >= 500) anthropicType = 'api_error';
  else if (type !== null && Object.hasOwn(OPENAI_TO_ANTHROPIC, type)) anthropicType = OPENAI_TO_ANTHROPIC[type] as AnthropicErrorType;
  else anthropicType = status >= 400 && status < 500 ? 'invalid_request_error' : 'api_error';
  return { type: 'error', error: { type: anthropicType, message: message ?? fallbackMessage(status, body) } };
}

function anthropicTypeForStatus(status: number): AnthropicErrorType {
  return STATUS_TO_ANTHROPIC[status] ?? (status >= 500 || status < 400 ? 'api_error' : 'invalid_request_error');
}

/** `error.type`, `error.code` and `error.message` of either envelope (or of a bare error object). */
function readError(body: unknown): { type: string | null; code: string | null; message: string | null } {
  const json = parsed(body);
  const err = isObject(json) ? (isObject(json['error']) ? json['error'] : json) : {};
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return { type: str(err['type']), code: str(err['code']), message: str(err['message']) };
}

/** A parsed body, or the body as text when it is not JSON. */
function parsed(body: unknown): unknown {
  if (body instanceof Uint8Array) body = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

function fallbackMessage(status: number, body: unknown): string {
  const text = parsed(body);
  if (typeof text === 'string' && text.trim() !== '') {
    const t = text.trim();
    return t.length > 200 ? `${t.slice(0, 200)}…` : t;
  }
  return `The model server answered with HTTP status ${status}.`;
}
