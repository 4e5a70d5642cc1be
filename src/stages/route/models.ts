/** `/v1/models`: the gateway answers it from the snapshot, filtered to what the caller may use. */
import type { Identity } from '../../pipeline/context.ts';
import type { ModelRoute, Snapshot } from '../../control/snapshot.ts';

export function visibleModels(snapshot: Snapshot, identity: Identity): ModelRoute[] {
  const out: ModelRoute[] = [];
  for (const route of snapshot.models.values()) {
    if (identity.models === '*' || identity.models.has(route.id)) out.push(route);
  }
  return out;
}

export function modelObjectBody(route: ModelRoute, snapshot: Snapshot): object {
  return { id: route.id, object: 'model', created: Math.floor(snapshot.loadedAt / 1000), owned_by: route.ownedBy };
}

export function modelListBody(routes: readonly ModelRoute[], snapshot?: Snapshot): object {
  const created = Math.floor((snapshot?.loadedAt ?? Date.now()) / 1000);
  return { object: 'list', data: routes.map((r) => ({ id: r.id, object: 'model', created, owned_by: r.ownedBy })) };
}
