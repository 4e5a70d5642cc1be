/**
 * W3C trace context. We keep a caller's valid trace id (so traces join up)
 * and start our own span under it; anything malformed starts a new trace.
 */
import { randomBytes } from 'node:crypto';

export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  /** The header value we send upstream. */
  readonly traceparent: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

export function continueTrace(incoming: string | undefined): TraceContext {
  let traceId: string | null = null;
  let flags = '01';
  if (incoming !== undefined) {
    const m = TRACEPARENT.exec(incoming.trim().toLowerCase());
    // Version ff is forbidden; all-zero ids are invalid.
    if (m !== null && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN) {
      traceId = m[2] ?? null;
      flags = m[4] ?? '01';
    }
  }
  traceId ??= randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, flags, traceparent: `00-${traceId}-${spanId}-${flags}` };
}
