/** Small helpers over unknown values, shared by every layer (this folder imports nothing of ours). */

/** The message of anything thrown, for logs and error strings (never its stack). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
