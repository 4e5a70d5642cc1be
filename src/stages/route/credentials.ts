/**
 * Upstream credentials: a deployment that needs its own API key (a hosted
 * provider) names a credential; the sidecar reads it from a file of that name
 * in `routing.credentialsDir` (a mounted Kubernetes Secret) and injects it.
 * Clients never see or send it (their `authorization` is removed first).
 * Files are re-read when they change (Secret rotation), at most once a second.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../../pipeline/errors.ts';
import { BoundedCache } from '../../shared/bounded-cache.ts';
import type { UpstreamCredentials as UpstreamCredentialsPort } from '../../pipeline/ports.ts';

interface Cached {
  readonly value: string;
  readonly stamp: string;
  checkedAt: number;
}

export class UpstreamCredentials implements UpstreamCredentialsPort {
  readonly #dir: string | null;
  /** By credential name; bounded although a snapshot names few credentials, because names come from snapshots over time. */
  readonly #cache = new BoundedCache<string, Cached>(1024);
  readonly #now: () => number;

  constructor(dir: string | null, now: () => number = Date.now) {
    this.#dir = dir;
    this.#now = now;
  }

  /** The headers to send upstream for this credential, in the provider's style. Never logged. */
  headers(name: string, provider: string): ReadonlyArray<readonly [string, string]> {
    const value = this.#value(name);
    // Anthropic's API reads the key from x-api-key; OpenAI-compatible servers from a bearer token.
    return provider === 'anthropic' ? [['x-api-key', value]] : [['authorization', `Bearer ${value}`]];
  }

  #value(name: string): string {
    const unavailable = (): GatewayError =>
      new GatewayError('upstream_credential_unavailable', `The credential for this deployment (${name}) is not available.`);
    if (this.#dir === null) throw unavailable();
    const now = this.#now();
    const cached = this.#cache.get(name, now);
    if (cached !== undefined && now - cached.checkedAt < 1000) return cached.value;
    const file = join(this.#dir, name);
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      throw unavailable();
    }
    if (cached !== undefined && cached.stamp === stamp) {
      cached.checkedAt = now;
      return cached.value;
    }
    const value = readFileSync(file, 'utf8').trim();
    if (value === '' || /[\r\n\0]/.test(value)) throw unavailable();
    this.#cache.set(name, { value, stamp, checkedAt: now });
    return value;
  }
}
