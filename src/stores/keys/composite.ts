/**
 * Several key sources asked in order; the first that knows the id answers.
 * A source that fails stops the lookup (the error propagates → 503): skipping
 * it could let a key it has revoked be found, unrevoked, further down.
 */
import type { ApiKeyStore, KeyRecord } from './port.ts';

export class CompositeKeyStore implements ApiKeyStore {
  readonly #stores: readonly ApiKeyStore[];
  readonly inMemory: boolean;

  constructor(stores: readonly ApiKeyStore[]) {
    this.#stores = [...stores];
    this.inMemory = this.#stores.every((s) => s.inMemory === true);
  }

  onChange(listener: (id: string | null) => void): void {
    for (const s of this.#stores) s.onChange?.(listener);
  }

  async get(id: string): Promise<KeyRecord | null> {
    for (const s of this.#stores) {
      const r = await s.get(id);
      if (r !== null) return r;
    }
    return null;
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.#stores.map((s) => s.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
