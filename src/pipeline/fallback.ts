/**
 * The contract between the two places a request with fallbacks is processed:
 * the downstream ext_proc (once per request: identity, quotas, data policy,
 * the target) and the upstream ext_proc in the target's Envoy aggregate
 * cluster (once per attempt: model name, provider API and credential of that
 * attempt's member). They may run in different sidecar processes, so what the
 * attempt needs travels in a request header (the ticket) that only the
 * gateway can set (Envoy strips every client-sent `x-gateway-*`), and the
 * attempt that answered marks the response it returns.
 */
import type { Endpoint } from './endpoint.ts';

/** Request header: the ticket, set by the downstream phase and read by every attempt. */
export const FALLBACK_HEADER = 'x-gateway-fallback';
/** Response header: which attempt answered (removed before the client sees the response). */
export const ATTEMPT_HEADER = 'x-gateway-attempt';
/** Request header Envoy's router sets on each attempt (virtual host `include_request_attempt_count`). */
export const ENVOY_ATTEMPT_COUNT = 'x-envoy-attempt-count';

/**
 * What an attempt needs to rebuild its request from the client's (already
 * redacted and capped) body: which family and endpoint the client spoke and
 * where the chain is in the routing snapshot. Credentials are never in it.
 */
export interface FallbackTicket {
  readonly family: string;
  readonly endpoint: Endpoint;
  /** The logical model (route id). */
  readonly model: string;
  /** The caller's tenant: a tenant override of the route has its own chains. */
  readonly tenant: string;
  /** Index of the picked target in the route's targets. */
  readonly target: number;
  /** The completion cap the downstream phase applied (an Anthropic upstream requires max_tokens). */
  readonly cap: number | null;
  /**
   * The member clusters the data policy's destination rules authorize (src/pipeline/destinations.ts); an attempt on
   * any other is vetoed. null: no rule applied, every member may be tried.
   */
  readonly allowed: readonly string[] | null;
  /** The destination rules that constrained the request, named in a veto. */
  readonly rules: readonly string[];
}

const TICKET_VERSION = 'v2';

export function encodeTicket(t: FallbackTicket): string {
  const fields = [
    t.family,
    t.endpoint,
    t.model,
    t.tenant,
    String(t.target),
    t.cap === null ? '-' : String(t.cap),
    t.allowed === null ? '*' : t.allowed.join(','),
    t.rules.join(','),
  ];
  return [TICKET_VERSION, ...fields.map(encodeURIComponent)].join(';');
}

/** The ticket, or null when the header is missing or not one this version wrote. */
export function decodeTicket(value: string | undefined): FallbackTicket | null {
  if (value === undefined) return null;
  const parts = value.split(';');
  if (parts.length !== 9 || parts[0] !== TICKET_VERSION) return null;
  let f: string[];
  try {
    f = parts.slice(1).map(decodeURIComponent);
  } catch {
    return null;
  }
  const [family, endpoint, model, tenant, target, cap, allowed, rules] = f as [string, string, string, string, string, string, string, string];
  const index = Number(target);
  const capN = cap === '-' ? null : Number(cap);
  if (!Number.isSafeInteger(index) || index < 0 || (capN !== null && (!Number.isSafeInteger(capN) || capN < 0))) return null;
  const list = (v: string): string[] => (v === '' ? [] : v.split(','));
  return { family, endpoint, model, tenant, target: index, cap: capN, allowed: allowed === '*' ? null : list(allowed), rules: list(rules) };
}

/**
 * The mark on an attempt's response: its number, its member cluster and,
 * when the sidecar refused the attempt itself, the error code (its body is
 * then already in the client's error envelope).
 */
export interface AttemptMark {
  readonly n: number;
  readonly cluster: string;
  readonly error: string | null;
}

export function encodeMark(m: AttemptMark): string {
  return m.error === null ? `${m.n} ${m.cluster}` : `${m.n} ${m.cluster} ${m.error}`;
}

export function decodeMark(value: string | undefined): AttemptMark | null {
  if (value === undefined) return null;
  const m = /^([1-9][0-9]{0,2}) ([A-Za-z0-9._-]{1,128})(?: ([a-z_]{1,64}))?$/.exec(value);
  if (m === null) return null;
  return { n: Number(m[1]), cluster: m[2] as string, error: m[3] ?? null };
}

/** Why an attempt was followed by another one (a label of the fallback counter). */
export type FallbackReason = 'rate_limited' | 'server_error' | 'unreachable' | 'unknown';

export function fallbackReason(status: number | null, seen: boolean): FallbackReason {
  if (!seen) return 'unknown';
  if (status === null) return 'unreachable';
  return status === 429 ? 'rate_limited' : 'server_error';
}
