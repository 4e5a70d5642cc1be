/**
 * Reading and rewriting Anthropic Messages request bodies: strict JSON and
 * the schema, then what routing, metering and the data policy need.
 */
import type { EndpointSpec } from '../../pipeline/endpoint.ts';
import type { ParsedRequest, TextRef } from '../../pipeline/ports.ts';
import { checkSchema, parseJsonObject } from '../common/json-body.ts';
import { COUNT_TOKENS_SCHEMA, MESSAGES_SCHEMA } from './schemas.ts';
import { requestTexts } from './texts.ts';

/** A validated Messages (or count_tokens) body; the gateway owns `json` (redaction edits it in place). */
export class AnthropicRequest implements ParsedRequest {
  readonly json: Record<string, unknown>;
  readonly model: string;
  readonly stream: boolean;
  /** Anthropic streams always carry usage (message_start, message_delta): nothing to add or strip. */
  readonly clientWantsStreamUsage = true;
  readonly promptChars: number;
  readonly maxTokens: number | null;

  constructor(json: Record<string, unknown>) {
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

  /** The deployment's model name; `max_tokens` (always present here) no higher than the cap. */
  rewrite(upstreamModel: string, maxTokensCap: number | null): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.json, model: upstreamModel };
    if (maxTokensCap !== null && this.maxTokens !== null) out['max_tokens'] = Math.min(this.maxTokens, maxTokensCap);
    return out;
  }
}

export function parseRequestBody(endpoint: EndpointSpec, body: Buffer, maxDepth: number): AnthropicRequest {
  const json = parseJsonObject(body, { maxDepth });
  checkSchema(endpoint.name === 'count_tokens' ? COUNT_TOKENS_SCHEMA : MESSAGES_SCHEMA, json);
  return new AnthropicRequest(json);
}
