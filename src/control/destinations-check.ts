/**
 * Config safety for destination rules (docs/content-policy.md "Checks"):
 * a rule that no deployment of a model it applies to can satisfy refuses
 * every such request (403 no_authorized_deployment), and a new snapshot that
 * takes away the last deployment a rule allowed moves that traffic to
 * nowhere. Both are found before any request is: by `config validate`, at
 * startup, and whenever a snapshot is offered (src/control/accept.ts) —
 * reported as warnings, or refused when `policy.destinationCheck` is
 * `refuse`.
 */
import { authorizeRoute, type DestinationRule } from '../pipeline/destinations.ts';
import type { ModelRoute, Snapshot } from '../pipeline/snapshot.ts';

export interface DestinationCheck {
  readonly rules: readonly DestinationRule[];
  readonly mode: 'warn' | 'refuse';
}

/** Whether the rule can apply to requests for the model (its model and endpoint filters). */
function appliesTo(rule: DestinationRule, route: ModelRoute): boolean {
  const m = rule.match;
  return (m.models === undefined || m.models.includes(route.id)) && (m.endpoints === undefined || m.endpoints.some((e) => route.endpoints.has(e)));
}

/** Whether some route of the model (its own, or a tenant's override) has a target the rule authorizes. */
function satisfiable(rule: DestinationRule, route: ModelRoute): boolean {
  for (const r of [route, ...route.overrides.values()]) if (authorizeRoute(r, [rule]).targets.size > 0) return true;
  return false;
}

/** (rule, model) pairs no deployment can serve, as messages naming both. */
export function unsatisfiable(rules: readonly DestinationRule[], snapshot: Snapshot): string[] {
  const out: string[] = [];
  for (const route of snapshot.models.values())
    for (const rule of rules)
      if (appliesTo(rule, route) && !satisfiable(rule, route))
        out.push(`policy.destinations "${rule.name}": no deployment of model "${route.id}" satisfies it; the requests it applies to will be refused`);
  return out;
}

/** (rule, model) pairs the current snapshot can serve and the next one cannot. */
export function lostDestinations(rules: readonly DestinationRule[], current: Snapshot, next: Snapshot): string[] {
  const out: string[] = [];
  for (const route of next.models.values()) {
    const before = current.models.get(route.id);
    if (before === undefined) continue;
    for (const rule of rules)
      if (appliesTo(rule, route) && satisfiable(rule, before) && !satisfiable(rule, route))
        out.push(
          `snapshot ${next.version} leaves model "${route.id}" with no deployment that policy.destinations "${rule.name}" authorizes (snapshot ${current.version} had one): that traffic would be refused`,
        );
  }
  return out;
}

/** What to say about a snapshot about to be used (`current` null: the first one), and whether to refuse it. */
export function reviewSnapshot(check: DestinationCheck, current: Snapshot | null, next: Snapshot): { problems: string[]; refuse: boolean } {
  if (check.rules.length === 0) return { problems: [], refuse: false };
  const problems = current === null ? unsatisfiable(check.rules, next) : lostDestinations(check.rules, current, next);
  return { problems, refuse: check.mode === 'refuse' && problems.length > 0 };
}
