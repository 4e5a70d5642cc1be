/**
 * A buffered JSON response the gateway has parsed: its usage (read by the
 * family), its `model` field, the texts the family says the model wrote, and
 * the body as it stands after the gateway edited it (alias, redaction).
 */
import type { ParsedResponse, TextRef } from '../../pipeline/ports.ts';
import type { ReportedUsage } from '../../pipeline/usage.ts';
import { isObject } from '../../shared/values.ts';

export class JsonResponse implements ParsedResponse {
  readonly #json: Record<string, unknown>;
  readonly #texts: (json: Record<string, unknown>) => TextRef[];
  readonly usage: ReportedUsage | null;

  constructor(json: Record<string, unknown>, usage: ReportedUsage | null, texts: (json: Record<string, unknown>) => TextRef[]) {
    this.#json = json;
    this.usage = usage;
    this.#texts = texts;
  }

  get model(): string | null {
    const m = this.#json['model'];
    return typeof m === 'string' ? m : null;
  }

  setModel(model: string): void {
    this.#json['model'] = model;
  }

  texts(): TextRef[] {
    return this.#texts(this.#json);
  }

  serialize(): Buffer {
    return Buffer.from(JSON.stringify(this.#json));
  }
}

/** The body as a JSON object, or null when it is not one (nothing a family knows how to read). */
export function parseJsonResponse(body: Buffer): Record<string, unknown> | null {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  return isObject(json) ? json : null;
}
