// The Anthropic side of the demo model server: which requests it answers, its
// error envelope, credentials, the models list and the Messages endpoints.
// The request rules are in ./anthropic-request.ts, the reply in
// ./anthropic-reply.ts; the endpoints and headers are listed in ./upstream.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestError, decodePathSegment, headerInt, sendJson, writeStream } from './http.ts';
import { readScript } from './script.ts';
import { readCountTokensRequest, readMessagesRequest } from './anthropic-request.ts';
import { messageEvents, messageJson, planMessage } from './anthropic-reply.ts';
import type { ReplyScript } from './anthropic-reply.ts';
import { isObject } from '../shared/values.ts';

/** OpenAI-only paths: answered in OpenAI's shapes even when an anthropic-version header is present. */
const OPENAI_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/health']);

const LIMIT_CACHE_TOKENS = 100_000_000;
const MODELS_PAGE_DEFAULT = 20;
const MODELS_PAGE_MAX = 1000;

/**
 * Whether a request gets the Anthropic dialect: anything under /v1/messages,
 * and any other path but the OpenAI-only ones when the request carries an
 * anthropic-version header (so GET /v1/models answers in the caller's shape).
 */
export function isAnthropicRequest(path: string, headers: IncomingMessage['headers']): boolean {
  if (path === '/v1/messages' || path.startsWith('/v1/messages/')) return true;
  return headers['anthropic-version'] !== undefined && !OPENAI_PATHS.has(path);
}

/** Anthropic's error `type` for an HTTP status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Anthropic error JSON: {"type":"error","error":{"type","message"}}. */
export function anthropicErrorBody(status: number, message: string): string {
  return JSON.stringify({ type: 'error', error: { type: anthropicErrorType(status), message } });
}

function displayName(id: string): string {
  return id
    .split(/[-_\s]+/)
    .filter((w) => w !== '')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

export interface AnthropicApiOptions {
  modelIds: readonly string[];
  /** Unix seconds: every model's created_at. */
  modelCreated: number;
  /** When set, requests must carry this key: `x-api-key: <key>`, or (without x-api-key) `Authorization: Bearer <key>`. */
  requireKey: string | undefined;
}

export interface AnthropicApi {
  /** An error in Anthropic's envelope (with a request-id header). */
  sendError(res: ServerResponse, status: number, message: string): void;
  /** Why the credentials are refused (a 401 message), or undefined when they pass. */
  authFailure(req: IncomingMessage): string | undefined;
  /** Answer an Anthropic request (any path: unknown ones are a 404). */
  route(req: IncomingMessage, res: ServerResponse, body: unknown, badJson: boolean): Promise<void> | void;
}

export function createAnthropicApi(opts: AnthropicApiOptions): AnthropicApi {
  const createdAt = new Date(opts.modelCreated * 1000).toISOString().replace('.000Z', 'Z');
  const models = opts.modelIds.map((id) => ({ type: 'model', id, display_name: displayName(id), created_at: createdAt }));
  let seq = 0;
  const nextId = (): number => ++seq;
  const requestId = (): Record<string, string> => ({ 'request-id': `req_demo_${nextId()}` });

  function sendError(res: ServerResponse, status: number, message: string): void {
    sendJson(res, status, anthropicErrorBody(status, message), requestId());
  }

  function authFailure(req: IncomingMessage): string | undefined {
    if (opts.requireKey === undefined) return undefined;
    // x-api-key when present; otherwise Authorization: Bearer, which is how
    // the official SDK (1.x) sends an API key.
    const key = req.headers['x-api-key'];
    if (key !== undefined) return key === opts.requireKey ? undefined : 'invalid x-api-key';
    const auth = req.headers['authorization'];
    if (auth === undefined) return 'x-api-key header is required';
    return auth === `Bearer ${opts.requireKey}` ? undefined : 'invalid bearer token';
  }

  function listModels(query: URLSearchParams): string {
    const rawLimit = query.get('limit');
    const limit = rawLimit === null ? MODELS_PAGE_DEFAULT : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MODELS_PAGE_MAX) {
      throw new RequestError(400, `limit: Input should be an integer from 1 to ${MODELS_PAGE_MAX}`, 'limit');
    }
    const indexOf = (name: string): number | undefined => {
      const id = query.get(name);
      if (id === null) return undefined;
      const i = models.findIndex((m) => m.id === id);
      if (i < 0) throw new RequestError(400, `${name}: no model with id ${id}`, name);
      return i;
    };
    const after = indexOf('after_id');
    const before = indexOf('before_id');
    let page;
    let hasMore;
    if (before !== undefined && after === undefined) {
      // Paging backwards: the `limit` models just before before_id.
      page = models.slice(Math.max(0, before - limit), before);
      hasMore = before - page.length > 0;
    } else {
      const start = after === undefined ? 0 : after + 1;
      const end = before ?? models.length;
      page = models.slice(start, Math.max(start, Math.min(end, start + limit)));
      hasMore = start + page.length < end;
    }
    return JSON.stringify({ data: page, has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null });
  }

  function replyScript(req: IncomingMessage): ReplyScript {
    const tool = req.headers['x-demo-tool'];
    return {
      ...readScript(req),
      tool: typeof tool === 'string' && tool.trim() !== '' ? tool.trim() : undefined,
      cacheReadTokens: headerInt(req, 'x-demo-cache-read-tokens', 0, LIMIT_CACHE_TOKENS) ?? 0,
      cacheCreationTokens: headerInt(req, 'x-demo-cache-creation-tokens', 0, LIMIT_CACHE_TOKENS) ?? 0,
    };
  }

  function answer(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, body: unknown, badJson: boolean): Promise<void> | void {
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/v1/models') return sendJson(res, 200, listModels(query), requestId());
    if (method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodePathSegment(path.slice('/v1/models/'.length));
      const model = models.find((m) => m.id === id);
      if (model === undefined) return sendError(res, 404, `model: ${id}`);
      return sendJson(res, 200, JSON.stringify(model), requestId());
    }
    if (method === 'POST' && (path === '/v1/messages' || path === '/v1/messages/count_tokens')) {
      if (badJson || !isObject(body)) {
        return sendError(res, 400, badJson ? 'There was an error parsing the body: invalid JSON' : 'The request body must be a JSON object');
      }
      if (path === '/v1/messages/count_tokens') {
        return sendJson(res, 200, JSON.stringify({ input_tokens: readCountTokensRequest(body) }), requestId());
      }
      const request = readMessagesRequest(body);
      const script = replyScript(req);
      const reply = planMessage(request, script, nextId);
      if (!request.stream) return sendJson(res, 200, messageJson(reply), requestId());
      return writeStream(res, messageEvents(reply, req.headers['x-demo-delta-usage'] === 'cumulative'), script, requestId());
    }
    return sendError(res, 404, `Not Found (${method} ${path})`);
  }

  async function route(req: IncomingMessage, res: ServerResponse, body: unknown, badJson: boolean): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
    try {
      await answer(req, res, path, query, body, badJson);
    } catch (err) {
      if (err instanceof RequestError && !res.headersSent) {
        sendError(res, err.status, err.message);
        return;
      }
      throw err;
    }
  }

  return { sendError, authFailure, route };
}
