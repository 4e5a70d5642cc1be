/**
 * What the processor needs to serve a client of one API family from a
 * deployment (a provider) that speaks another: the request, the buffered
 * response, the stream and the error body, each translated. One Translator
 * per (client family, provider) pair; see registry.ts.
 */
import type { ReportedUsage } from '../../pipeline/usage.ts';
import type { JsonObject } from './openai-types.ts';

/** The APIs a client may speak (the family whose paths it called). */
export const CLIENT_FAMILIES = ['openai', 'anthropic'] as const;
export type ClientFamily = (typeof CLIENT_FAMILIES)[number];

/** The APIs a deployment may speak. A new provider (Bedrock, Vertex, Gemini…) is one more name here and one more file (see registry.ts). */
export const PROVIDERS = ['openai', 'anthropic'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Re-frames an upstream stream for the client, chunk by chunk (any split of the bytes). */
export interface StreamTranslator {
  /** The bytes to send to the client now (possibly empty). */
  push(chunk: Buffer, endOfStream: boolean): Buffer;
  /** The usage the upstream reported (prompt tokens include cached ones), or null if none came. */
  readonly usage: ReportedUsage | null;
  /** Characters of generated text (and tool arguments) seen, for an estimate when no usage came. */
  readonly contentChars: number;
  readonly sawContent: boolean;
  /** The provider stream reached its own end marker. */
  readonly complete: boolean;
}

export interface TranslateRequestOptions {
  /** max_tokens for an upstream that requires one (Anthropic) when the client set none. */
  readonly defaultMaxTokens: number;
}

export interface TranslateStreamOptions {
  /** The model name the client asked for (its alias), in every chunk. */
  readonly clientModel: string;
  /** The client asked for usage in its stream (OpenAI's stream_options.include_usage). */
  readonly includeUsage: boolean;
  /** `created` for OpenAI chunks (epoch seconds); now by default. */
  readonly created?: number;
}

export interface UpstreamRequest {
  readonly body: object;
  /** The upstream path (`/v1/messages`, `/v1/chat/completions`; a provider may put the model in it). */
  readonly path: string;
  /** Headers the upstream's API requires (e.g. `anthropic-version`); the credential is the deployment's own, not here. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Client headers of the other API that this upstream has no use for (e.g. an Anthropic client's `anthropic-version`). */
  readonly removeHeaders: readonly string[];
}

export interface Translator {
  readonly client: ClientFamily;
  readonly provider: Provider;
  /** The client's validated request as the upstream's request. Throws TranslationError (400). */
  request(json: JsonObject, upstreamModel: string, opts: TranslateRequestOptions): UpstreamRequest;
  /** A successful buffered upstream response as the client's body. Throws TranslationError (502). */
  response(json: object, clientModel: string): object;
  /** A translator for a successful upstream stream. */
  stream(opts: TranslateStreamOptions): StreamTranslator;
  /** An upstream error body (parsed JSON, text or bytes) in the client's error envelope; the status is kept. */
  error(status: number, body: unknown): object;
}
