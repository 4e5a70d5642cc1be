/**
 * Why a body could not be translated. A request the other API cannot express
 * is the client's 400 (the parameter is named); a response the client's API
 * cannot express is the gateway's 502. The caller maps it to its own error
 * (the request kind to `invalid_request_body`: see toGatewayError).
 */
import { GatewayError } from '../../pipeline/errors.ts';

export type TranslationErrorCode =
  /** A parameter or value the upstream's API has no equivalent for. */
  | 'unsupported_parameter'
  /** A value that cannot be translated as sent (e.g. tool call arguments that are not JSON). */
  | 'invalid_parameter'
  /** The upstream answered something the client's API cannot express. */
  | 'untranslatable_response';

export class TranslationError extends Error {
  readonly code: TranslationErrorCode;
  /** The request parameter at fault (`temperature`, `messages[2].content[0]`…); null for a response. */
  readonly param: string | null;
  /** 400 for a request, 502 for a response. */
  readonly status: 400 | 502;

  constructor(code: TranslationErrorCode, message: string, param: string | null = null) {
    super(message);
    this.name = 'TranslationError';
    this.code = code;
    this.param = param;
    this.status = code === 'untranslatable_response' ? 502 : 400;
  }

  /** The request's error as the gateway reports it (400 invalid_request_body naming the param); null for a response error. */
  toGatewayError(): GatewayError | null {
    return this.status === 400 ? new GatewayError('invalid_request_body', this.message, { param: this.param }) : null;
  }
}

export type UpstreamApi = 'Anthropic Messages' | 'OpenAI Chat Completions';

/** The parameter (or this value of it) has no equivalent in the upstream's API. */
export function unsupported(param: string, upstream: UpstreamApi, detail = ''): TranslationError {
  const what = detail === '' ? '' : ` (${detail})`;
  return new TranslationError(
    'unsupported_parameter',
    `'${param}'${what} is not supported for this model: it is served through the ${upstream} API, which has no equivalent.`,
    param,
  );
}

/** The value cannot be translated as sent. */
export function invalid(param: string, message: string): TranslationError {
  return new TranslationError('invalid_parameter', message, param);
}
