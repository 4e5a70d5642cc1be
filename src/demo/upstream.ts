// A small, fast, deterministic model server (node:http only) that speaks both
// the OpenAI API and the Anthropic Messages API on the same port.
//
// It stands in for vLLM/TGI (or api.anthropic.com) behind Envoy in the local
// stack, the end-to-end tests and the benchmark. Replies are derived from the
// prompt, token counts follow the rule documented in ./tokens.ts, and tests can
// script behaviour per request with headers:
//
//   x-demo-status: <400..599>      answer that status with an error body in the
//                                  request's dialect (other values are ignored)
//   x-demo-raw-body: html|text|empty  answer outside the API instead: an HTML
//                                  page, plain text or no body, with x-demo-status
//                                  (default 200) and x-demo-retry-after if given
//
// A request for a model named `demo-fail-<400..599>` always gets that status
// (same error bodies): a deployment that is down or rate limited, scripted by
// the routing snapshot rather than by the client, so that one attempt of a
// fallback chain fails and the next succeeds.
//
//   x-demo-delay-ms: <0..60000>    wait before answering (before the headers)
//   x-demo-chunk-delay-ms: <0..10000>  wait between stream chunks (SSE events)
//   x-demo-words: <0..8192>        reply length in tokens (default 12; the
//                                  request's max_tokens still caps it)
//   x-demo-drop-after: <0..100000> streaming only: destroy the socket after
//                                  that many SSE chunks have been written
//   x-demo-end-after: <0..100000>  streaming only: end the response cleanly after
//                                  that many SSE chunks (no finish, no [DONE])
//   x-demo-reply: <percent-encoded text>  chat and messages only: reply with
//                                  exactly this text, one word per stream chunk
//                                  (tests of what the gateway does with
//                                  generated text)
//
// and, on the Anthropic Messages endpoint only (see ./anthropic-reply.ts):
//
//   x-demo-tool: <name>            call this tool (when the request declares
//                                  tools and tool_choice allows it)
//   x-demo-cache-read-tokens: <0..100000000>      usage.cache_read_input_tokens
//   x-demo-cache-creation-tokens: <0..100000000>  usage.cache_creation_input_tokens
//   x-demo-delta-usage: cumulative  streaming: message_delta's usage repeats the
//                                  input and cache counts (the live API's
//                                  newer form) instead of output_tokens only
//
// Out-of-range numbers are clamped into those bounds; non-numbers are ignored.
//
// OpenAI endpoints: GET /v1/models, GET /v1/models/{id}, POST
// /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, and GET
// /health (vLLM/TGI-style liveness, empty 200). Errors in OpenAI's format.
//
// Anthropic endpoints (./anthropic.ts): POST /v1/messages (JSON or SSE),
// POST /v1/messages/count_tokens, and GET /v1/models and GET /v1/models/{id}
// when the request has an anthropic-version header (without it, the OpenAI
// shapes). Anything under /v1/messages, and any path but the OpenAI-only ones
// when anthropic-version is present, answers errors in Anthropic's envelope
// {"type":"error","error":{"type","message"}} with a request-id header; with
// the requireAnthropicKey option, those requests also need that key in
// x-api-key (or Authorization: Bearer), else a 401 authentication_error
// before any scripting applies.
//
// Control endpoints GET/DELETE /__demo/requests are never recorded, never
// scripted. Anything else is a 404 in the request's dialect.

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens, replyPieces } from './tokens.ts';
import { RequestError, decodePathSegment, sendJson, pause, writeStream } from './http.ts';
import { planReply, readScript, scriptedDelayMs, scriptedStatus } from './script.ts';
import type { Scripted } from './script.ts';
import { createAnthropicApi, isAnthropicRequest } from './anthropic.ts';
import { errorMessage } from '../shared/values.ts';
import { isObject } from '../shared/values.ts';

export { DEFAULT_REPLY_TOKENS } from './script.ts';

/** The status a `demo-fail-<400..599>` model always answers with. */
function failingModelStatus(body: unknown): number | undefined {
  const model = isObject(body) ? body.model : undefined;
  const m = typeof model === 'string' ? /^demo-fail-([45][0-9]{2})$/.exec(model) : null;
  return m === null ? undefined : Number(m[1]);
}

export interface RecordedRequest {
  method: string;
  /** Request target as received: the path plus any query string. */
  path: string;
  /** Request headers, names lower-cased (as node:http delivers them). */
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, or undefined when the body was empty or not JSON. */
  body: unknown;
  rawBody: Buffer;
  /** Date.now() when the request body had been fully received. */
  receivedAt: number;
}

export interface DemoUpstream {
  readonly port: number;
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Live list of recorded requests (empty when recording is off). */
  readonly requests: RecordedRequest[];
  clearRequests(): void;
  /** Stop listening and destroy open connections (idempotent). */
  close(): Promise<void>;
}

export interface DemoUpstreamOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Models listed by GET /v1/models; the first is the default model. Default ["demo-model"]. */
  modelIds?: string[];
  /** Record every request (default true; the benchmark turns it off). */
  record?: boolean;
  /**
   * Anthropic requests must carry this key, or get a 401 in Anthropic's error
   * envelope: `x-api-key: <key>` (what the gateway injects), or, when there is
   * no x-api-key, `Authorization: Bearer <key>` (how the official SDK sends an
   * API key). Default: any key, or none, is accepted. The OpenAI endpoints
   * never check credentials.
   */
  requireAnthropicKey?: string;
}

export const DEFAULT_MODEL_IDS: readonly string[] = ['demo-model'];
export const DEFAULT_EMBEDDING_DIMENSIONS = 16;
const MAX_EMBEDDING_DIMENSIONS = 4096;
const MODEL_CREATED = 1_700_000_000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;

type Json = Record<string, unknown>;

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** OpenAI error JSON: {"error":{"message","type","param","code"}}. */
export function openAIErrorBody(status: number, message: string, param: string | null = null, code: string | null = null): string {
  return JSON.stringify({ error: { message, type: errorType(status), param, code } });
}

/** A body outside any API: an HTML error page, plain text, or nothing. */
function sendRaw(res: ServerResponse, status: number, kind: 'html' | 'text' | 'empty', retryAfter: string | string[] | undefined): void {
  const body =
    kind === 'html'
      ? `<html>\n<head><title>${status}</title></head>\n<body><h1>${status} Server Error</h1></body>\n</html>\n`
      : kind === 'text'
        ? `upstream says ${status}\n`
        : '';
  res.writeHead(status, {
    'content-type': kind === 'html' ? 'text/html' : 'text/plain',
    'content-length': Buffer.byteLength(body),
    ...(typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : {}),
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string, param: string | null = null, code: string | null = null): void {
  sendJson(res, status, openAIErrorBody(status, message, param, code));
}

// ---------------------------------------------------------------- request parsing

function modelOf(body: Json, fallback: string): string {
  const m = body['model'];
  if (m === undefined || m === null) return fallback;
  if (typeof m !== 'string') throw new RequestError(400, "'model' must be a string", 'model');
  return m;
}

/** Smallest of the given positive-integer limits present in the body. */
function maxTokensOf(body: Json, names: readonly string[]): number | undefined {
  let limit: number | undefined;
  for (const name of names) {
    const v = body[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new RequestError(400, `'${name}' must be a positive integer`, name);
    }
    if (limit === undefined || v < limit) limit = v;
  }
  return limit;
}

function streamFlags(body: Json): { stream: boolean; includeUsage: boolean } {
  const stream = body['stream'] === true;
  const opts = body['stream_options'];
  return { stream, includeUsage: stream && isObject(opts) && opts['include_usage'] === true };
}

/** Text of a message's content: a string, or the text of its content parts. */
function contentText(content: unknown, param: string): string[] {
  if (typeof content === 'string') return [content];
  if (content === undefined || content === null) return [];
  if (!Array.isArray(content)) throw new RequestError(400, `'${param}' must be a string or an array`, param);
  const out: string[] = [];
  for (const part of content) {
    if (isObject(part) && typeof part['text'] === 'string') out.push(part['text']);
  }
  return out;
}

function chatPrompt(messages: unknown): { promptTokens: number; lastUser: string } {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new RequestError(400, "'messages' must be a non-empty array", 'messages');
  }
  let promptTokens = 0;
  let lastUser: string | undefined;
  let lastAny = '';
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!isObject(m)) throw new RequestError(400, `'messages.${i}' must be an object`, `messages.${i}`);
    const texts = contentText(m['content'], `messages.${i}.content`);
    for (const t of texts) promptTokens += countTokens(t);
    const joined = texts.length === 1 ? (texts[0] ?? '') : texts.join(' ');
    lastAny = joined;
    if (m['role'] === 'user') lastUser = joined;
  }
  return { promptTokens, lastUser: lastUser ?? lastAny };
}

interface PromptInput {
  text: string;
  tokens: number;
}

function isTokenArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x));
}

/** string | string[] | number[] | number[][] -> one entry per prompt/input. */
function promptInputs(v: unknown, param: string): PromptInput[] {
  if (typeof v === 'string') return [{ text: v, tokens: countTokens(v) }];
  const bad = (): RequestError => new RequestError(400, `'${param}' must be a string, an array of strings, or token arrays`, param);
  if (!Array.isArray(v) || v.length === 0) throw bad();
  if (isTokenArray(v)) return [{ text: v.join(' '), tokens: v.length }];
  const out: PromptInput[] = [];
  for (const item of v) {
    if (typeof item === 'string') out.push({ text: item, tokens: countTokens(item) });
    else if (isTokenArray(item)) out.push({ text: item.join(' '), tokens: item.length });
    else throw bad();
  }
  return out;
}

// ---------------------------------------------------------------- response builders

function usageJson(prompt: number, completion: number): string {
  return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}`;
}

function sseEvent(json: string): string {
  return `data: ${json}\n\n`;
}

const SSE_DONE = 'data: [DONE]\n\n';

// ---------------------------------------------------------------- embeddings

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Deterministic unit-length vector for `key`, as little-endian float32 bytes. */
function embeddingBytes(key: string, dims: number): Buffer {
  let state = fnv1a(key) || 1;
  const raw = new Float64Array(dims);
  let sumSq = 0;
  for (let i = 0; i < dims; i++) {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    const v = u * 2 - 1;
    raw[i] = v;
    sumSq += v * v;
  }
  const norm = Math.sqrt(sumSq);
  const buf = Buffer.allocUnsafe(dims * 4);
  for (let i = 0; i < dims; i++) {
    buf.writeFloatLE(norm > 0 ? (raw[i] ?? 0) / norm : i === 0 ? 1 : 0, i * 4);
  }
  return buf;
}

function floatsOf(buf: Buffer): number[] {
  const out = new Array<number>(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

// ---------------------------------------------------------------- server

export async function startDemoUpstream(opts: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const modelIds = opts.modelIds && opts.modelIds.length > 0 ? [...opts.modelIds] : [...DEFAULT_MODEL_IDS];
  const defaultModel = modelIds[0] ?? 'demo-model';
  const record = opts.record ?? true;
  const requests: RecordedRequest[] = [];
  let seq = 0;

  const openAIModel = (id: string): Record<string, unknown> => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'demo' });
  const modelsBody = JSON.stringify({ object: 'list', data: modelIds.map(openAIModel) });
  const anthropic = createAnthropicApi({ modelIds, modelCreated: MODEL_CREATED, requireKey: opts.requireAnthropicKey });

  /** An error in the dialect of the request: Anthropic's envelope or OpenAI's. */
  function sendFailure(req: IncomingMessage, res: ServerResponse, status: number, message: string, code: string | null = null): void {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    if (isAnthropicRequest(q < 0 ? target : target.slice(0, q), req.headers)) anthropic.sendError(res, status, message);
    else sendError(res, status, message, null, code);
  }

  function chatCompletions(res: ServerResponse, body: Json, script: Scripted): Promise<void> | void {
    const model = modelOf(body, defaultModel);
    const { promptTokens, lastUser } = chatPrompt(body['messages']);
    const plan = planReply(script, maxTokensOf(body, ['max_tokens', 'max_completion_tokens']));
    const { stream, includeUsage } = streamFlags(body);
    const pieces = script.reply ?? replyPieces(lastUser, plan.count);
    const id = `chatcmpl-demo-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = usageJson(promptTokens, pieces.length);

    if (!stream) {
      sendJson(
        res,
        200,
        `{"id":"${id}","object":"chat.completion","created":${created},"model":${JSON.stringify(model)},` +
          `"choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(pieces.join(''))},` +
          `"refusal":null},"logprobs":null,"finish_reason":"${plan.finishReason}"}],` +
          `"usage":${usage},"system_fingerprint":null}`,
      );
      return;
    }

    const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":[`;
    const tail = includeUsage ? '],"usage":null}' : ']}';
    const events: string[] = [];
    if (pieces.length === 0) {
      events.push(sseEvent(`${head}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}${tail}`));
    }
    for (let i = 0; i < pieces.length; i++) {
      const role = i === 0 ? '"role":"assistant",' : '';
      events.push(sseEvent(`${head}{"index":0,"delta":{${role}"content":${JSON.stringify(pieces[i])}},"logprobs":null,"finish_reason":null}${tail}`));
    }
    events.push(sseEvent(`${head}{"index":0,"delta":{},"logprobs":null,"finish_reason":"${plan.finishReason}"}${tail}`));
    if (includeUsage) events.push(sseEvent(`${head}],"usage":${usage}}`));
    events.push(SSE_DONE);
    return writeStream(res, events, script);
  }

  function completions(res: ServerResponse, body: Json, script: Scripted): Promise<void> | void {
    const model = modelOf(body, defaultModel);
    const prompts = promptInputs(body['prompt'], 'prompt');
    const plan = planReply(script, maxTokensOf(body, ['max_tokens']));
    const { stream, includeUsage } = streamFlags(body);
    const id = `cmpl-demo-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    let promptTokens = 0;
    let completionTokens = 0;
    const replies: string[][] = [];
    for (const p of prompts) {
      const pieces = replyPieces(p.text, plan.count);
      promptTokens += p.tokens;
      completionTokens += pieces.length;
      replies.push(pieces);
    }
    const usage = usageJson(promptTokens, completionTokens);

    if (!stream) {
      const choices = replies.map(
        (pieces, index) => `{"index":${index},"text":${JSON.stringify(pieces.join(''))},"logprobs":null,"finish_reason":"${plan.finishReason}"}`,
      );
      sendJson(
        res,
        200,
        `{"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},` +
          `"choices":[${choices.join(',')}],"usage":${usage},"system_fingerprint":null}`,
      );
      return;
    }

    const head = `{"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":[`;
    const tail = includeUsage ? '],"usage":null}' : ']}';
    const events: string[] = [];
    replies.forEach((pieces, index) => {
      for (const piece of pieces) {
        events.push(sseEvent(`${head}{"index":${index},"text":${JSON.stringify(piece)},"logprobs":null,"finish_reason":null}${tail}`));
      }
      events.push(sseEvent(`${head}{"index":${index},"text":"","logprobs":null,"finish_reason":"${plan.finishReason}"}${tail}`));
    });
    if (includeUsage) events.push(sseEvent(`${head}],"usage":${usage}}`));
    events.push(SSE_DONE);
    return writeStream(res, events, script);
  }

  function embeddings(res: ServerResponse, body: Json): void {
    const model = modelOf(body, defaultModel);
    const inputs = promptInputs(body['input'], 'input');
    let dims = DEFAULT_EMBEDDING_DIMENSIONS;
    const d = body['dimensions'];
    if (d !== undefined && d !== null) {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_EMBEDDING_DIMENSIONS) {
        throw new RequestError(400, `'dimensions' must be an integer from 1 to ${MAX_EMBEDDING_DIMENSIONS}`, 'dimensions');
      }
      dims = d;
    }
    const format = body['encoding_format'] ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw new RequestError(400, "'encoding_format' must be 'float' or 'base64'", 'encoding_format');
    }
    let promptTokens = 0;
    const data = inputs.map((input, index) => {
      promptTokens += input.tokens;
      const bytes = embeddingBytes(input.text, dims);
      return {
        object: 'embedding',
        index,
        embedding: format === 'base64' ? bytes.toString('base64') : floatsOf(bytes),
      };
    });
    sendJson(res, 200, JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } }));
  }

  function control(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (path === '/__demo/requests') {
      if (req.method === 'GET') {
        sendJson(res, 200, JSON.stringify(requests.map((r) => ({ ...r, rawBody: r.rawBody.toString('base64') }))));
        return;
      }
      if (req.method === 'DELETE') {
        requests.length = 0;
        res.writeHead(204);
        res.end();
        return;
      }
    }
    sendError(res, 404, `Invalid URL (${req.method ?? 'GET'} ${path})`, null, 'unknown_url');
  }

  async function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    if (path.startsWith('/__demo/')) {
      control(req, res, path);
      return;
    }
    const method = req.method ?? 'GET';
    const isAnthropic = isAnthropicRequest(path, req.headers);

    let body: unknown = undefined;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        badJson = true;
      }
    }
    if (record) {
      requests.push({ method, path: target, headers: { ...req.headers }, body, rawBody: raw, receivedAt: Date.now() });
    }
    const denied = isAnthropic ? anthropic.authFailure(req) : undefined;
    if (denied !== undefined) {
      anthropic.sendError(res, 401, denied);
      return;
    }

    const delayMs = scriptedDelayMs(req);
    if (delayMs !== undefined && delayMs > 0 && !(await pause(res, delayMs))) return;
    const status = scriptedStatus(req);
    const rawBody = req.headers['x-demo-raw-body'];
    if (rawBody === 'html' || rawBody === 'text' || rawBody === 'empty') {
      // A server that answers outside its API (a proxy's error page, a crash): not JSON at all.
      sendRaw(res, status ?? 200, rawBody, req.headers['x-demo-retry-after']);
      return;
    }
    if (status !== undefined) {
      sendFailure(req, res, status, `Demo upstream scripted status ${status} (x-demo-status)`, `demo_status_${status}`);
      return;
    }
    // A deployment that always fails (fallback demos and tests script each member by its model name).
    const failing = failingModelStatus(body);
    if (failing !== undefined) {
      sendFailure(req, res, failing, `Demo upstream: model answers ${failing} (demo-fail-${failing})`, `demo_status_${failing}`);
      return;
    }
    if (isAnthropic) return anthropic.route(req, res, body, badJson);

    if (method === 'GET') {
      if (path === '/v1/models') return sendJson(res, 200, modelsBody);
      if (path.startsWith('/v1/models/')) {
        const id = decodePathSegment(path.slice('/v1/models/'.length));
        if (modelIds.includes(id)) return sendJson(res, 200, JSON.stringify(openAIModel(id)));
        return sendError(res, 404, `The model '${id}' does not exist`, 'model', 'model_not_found');
      }
      if (path === '/health') {
        res.writeHead(200, { 'content-length': 0 });
        res.end();
        return;
      }
    } else if (method === 'POST' && (path === '/v1/chat/completions' || path === '/v1/completions' || path === '/v1/embeddings')) {
      if (badJson || !isObject(body)) {
        sendError(
          res,
          400,
          badJson || raw.length === 0
            ? "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
            : 'The request body must be a JSON object.',
          null,
          'invalid_json',
        );
        return;
      }
      const script = readScript(req);
      try {
        if (path === '/v1/chat/completions') return await chatCompletions(res, body, script);
        if (path === '/v1/completions') return await completions(res, body, script);
        return embeddings(res, body);
      } catch (err) {
        if (err instanceof RequestError && !res.headersSent) {
          sendError(res, err.status, err.message, err.param, err.code);
          return;
        }
        throw err;
      }
    }
    sendError(res, 404, `Invalid URL (${method} ${path})`, null, 'unknown_url');
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => {
      if (tooLarge) {
        sendFailure(req, res, 413, `Request body larger than ${MAX_BODY_BYTES} bytes`, 'request_too_large');
        return;
      }
      const raw = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
      handle(req, res, raw).catch((err: unknown) => {
        if (!res.headersSent) {
          sendFailure(req, res, 500, `Demo upstream internal error: ${errorMessage(err)}`);
        } else {
          res.destroy();
        }
      });
    });
    req.on('error', () => {
      res.destroy();
    });
  });
  // Outlive Envoy's upstream idle handling so pooled connections are not
  // closed under it between requests (avoids spurious resets in benchmarks).
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    port,
    url,
    requests,
    clearRequests(): void {
      requests.length = 0;
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------- remote control helpers

/** Fetch the requests recorded by a demo upstream running as its own process. */
export async function fetchRecordedRequests(baseUrl: string): Promise<RecordedRequest[]> {
  const res = await fetch(`${baseUrl}/__demo/requests`);
  if (!res.ok) throw new Error(`GET /__demo/requests: HTTP ${res.status}`);
  const list = (await res.json()) as Array<Omit<RecordedRequest, 'rawBody'> & { rawBody: string }>;
  return list.map((r) => ({ ...r, rawBody: Buffer.from(r.rawBody, 'base64') }));
}

/** Clear the requests recorded by a demo upstream running as its own process. */
export async function clearRecordedRequests(baseUrl: string): Promise<void> {
  const res = await fetch(`${baseUrl}/__demo/requests`, { method: 'DELETE' });
  if (!res.ok) throw new Error(`DELETE /__demo/requests: HTTP ${res.status}`);
}
