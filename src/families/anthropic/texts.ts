/**
 * Where the natural-language text is in Anthropic request and response
 * bodies: what the classifier reads and redaction rewrites. Each TextRef
 * replaces its text in place in the (gateway-owned) parsed object.
 */
import type { TextRef } from '../../pipeline/ports.ts';
import { isObject } from '../../shared/values.ts';

type Json = Record<string, unknown>;

function ref(holder: Json, key: string, out: TextRef[]): void {
  const v = holder[key];
  if (typeof v === 'string') {
    out.push({
      text: v,
      set: (t) => {
        holder[key] = t;
      },
    });
  }
}

/** Text blocks' `text`, and the text inside tool results (a string, or text blocks). */
function blocks(list: unknown[], out: TextRef[]): void {
  for (const b of list) {
    if (!isObject(b)) continue;
    if (b['type'] === 'text') ref(b, 'text', out);
    else if (b['type'] === 'tool_result') {
      const content = b['content'];
      if (typeof content === 'string') ref(b, 'content', out);
      else if (Array.isArray(content)) blocks(content, out);
    }
  }
}

/** `system`, and every message's text (string content, text blocks, tool results). */
export function requestTexts(body: Json): TextRef[] {
  const out: TextRef[] = [];
  if (typeof body['system'] === 'string') ref(body, 'system', out);
  else if (Array.isArray(body['system'])) blocks(body['system'], out);
  const messages = body['messages'];
  if (Array.isArray(messages)) {
    for (const m of messages) {
      if (!isObject(m)) continue;
      if (typeof m['content'] === 'string') ref(m, 'content', out);
      else if (Array.isArray(m['content'])) blocks(m['content'], out);
    }
  }
  return out;
}

/** A message response's text blocks. */
export function responseTexts(body: Json): TextRef[] {
  const out: TextRef[] = [];
  if (Array.isArray(body['content'])) blocks(body['content'], out);
  return out;
}
