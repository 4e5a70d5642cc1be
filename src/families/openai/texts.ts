/**
 * Where the natural-language text is in OpenAI request and response bodies:
 * what the classifier reads and what redaction rewrites. Each TextRef can
 * replace its text in place in the (already parsed, gateway-owned) object.
 */
import type { Endpoint } from '../../pipeline/endpoint.ts';
import type { TextRef } from '../../pipeline/ports.ts';
import { isObject } from '../../shared/values.ts';

export type { TextRef };

type Json = Record<string, unknown>;

function field(holder: Json | unknown[], key: string | number, out: TextRef[]): void {
  const v = (holder as Record<string | number, unknown>)[key];
  if (typeof v === 'string') {
    out.push({
      text: v,
      set: (t) => {
        (holder as Record<string | number, unknown>)[key] = t;
      },
    });
  } else if (Array.isArray(v)) {
    v.forEach((item, i) => {
      if (typeof item === 'string') field(v, i, out);
      else if (isObject(item) && item['type'] === 'text') field(item, 'text', out);
    });
  }
}

/** Every prompt text: chat message contents (strings and text parts), completion prompts, embedding inputs. */
export function requestTexts(endpoint: Endpoint, body: Json): TextRef[] {
  const out: TextRef[] = [];
  if (endpoint === 'chat') {
    const messages = body['messages'];
    if (Array.isArray(messages)) for (const m of messages) if (isObject(m)) field(m, 'content', out);
  } else if (endpoint === 'completions') {
    field(body, 'prompt', out);
  } else if (endpoint === 'embeddings') {
    field(body, 'input', out);
  }
  return out;
}

/** Every generated text of a non-streaming response: chat message contents, completion texts. */
export function responseTexts(body: Json): TextRef[] {
  const out: TextRef[] = [];
  const choices = body['choices'];
  if (!Array.isArray(choices)) return out;
  for (const c of choices) {
    if (!isObject(c)) continue;
    if (isObject(c['message'])) field(c['message'], 'content', out);
    else field(c, 'text', out);
  }
  return out;
}
