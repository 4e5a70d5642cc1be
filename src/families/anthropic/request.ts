/**
 * Reading and rewriting Anthropic Messages request bodies: strict JSON and
 * the schema, then what routing, metering and the data policy need.
 */
import type { EndpointSpec } from '../../pipeline/endpoint.ts';
import type { AppliedTransforms } from '../../pipeline/context.ts';
import type { ParsedRequest, TextRef } from '../../pipeline/ports.ts';
import type { RequestTransforms } from '../../pipeline/snapshot.ts';
import { applyTransforms, paramFields, prefixedSystem, type SystemPrefixer } from '../common/transforms.ts';
import { checkSchema, parseJsonObject } from '../common/json-body.ts';
import { COUNT_TOKENS_SCHEMA, MESSAGES_SCHEMA } from './schemas.ts';
import { requestTexts } from './texts.ts';

/** A validated Messages (or count_tokens) body; the gateway owns `json` (redaction edits it in place). */
export class AnthropicRequest implements ParsedRequest {
  readonly endpoint: string;
  readonly json: Record<string, unknown>;
  readonly model: string;
  readonly stream: boolean;
  /** Anthropic streams always carry usage (message_start, message_delta): nothing to add or strip. */
  readonly clientWantsStreamUsage = true;
  readonly promptChars: number;
  readonly maxTokens: number | null;

  constructor(endpoint: string, json: Record<string, unknown>) {
    this.endpoint = endpoint;
    this.json = json;
    this.model = json['model'] as string;
    this.stream = json['stream'] === true;
    this.maxTokens = typeof json['max_tokens'] === 'number' ? json['max_tokens'] : null;
    let chars = 0;
    for (const t of requestTexts(json)) chars += t.text.length;
    this.promptChars = chars;
  }

  texts(): TextRef[] {
    return requestTexts(this.json);
  }

  /**
   * Messages: parameters (`max_tokens` is required by the API, so only a forced one can apply) and the prefix in
   * `system`. count_tokens: the prefix only, so the count includes what messages will send.
   */
  transform(t: RequestTransforms): { readonly json: Record<string, unknown>; readonly applied: AppliedTransforms } | null {
    return applyTransforms(this.json, t, this.endpoint === 'messages' ? MESSAGES_FIELDS : {}, prefixSystem);
  }

  /** The deployment's model name; `max_tokens` (always present here) no higher than the cap. */
  rewrite(upstreamModel: string, maxTokensCap: number | null): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.json, model: upstreamModel };
    if (maxTokensCap !== null && this.maxTokens !== null) out['max_tokens'] = Math.min(this.maxTokens, maxTokensCap);
    return out;
  }
}

const MESSAGES_FIELDS = paramFields('messages');

const prefixSystem: SystemPrefixer = (out, prefix) => {
  out['system'] = prefixedSystem(out['system'], prefix);
};

export function parseRequestBody(endpoint: EndpointSpec, body: Buffer, maxDepth: number): AnthropicRequest {
  const json = parseJsonObject(body, { maxDepth });
  checkSchema(endpoint.name === 'count_tokens' ? COUNT_TOKENS_SCHEMA : MESSAGES_SCHEMA, json);
  return new AnthropicRequest(endpoint.name, json);
}
