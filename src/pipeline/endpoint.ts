/**
 * Endpoints: the logical operations the gateway serves, named by the API
 * family that owns them (`chat`, `messages`, …). A name means one operation:
 * families share a name only for the same one (the model catalogue);
 * identities, policy rules, quota rules and routing snapshots refer to
 * endpoints by these names, never by path.
 */

/** An endpoint name as declared by its API family (see src/families/endpoints.ts for the catalogue). */
export type Endpoint = string;

/**
 * What the gateway does with a request to an endpoint:
 * - `inference`: a JSON body naming a model, routed to a deployment, metered;
 * - `model_list` / `model_get`: answered by the gateway from the routing snapshot.
 */
export type EndpointKind = 'inference' | 'model_list' | 'model_get';

export interface EndpointSpec {
  readonly name: Endpoint;
  readonly kind: EndpointKind;
  readonly method: 'GET' | 'POST';
  /** The path clients call, for messages (`/v1/chat/completions`, `/v1/models/{model}`). */
  readonly path: string;
  /** The response carries generated tokens (false for embeddings: no completion is reserved or capped). */
  readonly generates: boolean;
}

export type EndpointMatch =
  | { readonly ok: true; readonly endpoint: EndpointSpec; readonly modelId?: string }
  | { readonly ok: false; readonly reason: 'unknown_url' | 'method_not_allowed' };
