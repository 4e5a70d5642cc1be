/**
 * A test-only API family, as small as the seam allows, to prove a second
 * family is a registration and not edits across the processor. Its protocol:
 *   POST /tiny/v0/generate  {"model": "...", "say": "...", "stream"?: true}
 *   buffered answer         {"said": "...", "used": [prompt, completion]}
 *   streamed answer         lines `t <text>` and a final `u <prompt> <completion>`
 *   errors                  {"problem": {"code": "...", "status": 400}}
 */
import type { EndpointSpec } from '../../src/pipeline/endpoint.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import type { ApiFamily, ParsedRequest, ParsedResponse, RedactFn, StreamMeter, StreamRedactor, TextRef } from '../../src/pipeline/ports.ts';
import type { ReportedUsage } from '../../src/pipeline/usage.ts';

export const TINY_GENERATE: EndpointSpec = { name: 'tiny_generate', kind: 'inference', method: 'POST', path: '/tiny/v0/generate', generates: true };
export const TINY_MODELS: EndpointSpec = { name: 'tiny_models', kind: 'model_list', method: 'GET', path: '/tiny/v0/models', generates: false };

class TinyRequest implements ParsedRequest {
  readonly model: string;
  readonly stream: boolean;
  readonly clientWantsStreamUsage = true;
  readonly promptChars: number;
  readonly maxTokens = null;
  say: string;

  get json(): Record<string, unknown> {
    return { model: this.model, say: this.say, stream: this.stream };
  }

  constructor(model: string, say: string, stream: boolean) {
    this.model = model;
    this.say = say;
    this.stream = stream;
    this.promptChars = say.length;
  }
  texts(): TextRef[] {
    return [
      {
        text: this.say,
        where: 'say',
        redactable: true,
        set: (t) => {
          this.say = t;
        },
      },
    ];
  }
  /** The tiny protocol has none of the allowlisted parameters and no system prompt: no transform applies. */
  transform(): null {
    return null;
  }
  rewrite(upstreamModel: string, cap: number | null): Record<string, unknown> {
    return { model: upstreamModel, say: this.say, ...(cap === null ? {} : { limit: cap }) };
  }
}

class TinyMeter implements StreamMeter {
  usage: ReportedUsage | null = null;
  contentChars = 0;
  sawContent = false;
  /** The tiny stream ends with its usage line (`u p c`) or `done`. */
  complete = false;
  #partial = '';
  push(chunk: Buffer, end: boolean): Buffer | null {
    const lines = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = end ? '' : (lines.pop() ?? '');
    for (const line of lines) {
      if (line.startsWith('t ')) {
        this.contentChars += line.length - 2;
        this.sawContent = true;
      } else if (line.startsWith('u ')) {
        const [, p, c] = line.split(' ');
        this.usage = { promptTokens: Number(p), completionTokens: Number(c), cachedPromptTokens: 0 };
        this.complete = true;
      } else if (line === 'done') this.complete = true;
    }
    return null;
  }
}

export const tinyFamily: ApiFamily = {
  name: 'tiny',
  endpoints: [TINY_GENERATE, TINY_MODELS],
  match(method, path) {
    const spec = [TINY_GENERATE, TINY_MODELS].find((e) => e.path === path);
    if (spec === undefined) return null;
    return method === spec.method ? { ok: true, endpoint: spec } : { ok: false, reason: 'method_not_allowed' };
  },
  parseRequest(_endpoint, body) {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new GatewayError('invalid_request_body', 'not JSON');
    }
    const o = json as { model?: unknown; say?: unknown; stream?: unknown };
    if (typeof o.model !== 'string') throw new GatewayError('invalid_request_body', 'model is required', { param: 'model' });
    if (typeof o.say !== 'string') throw new GatewayError('invalid_request_body', 'say is required', { param: 'say' });
    return new TinyRequest(o.model, o.say, o.stream === true);
  },
  parseResponse(_endpoint, body): ParsedResponse | null {
    const o = JSON.parse(body.toString('utf8')) as { said: string; used: [number, number] };
    return {
      usage: { promptTokens: o.used[0], completionTokens: o.used[1], cachedPromptTokens: 0 },
      model: null,
      setModel: () => undefined,
      texts: () => [
        {
          text: o.said,
          where: 'said',
          redactable: true,
          set: (t) => {
            o.said = t;
          },
        },
      ],
      serialize: () => Buffer.from(JSON.stringify(o)),
    };
  },
  isClient: (headers) => headers.get('user-agent') === 'tiny-sdk',
  isStream: (type) => type === 'application/x-tiny-stream',
  streamMeter: () => new TinyMeter(),
  streamRedactor(redact: RedactFn): StreamRedactor {
    return {
      push: (chunk) =>
        Buffer.from(
          chunk
            .toString('utf8')
            .split('\n')
            .map((l) => (l.startsWith('t ') ? `t ${redact(l.slice(2), true).text}` : l))
            .join('\n'),
        ),
    };
  },
  errorBody: (err) => ({ problem: { code: err.code, status: err.status } }),
  isErrorBody: (json) => typeof json === 'object' && json !== null && 'problem' in json,
  modelList: (routes) => ({ models: routes.map((r) => r.id) }),
  modelObject: (r) => ({ model: r.id }),
};
