/** Keys written inline in the gateway config (`auth.apiKeys`). Immutable. */
import type { ApiKeyEntry } from '../../config/schema.ts';
import type { ApiKeyStore, KeyRecord } from './port.ts';
import { recordFromEntry } from './record.ts';

export class StaticKeyStore implements ApiKeyStore {
  readonly inMemory = true;
  readonly #records = new Map<string, KeyRecord>();

  /** Accepts config entries or ready-made records; duplicate ids throw. */
  constructor(entries: readonly (ApiKeyEntry | KeyRecord)[]) {
    for (const e of entries) {
      if (this.#records.has(e.id)) throw new Error(`auth.apiKeys: duplicate key id ${e.id}`);
      this.#records.set(e.id, isRecord(e) ? e : recordFromEntry(e));
    }
  }

  get size(): number {
    return this.#records.size;
  }

  async get(id: string): Promise<KeyRecord | null> {
    return this.#records.get(id) ?? null;
  }

  async close(): Promise<void> {}
}

function isRecord(e: ApiKeyEntry | KeyRecord): e is KeyRecord {
  // Config entries never carry revokedAt (the inline schema is strict).
  return 'revokedAt' in e;
}
