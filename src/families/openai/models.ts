/** `/v1/models` and `/v1/models/{model}` in OpenAI's shape, from the routing snapshot. */
import type { ModelRoute, Snapshot } from '../../pipeline/snapshot.ts';

export function modelObjectBody(route: ModelRoute, snapshot: Snapshot): object {
  return { id: route.id, object: 'model', created: Math.floor(snapshot.loadedAt / 1000), owned_by: route.ownedBy };
}

export function modelListBody(routes: readonly ModelRoute[], snapshot: Snapshot): object {
  const created = Math.floor(snapshot.loadedAt / 1000);
  return { object: 'list', data: routes.map((r) => ({ id: r.id, object: 'model', created, owned_by: r.ownedBy })) };
}
