/**
 * The routing snapshot of a desired state (the format of
 * src/control/snapshot.ts): every model with at least one deployment of
 * weight above 0, its targets one per (cluster, upstream model) pair. Several
 * deployments on one cluster and model are endpoints of one Envoy cluster
 * (see backends.ts): they make one target whose weight is the sum of their
 * priority-0 weights, and whose provider, credential, price and labels come
 * from the first of them (by priority, then id), and so does its `fallback`
 * chain (the deployment's aggregate cluster, backends.ts). Every quota plan goes in as
 * written (`plans[]`): the sidecars look a key's tier up there before their
 * own config's plans.
 */
import { describeIssues } from '../config/errors.ts';
import { SnapshotSchema, signedContent } from '../control/snapshot.ts';
import { signText, type SigningKey } from '../crypto/signing.ts';
import { stringify } from 'yaml';
import { fieldProblems, type FieldProblem } from './errors.ts';
import { fallbackClusterName } from './backends.ts';
import type { DeploymentSpec } from './resources.ts';
import type { DesiredState, Stored } from './store.ts';

export interface SnapshotDoc {
  version: string;
  issuedAt?: string;
  signature?: { kid: string; sig: string };
  models: Array<Record<string, unknown>>;
  plans?: Array<Record<string, unknown>>;
}

export function snapshotVersion(revision: number): string {
  return `cp-${revision}`;
}

/** A deployment as a snapshot target (or fallback member) names it. */
function deploymentFields(d: Stored<DeploymentSpec>): Record<string, unknown> {
  const s = d.spec;
  return {
    id: d.id,
    cluster: s.cluster,
    model: s.upstreamModel,
    ...(s.trust === undefined ? {} : { trust: s.trust }),
    provider: s.provider,
    ...(s.credential === undefined ? {} : { credential: s.credential }),
    ...(s.price === undefined ? {} : { price: s.price }),
    labels: {
      ...s.labels,
      deployment: d.id
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '-')
        .slice(0, 128),
    },
  };
}

export function buildSnapshot(state: DesiredState, ownedBy: string): SnapshotDoc {
  const models: Array<Record<string, unknown>> = [];
  const byId = new Map(state.deployments.map((d) => [d.id, d]));
  for (const m of state.models) {
    const deps = state.deployments
      .filter((d) => d.spec.model === m.id)
      .sort((a, b) => a.spec.priority - b.spec.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const targets = new Map<string, Record<string, unknown> & { weight: number }>();
    for (const d of deps) {
      const s = d.spec;
      const key = JSON.stringify([s.cluster, s.upstreamModel]);
      const w = s.priority === 0 ? s.weight : 0;
      const t = targets.get(key);
      if (t !== undefined) {
        t.weight += w;
        continue;
      }
      const chain = s.fallback?.map((id) => byId.get(id));
      // Envoy may send the target's requests to any endpoint of its cluster (other priorities, other deployments on
      // it): the trust of each of those is stated too, so a destination rule must hold for all of them.
      const others = state.deployments.filter((o) => o.id !== d.id && o.spec.cluster === s.cluster).sort((a, b) => (a.id < b.id ? -1 : 1));
      targets.set(key, {
        ...deploymentFields(d),
        ...(others.length === 0 ? {} : { priorities: others.map((o) => o.spec.trust ?? {}) }),
        weight: w,
        // Through the deployment's aggregate cluster (fallbacksOf); a chain naming a missing deployment is refused by snapshotProblems.
        ...(chain === undefined || chain.some((x) => x === undefined)
          ? {}
          : { fallback: { cluster: fallbackClusterName(d.id), to: chain.map((x) => deploymentFields(x as Stored<DeploymentSpec>)) } }),
      });
    }
    const list = [...targets.values()];
    if (!list.some((t) => t.weight > 0)) continue; // nothing to route to: not in the snapshot
    models.push({
      id: m.id,
      endpoints: m.spec.endpoints,
      ownedBy: m.spec.ownedBy ?? ownedBy,
      responseModel: m.spec.responseModel,
      ...(m.spec.transforms === undefined ? {} : { transforms: m.spec.transforms }),
      targets: list,
    });
  }
  const plans = state.plans.map((p) => p.spec);
  return { version: snapshotVersion(state.revision), models, ...(plans.length === 0 ? {} : { plans }) };
}

/** Why sidecars would refuse this state's snapshot (fields named after the models), or null. */
export function snapshotProblems(state: DesiredState, ownedBy: string): FieldProblem[] | null {
  const ids = new Set(state.deployments.map((d) => d.id));
  const missing = state.deployments.flatMap((d) =>
    (d.spec.fallback ?? []).flatMap((id, i) =>
      ids.has(id) && id !== d.id
        ? []
        : [{ field: `deployments[${d.id}].fallback[${i}]`, message: id === d.id ? 'must not be the deployment itself' : `no deployment "${id}"` }],
    ),
  );
  if (missing.length > 0) return missing;
  const doc = buildSnapshot(state, ownedBy);
  if (doc.models.length === 0) return null; // nothing to publish yet; not an error
  const parsed = SnapshotSchema.safeParse(doc);
  if (parsed.success) return null;
  return fieldProblems(describeIssues(parsed.error)).map((p) => ({
    field: p.field
      .replace(/^models\[(\d+)\]/, (all, i: string) => `models[${String(doc.models[Number(i)]?.['id'])}]`)
      .replace(/^plans\[(\d+)\]/, (all, i: string) => `plans[${String(doc.plans?.[Number(i)]?.['name'])}]`),
    message: p.message,
  }));
}

/** The signed document (YAML text) sidecars accept: issuedAt set, Ed25519 signature over the rest. */
export function signSnapshot(doc: SnapshotDoc, key: SigningKey, issuedAt: Date): string {
  const body: Record<string, unknown> = { ...doc, issuedAt: issuedAt.toISOString() };
  delete body['signature'];
  body['signature'] = { kid: key.kid, sig: signText(key, signedContent(body)) };
  return stringify(body);
}
