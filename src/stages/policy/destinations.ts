/**
 * The data policy's destination rules as the request path asks for them:
 * which of `policy.destinations` apply to a request, given the caller and
 * the data classes it still sends after redaction. Which deployments satisfy
 * them is decided in src/pipeline/destinations.ts, shared with the upstream
 * attempt and the snapshot checks.
 */
import type { PolicyConfig } from '../../config/schema.ts';
import { applicableRules, type DestinationRule } from '../../pipeline/destinations.ts';
import type { DestinationGuard, PolicySubject } from '../../pipeline/ports.ts';

export class DestinationPolicy implements DestinationGuard {
  readonly #rules: readonly DestinationRule[];

  constructor(cfg: Pick<PolicyConfig, 'destinations'>) {
    this.#rules = cfg.destinations;
  }

  get configured(): boolean {
    return this.#rules.length > 0;
  }

  get rules(): readonly DestinationRule[] {
    return this.#rules;
  }

  rulesFor(subject: PolicySubject, sent: ReadonlySet<string>): readonly DestinationRule[] {
    if (this.#rules.length === 0) return this.#rules;
    return applicableRules(this.#rules, subject, sent);
  }
}
