/**
 * Which translator serves a client of one family from a deployment of a
 * provider. Each provider's file lists its translators (one per client
 * family it can serve); a new provider is one more file and one more line
 * here, and one more name in PROVIDERS.
 */
import type { ClientFamily, Provider, Translator } from './translator.ts';
import { ANTHROPIC_UPSTREAM } from './upstream-anthropic.ts';
import { OPENAI_UPSTREAM } from './upstream-openai.ts';

const TRANSLATORS: readonly Translator[] = [...ANTHROPIC_UPSTREAM, ...OPENAI_UPSTREAM];

const BY_PAIR = new Map<string, Translator>(TRANSLATORS.map((t) => [`${t.client}>${t.provider}`, t]));

/**
 * The translator for a client family and a deployment's provider; null when
 * they speak the same API (nothing to translate). Throws for a pair no file
 * implements: serving it untranslated would send the upstream a body it
 * cannot read.
 */
export function translatorFor(client: ClientFamily, provider: Provider): Translator | null {
  if (client === provider) return null;
  const t = BY_PAIR.get(`${client}>${provider}`);
  if (t === undefined) throw new Error(`no translator serves ${client} clients from ${provider} deployments`);
  return t;
}
