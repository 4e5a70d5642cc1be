/**
 * The route stage: which deployment serves a request for a logical model.
 * A tenant with its own deployment of the model goes there; among a route's
 * weighted targets (a canary split) one is picked per request. Failing over
 * to another deployment is Envoy's job (cluster priorities and outlier
 * detection), because only Envoy sees connection failures and host health.
 */
import { allows, type Identity } from '../../pipeline/identity.ts';
import type { RouteResolver } from '../../pipeline/ports.ts';
import type { Deployment, ModelRoute, Snapshot } from '../../pipeline/snapshot.ts';

/** The route a tenant's request takes: its own deployment when the snapshot has one. */
export function routeForTenant(route: ModelRoute, tenant: string): ModelRoute {
  return route.overrides.get(tenant) ?? route;
}

/**
 * The deployment for one request: target i with probability weight_i / total.
 * `random` is uniform in [0, 1); independent per request (no stickiness), so
 * over many requests the split converges to the weights.
 */
export function pickDeployment(route: ModelRoute, random: number = Math.random()): Deployment {
  const sums = route.cumulativeWeights;
  const point = random * (sums[sums.length - 1] ?? 0);
  for (let i = 0; i < sums.length; i++) {
    if (point < (sums[i] ?? 0)) return route.targets[i] as Deployment;
  }
  // Only reached through rounding at random → 1: the last target with weight.
  for (let i = route.targets.length - 1; i >= 0; i--) if ((route.targets[i] as Deployment).weight > 0) return route.targets[i] as Deployment;
  throw new Error(`model ${route.id}: no target has a weight above 0`);
}

/**
 * The same weighted pick among some of the route's targets only (the ones the data policy's destination rules
 * authorize): their weights keep their proportions. A target with weight 0 is drained and never picked here either.
 */
export function pickAmong(route: ModelRoute, among: ReadonlySet<Deployment>, random: number = Math.random()): Deployment {
  let total = 0;
  for (const t of route.targets) if (among.has(t)) total += t.weight;
  if (total <= 0) throw new Error(`model ${route.id}: no authorized target has a weight above 0`);
  let point = random * total;
  let last: Deployment | null = null;
  for (const t of route.targets) {
    if (!among.has(t) || t.weight <= 0) continue;
    if (point < t.weight) return t;
    point -= t.weight;
    last = t;
  }
  // Only reached through rounding at random → 1.
  return last as Deployment;
}

/** The models a caller may use (what `/v1/models` lists). */
export function visibleModels(snapshot: Snapshot, identity: Identity): ModelRoute[] {
  const out: ModelRoute[] = [];
  for (const route of snapshot.models.values()) if (allows(identity.models, route.id)) out.push(route);
  return out;
}

/** Routes over whichever snapshot the source holds now (the control plane swaps it). */
export class SnapshotRoutes implements RouteResolver {
  readonly #source: { current(): Snapshot };
  readonly #random: () => number;

  constructor(source: { current(): Snapshot }, random: () => number = Math.random) {
    this.#source = source;
    this.#random = random;
  }

  current(): Snapshot {
    return this.#source.current();
  }

  forTenant(route: ModelRoute, tenant: string): ModelRoute {
    return routeForTenant(route, tenant);
  }

  pick(route: ModelRoute, among?: ReadonlySet<Deployment>): Deployment {
    return among === undefined ? pickDeployment(route, this.#random()) : pickAmong(route, among, this.#random());
  }

  visibleModels(snapshot: Snapshot, identity: Identity): readonly ModelRoute[] {
    return visibleModels(snapshot, identity);
  }
}
