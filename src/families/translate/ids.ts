/** Identifiers one API accepts that the other may not. */
import { createHash } from 'node:crypto';

const ID_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') ID_CHAR[c.charCodeAt(0)] = 1;

/**
 * A tool call id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`): other
 * characters become `_`. The same id always maps to the same result, so a
 * tool_use and the tool_result that answers it still match.
 */
export function anthropicToolId(id: string): string {
  if (id.length === 0) return 'toolu_';
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 128 || ID_CHAR[c] !== 1) return id.replace(/[^a-zA-Z0-9_-]/g, '_');
  }
  return id;
}

/** A stable id for a body that came without one: the prefix and a digest of what identifies it. */
export function derivedId(prefix: string, seed: string): string {
  return prefix + createHash('sha256').update(seed).digest('hex').slice(0, 24);
}
