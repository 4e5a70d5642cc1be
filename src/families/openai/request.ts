/**
 * Reading and rewriting OpenAI request bodies. Only what routing and metering
 * need is interpreted here; full schema validation is validate.ts.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { AppliedTransforms } from '../../pipeline/context.ts';
import type { ParsedRequest, TextRef } from '../../pipeline/ports.ts';
import type { RequestTransforms } from '../../pipeline/snapshot.ts';
import { isObject } from '../../shared/values.ts';
import { applyTransforms, paramFields, prefixedSystem, type ParamFields, type SystemPrefixer } from '../common/transforms.ts';
import { requestTexts } from './texts.ts';
import { validateRequest } from './validate.ts';

/** A validated OpenAI request body; the gateway owns `json` (redaction edits it in place). */
export class OpenAIRequest implements ParsedRequest {
  readonly endpoint: Endpoint;
  readonly json: Record<string, unknown>;
  readonly model: string;
  readonly stream: boolean;
  /** `stream_options.include_usage` as the client sent it. */
  readonly clientWantsStreamUsage: boolean;
  readonly promptChars: number;
  /** The completion allowance the client set (`max_completion_tokens` or `max_tokens`), if any. */
  readonly maxTokens: number | null;

  constructor(
    endpoint: Endpoint,
    json: Record<string, unknown>,
    fields: Pick<OpenAIRequest, 'model' | 'stream' | 'clientWantsStreamUsage' | 'promptChars' | 'maxTokens'>,
  ) {
    this.endpoint = endpoint;
    this.json = json;
    this.model = fields.model;
    this.stream = fields.stream;
    this.clientWantsStreamUsage = fields.clientWantsStreamUsage;
    this.promptChars = fields.promptChars;
    this.maxTokens = fields.maxTokens;
  }

  texts(): TextRef[] {
    return requestTexts(this.endpoint, this.json);
  }

  /**
   * Chat: parameters, and the prefix in a first system (or developer) message, one put first when there is none.
   * Completions: parameters only; a raw prompt (possibly token ids) has no system prompt to prefix, and text put
   * before it would change what the client asked to complete. Embeddings: nothing applies.
   */
  transform(t: RequestTransforms): { readonly json: Record<string, unknown>; readonly applied: AppliedTransforms } | null {
    const fields = FIELDS[this.endpoint];
    if (fields === undefined) return null;
    return applyTransforms(this.json, t, fields, this.endpoint === 'chat' ? prefixChat : null);
  }

  rewrite(upstreamModel: string, maxTokensCap: number | null): Record<string, unknown> {
    return rewriteRequestBody(this, upstreamModel, this.endpoint === 'embeddings' ? null : maxTokensCap);
  }
}

/** The completion allowance in chat is whichever of the two fields the client sent (max_tokens when neither). */
const FIELDS: Partial<Record<Endpoint, ParamFields>> = {
  chat: paramFields('chat', { max_tokens: ['max_tokens', 'max_completion_tokens'] }),
  completions: paramFields('completions'),
};

const prefixChat: SystemPrefixer = (out, prefix) => {
  const messages = Array.isArray(out['messages']) ? (out['messages'] as unknown[]) : [];
  const first = messages[0];
  out['messages'] =
    isObject(first) && (first['role'] === 'system' || first['role'] === 'developer')
      ? [{ ...first, content: prefixedSystem(first['content'], prefix) }, ...messages.slice(1)]
      : [{ role: 'system', content: prefix }, ...messages];
};

function invalid(message: string, param: string | null = null): GatewayError {
  return new GatewayError('invalid_request_body', message, { param });
}

/**
 * Hostile-input-safe parsing and the endpoint's schema (validate.ts), then
 * the few fields routing and metering need.
 */
export function parseRequestBody(endpoint: Endpoint, body: Buffer, maxDepth = 32): OpenAIRequest {
  if (body.length === 0) throw invalid('The request body is empty; a JSON object is required.');
  let json: unknown;
  if (endpoint === 'chat' || endpoint === 'completions' || endpoint === 'embeddings') {
    json = validateRequest(endpoint, body, { maxDepth });
  } else {
    throw invalid(`${endpoint} takes no request body.`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid('The request body must be a JSON object.');
  }
  const obj = json as Record<string, unknown>;
  const model = obj['model'];
  if (typeof model !== 'string' || model === '') throw invalid('`model` is required and must be a string.', 'model');
  const stream = obj['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw invalid('`stream` must be a boolean.', 'stream');
  const streaming = stream === true && endpoint !== 'embeddings';
  const opts = obj['stream_options'];
  let wantsUsage = false;
  if (opts !== undefined && opts !== null) {
    if (typeof opts !== 'object' || Array.isArray(opts)) throw invalid('`stream_options` must be an object.', 'stream_options');
    wantsUsage = (opts as Record<string, unknown>)['include_usage'] === true;
  }
  return new OpenAIRequest(endpoint, obj, {
    model,
    stream: streaming,
    clientWantsStreamUsage: wantsUsage,
    promptChars: promptChars(endpoint, obj),
    maxTokens: maxTokens(obj),
  });
}

/**
 * The body sent upstream: the deployment's model name, and for streams
 * `stream_options.include_usage` so the server counts tokens for us.
 */
export function rewriteRequestBody(req: OpenAIRequest, upstreamModel: string, capMaxTokens: number | null = null): Record<string, unknown> {
  const out: Record<string, unknown> = { ...req.json, model: upstreamModel };
  if (capMaxTokens !== null) {
    // Whichever field the client used (newer servers read max_completion_tokens, older ones max_tokens).
    const field = req.json['max_completion_tokens'] !== undefined ? 'max_completion_tokens' : 'max_tokens';
    out[field] = Math.min(req.maxTokens ?? capMaxTokens, capMaxTokens);
  }
  if (req.stream && !req.clientWantsStreamUsage) {
    const prev = req.json['stream_options'];
    out['stream_options'] = { ...(typeof prev === 'object' && prev !== null ? prev : {}), include_usage: true };
  }
  return out;
}

function maxTokens(obj: Record<string, unknown>): number | null {
  for (const name of ['max_completion_tokens', 'max_tokens']) {
    const v = obj[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw invalid(`\`${name}\` must be a positive integer.`, name);
    return v;
  }
  return null;
}

function textChars(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) {
      if (typeof v === 'string') n += v.length;
      else if (typeof v === 'object' && v !== null) {
        const text = (v as Record<string, unknown>)['text'];
        if (typeof text === 'string') n += text.length;
      }
    }
    return n;
  }
  return 0;
}

function promptChars(endpoint: Endpoint, obj: Record<string, unknown>): number {
  switch (endpoint) {
    case 'chat': {
      const messages = obj['messages'];
      if (!Array.isArray(messages)) return 0;
      let n = 0;
      for (const m of messages) {
        if (typeof m === 'object' && m !== null) n += textChars((m as Record<string, unknown>)['content']);
      }
      return n;
    }
    case 'completions':
      return textChars(obj['prompt']);
    case 'embeddings':
      return textChars(obj['input']);
    default:
      return 0;
  }
}
