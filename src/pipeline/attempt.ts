/**
 * The upstream phase of a request with fallbacks: one call per attempt Envoy
 * makes on a member of the target's aggregate cluster (the ext_proc filter in
 * that cluster's upstream filter chain, see envoy/README.md "Upstream
 * ext_proc"). Each attempt rebuilds the request for its own member from the
 * client's body as the downstream phase left it (redacted, capped, in the
 * client's API): the member's model name, its provider's API and path (the
 * translator), and its credential.
 *
 *   request headers  → which member (Envoy's endpoint metadata) and which
 *                      chain (the ticket); note the attempt
 *   request body     → the member's body, path and credential
 *   response headers → note the status (Envoy retries a 429/5xx on the next
 *                      member); mark the response with the attempt
 *
 * The router mutates one header map across attempts: attempt 2 arrives with
 * attempt 1's edits. So every attempt sets or removes every header it owns
 * (path, content length, every provider's credential header) and never relies
 * on what the client sent. Identity, quotas, the data policy and the audit
 * record stay with the downstream phase, which runs once.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../shared/values.ts';
import type { EndpointSpec } from './endpoint.ts';
import { GatewayError } from './errors.ts';
import { ATTEMPT_HEADER, decodeTicket, encodeMark, ENVOY_ATTEMPT_COUNT, FALLBACK_HEADER, type FallbackTicket } from './fallback.ts';
import { CONTINUE, type PhaseResult } from './phase-result.ts';
import type { ApiFamily, AttemptLedger, RouteResolver, Translators, UpstreamCredentials } from './ports.ts';
import type { Deployment } from './snapshot.ts';

/** Request headers as Envoy delivers them (lower-case names). */
type HeaderView = ReadonlyMap<string, string>;

/**
 * Every header any member's credential may travel in: an attempt sets its
 * own and removes the others, so one provider's key never reaches another.
 */
export const CREDENTIAL_HEADER_NAMES = ['authorization', 'x-api-key', 'api-key'] as const;

export interface AttemptDeps {
  readonly families: readonly ApiFamily[];
  /** Formats the refusal of an attempt whose ticket names no family it knows. */
  readonly defaultFamily: ApiFamily;
  readonly routes: RouteResolver;
  readonly translators: Translators;
  readonly credentials: UpstreamCredentials;
  readonly ledger: AttemptLedger;
  readonly log: Logger;
  readonly options: { readonly maxJsonDepth: number; readonly defaultMaxTokens: number };
}

/** One attempt in flight. */
export interface AttemptState {
  readonly requestId: string;
  readonly n: number;
  readonly ticket: FallbackTicket;
  readonly family: ApiFamily;
  readonly endpoint: EndpointSpec;
  readonly member: Deployment;
}

const JSON_HEADERS: ReadonlyArray<readonly [string, string]> = [['content-type', 'application/json']];

export class AttemptProcessor {
  readonly #d: AttemptDeps;

  constructor(deps: AttemptDeps) {
    this.#d = deps;
  }

  /**
   * `memberCluster`: the cluster of the endpoint Envoy picked for this attempt
   * (its `gateway.member` endpoint metadata), null when Envoy sent none.
   */
  begin(headers: HeaderView, memberCluster: string | null): { state: AttemptState | null; result: PhaseResult } {
    const requestId = headers.get('x-request-id') ?? '';
    const raw = headers.get(FALLBACK_HEADER);
    // A target that names an aggregate cluster without a fallback chain (members that take the same request:
    // same API, model name and credential): the downstream phase prepared it whole, every attempt goes as is.
    if (raw === undefined) return { state: null, result: CONTINUE };
    const ticket = decodeTicket(raw);
    const family = ticket === null ? undefined : this.#d.families.find((f) => f.name === ticket.family);
    const endpoint = family?.endpoints.find((e) => e.name === ticket?.endpoint);
    if (ticket === null || family === undefined || endpoint === undefined) {
      // Only the gateway writes the ticket (Envoy strips a client's): one it cannot read is a bug, not a request to pass.
      this.#d.log.error({ requestId, ticket: raw }, 'upstream attempt with an unreadable fallback ticket');
      return {
        state: null,
        result: this.#refuse(this.#d.defaultFamily, memberCluster, 1, new GatewayError('internal_error', 'The gateway could not route this attempt.')),
      };
    }
    const counted = Number(headers.get(ENVOY_ATTEMPT_COUNT));
    const envoyN = Number.isSafeInteger(counted) && counted > 0 ? counted : null;
    const member = this.#member(ticket, memberCluster);
    if (member === null) {
      this.#d.log.warn({ requestId, model: ticket.model, memberCluster }, 'attempt on a member that is not in the chain (snapshot changed?)');
      const err = new GatewayError('upstream_unavailable', `No deployment of '${ticket.model}' is available for this attempt.`);
      return { state: null, result: this.#refuse(family, memberCluster, envoyN ?? 1, err) };
    }
    if (ticket.allowed !== null && !ticket.allowed.includes(member.cluster)) {
      // Envoy failed over to a member the data policy's destination rules do not authorize: this attempt never
      // leaves, and the request ends here with our error (Envoy does not retry the upstream filter's own reply).
      const n = this.#d.ledger.started(requestId, envoyN, member, true);
      this.#d.log.warn(
        { requestId, model: ticket.model, memberCluster, rules: ticket.rules },
        'attempt on a member the destination rules do not authorize: vetoed',
      );
      const err = new GatewayError(
        'authorized_deployment_unavailable',
        `No deployment of '${ticket.model}' that the data policy authorizes for this request is available (destination rules: ${ticket.rules.join(', ')}).`,
      );
      return { state: null, result: this.#refuse(family, memberCluster, n, err) };
    }
    const n = this.#d.ledger.started(requestId, envoyN, member);
    return { state: { requestId, n, ticket, family, endpoint, member }, result: CONTINUE };
  }

  /** The member's request: body, path and credential. */
  body(state: AttemptState, body: Buffer): PhaseResult {
    const { family, endpoint, member, ticket } = state;
    try {
      const req = family.parseRequest(endpoint, body, { maxJsonDepth: this.#d.options.maxJsonDepth });
      const rewritten = req.rewrite(member.upstreamModel, null);
      const translator = this.#d.translators.between(family.name, member.provider);
      const upstream = translator?.request(rewritten, member.upstreamModel, { defaultMaxTokens: ticket.cap ?? this.#d.options.defaultMaxTokens }) ?? null;
      const out = Buffer.from(JSON.stringify(upstream === null ? rewritten : upstream.body), 'utf8');
      const credential = member.credential === null ? [] : this.#d.credentials.headers(member.credential, member.provider);
      const owned = new Set(credential.map(([name]) => name));
      return {
        kind: 'continue',
        body: out,
        headers: {
          set: [
            [':path', upstream?.path ?? endpoint.path],
            ['content-length', String(out.length)],
            ['x-gateway-deployment-model', member.upstreamModel],
            ...(upstream?.headers ?? []),
            ...credential,
          ],
          // Another provider's credential from an earlier attempt must not reach this one.
          remove: CREDENTIAL_HEADER_NAMES.filter((h) => !owned.has(h)),
        },
      };
    } catch (err) {
      return this.#refuse(family, member.cluster, state.n, err);
    }
  }

  /** The member answered: note it, and mark the response (the downstream phase reads the mark). */
  responseHeaders(state: AttemptState, headers: HeaderView): PhaseResult {
    const status = Number(headers.get(':status') ?? '0');
    this.#d.ledger.answered(state.requestId, state.n, Number.isInteger(status) ? status : 0);
    return { kind: 'continue', headers: { set: [[ATTEMPT_HEADER, encodeMark({ n: state.n, cluster: state.member.cluster, error: null })]], remove: [] } };
  }

  #member(ticket: FallbackTicket, cluster: string | null): Deployment | null {
    if (cluster === null) return null;
    const route = this.#d.routes.current().models.get(ticket.model);
    if (route === undefined) return null;
    const fallback = this.#d.routes.forTenant(route, ticket.tenant).targets[ticket.target]?.fallback ?? null;
    return fallback?.chain.find((d) => d.cluster === cluster) ?? null;
  }

  /**
   * The sidecar cannot send this attempt: answer it here, in the client's
   * error envelope, marked so the downstream phase records the code. Envoy
   * does not retry a reply of the upstream filter itself.
   */
  #refuse(family: ApiFamily, cluster: string | null, n: number, err: unknown): PhaseResult {
    if (!(err instanceof GatewayError)) this.#d.log.error({ err: errorMessage(err) }, 'upstream attempt failed inside the sidecar');
    const gw = err instanceof GatewayError ? err : new GatewayError('internal_error', 'The gateway failed while preparing this attempt.');
    const body = family.errorBody(gw);
    return {
      kind: 'respond',
      status: gw.status,
      headers: [...JSON_HEADERS, [ATTEMPT_HEADER, encodeMark({ n, cluster: cluster ?? 'unknown', error: gw.code })], ...Object.entries(gw.headers)],
      body: Buffer.from(JSON.stringify(body)),
      details: `inference_gateway_${gw.code}`,
    };
  }
}
