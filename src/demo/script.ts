// The demo model server's per-request scripting headers (documented at the top
// of ./upstream.ts), read once here for every API the server speaks.

import type { IncomingMessage } from 'node:http';
import { headerInt } from './http.ts';
import type { StreamPacing } from './http.ts';

export const DEFAULT_REPLY_TOKENS = 12;

const LIMIT_DELAY_MS = 60_000;
const LIMIT_CHUNK_DELAY_MS = 10_000;
const LIMIT_WORDS = 8192;
const LIMIT_DROP_AFTER = 100_000;

export interface Scripted extends StreamPacing {
  /** Reply length in tokens (x-demo-words). */
  words: number | undefined;
  /** Exact reply pieces (x-demo-reply), each word with its leading space. */
  reply: string[] | undefined;
}

function scriptedReply(value: string | string[] | undefined): string[] | undefined {
  if (typeof value !== 'string' || value === '' || value.length > 8192) return undefined;
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  return text.split(/(?=\s)/);
}

/** x-demo-delay-ms: how long to wait before answering (undefined: no header). */
export function scriptedDelayMs(req: IncomingMessage): number | undefined {
  return headerInt(req, 'x-demo-delay-ms', 0, LIMIT_DELAY_MS);
}

/** x-demo-status: the error status to answer with, or undefined (absent, or outside 400..599). */
export function scriptedStatus(req: IncomingMessage): number | undefined {
  const status = headerInt(req, 'x-demo-status', 0, 999);
  return status !== undefined && status >= 400 && status <= 599 ? status : undefined;
}

/** The reply-shaping headers: chunk delay, word count, drop-after, exact reply. */
export function readScript(req: IncomingMessage): Scripted {
  return {
    chunkDelayMs: headerInt(req, 'x-demo-chunk-delay-ms', 0, LIMIT_CHUNK_DELAY_MS) ?? 0,
    words: headerInt(req, 'x-demo-words', 0, LIMIT_WORDS),
    dropAfter: headerInt(req, 'x-demo-drop-after', 0, LIMIT_DROP_AFTER),
    endAfter: headerInt(req, 'x-demo-end-after', 0, LIMIT_DROP_AFTER),
    reply: scriptedReply(req.headers['x-demo-reply']),
  };
}

export interface ReplyPlan {
  /** Tokens to generate. */
  count: number;
  /** Whether the request's token limit cut the reply short. */
  finishReason: 'stop' | 'length';
}

export function planReply(script: Scripted, maxTokens: number | undefined): ReplyPlan {
  const words = script.words ?? DEFAULT_REPLY_TOKENS;
  if (maxTokens !== undefined && maxTokens < words) return { count: maxTokens, finishReason: 'length' };
  return { count: words, finishReason: 'stop' };
}
