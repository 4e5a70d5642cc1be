/**
 * The translators as the processor's port (src/pipeline/ports.ts
 * `Translators`): the pair's translator, with every TranslationError turned
 * into the gateway's error — a request the provider's API cannot express is
 * the client's 400 naming the parameter, a response the client's API cannot
 * express is a 502 upstream_response_invalid.
 */
import { GatewayError } from '../../pipeline/errors.ts';
import type { ProviderTranslator, Translators } from '../../pipeline/ports.ts';
import { translatorFor } from './registry.ts';
import { TranslationError } from './translation-error.ts';
import { CLIENT_FAMILIES, PROVIDERS, type ClientFamily, type Provider, type Translator } from './translator.ts';

function gatewayError(err: unknown): unknown {
  if (!(err instanceof TranslationError)) return err;
  return err.toGatewayError() ?? new GatewayError('upstream_response_invalid', err.message);
}

function guarded<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      throw gatewayError(err);
    }
  };
}

function asPort(t: Translator): ProviderTranslator {
  return {
    request: guarded((json, upstreamModel, opts) => t.request(json, upstreamModel, opts)),
    response: guarded((json, clientModel) => t.response(json, clientModel)),
    stream: (opts) => {
      const s = t.stream(opts);
      return {
        push: guarded((chunk: Buffer, end: boolean) => s.push(chunk, end)),
        get usage() {
          return s.usage;
        },
        get contentChars() {
          return s.contentChars;
        },
        get sawContent() {
          return s.sawContent;
        },
        get complete() {
          return s.complete;
        },
      };
    },
    error: (status, body) => t.error(status, body),
  };
}

const isClient = (f: string): f is ClientFamily => (CLIENT_FAMILIES as readonly string[]).includes(f);
const isProvider = (p: string): p is Provider => (PROVIDERS as readonly string[]).includes(p);

const cache = new Map<string, ProviderTranslator | null>();

export const TRANSLATORS: Translators = {
  between(clientFamily: string, provider: string): ProviderTranslator | null {
    const key = `${clientFamily}>${provider}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      if (!isClient(clientFamily) || !isProvider(provider)) throw new Error(`no translation between ${clientFamily} clients and ${provider} deployments`);
      const t = translatorFor(clientFamily, provider);
      hit = t === null ? null : asPort(t);
      cache.set(key, hit);
    }
    return hit;
  },
};
