/**
 * What the request pipeline answers for one phase, independent of the wire
 * protocol; src/server translates it into ext_proc or ext_authz messages.
 */

/** Header edits for the request (upstream-bound) or the response (client-bound). */
export interface HeaderEdits {
  readonly set: ReadonlyArray<readonly [name: string, value: string]>;
  readonly remove: readonly string[];
}

export type PhaseResult =
  | {
      readonly kind: 'continue';
      readonly headers?: HeaderEdits;
      /** Replaces the body (or this chunk of it). */
      readonly body?: Buffer;
      /** A header that routing reads changed: make Envoy pick the route again. */
      readonly clearRouteCache?: boolean;
      /** Switch the response body to STREAMED (SSE) from this headers answer. */
      readonly streamResponseBody?: boolean;
    }
  | {
      /** End the request here with this local reply (an error, or a response the gateway owns). */
      readonly kind: 'respond';
      readonly status: number;
      readonly headers: ReadonlyArray<readonly [string, string]>;
      readonly body: Buffer;
      readonly details: string;
    };

export const CONTINUE: PhaseResult = Object.freeze({ kind: 'continue' });
