/**
 * Content inspection: classify every prompt (and generated) text, decide
 * with the data policy, and apply the decision — refuse (naming the class,
 * never the value), redact the spans of the classes to redact with typed
 * placeholders, or permit. Only detector names and counts leave this module.
 */
import { GatewayError } from '../../pipeline/errors.ts';
import type { ContentInspector, RedactFn, Span, TextRef } from '../../pipeline/ports.ts';
import type { DataClassName, Policy, PolicyDecision, PolicySubject } from './policy.ts';

export interface FindingLike {
  readonly detector: string;
  readonly dataClass: DataClassName;
  readonly start: number;
  readonly end: number;
}

export interface ClassifierLike {
  scan(text: string): FindingLike[];
  redact(text: string, findings?: FindingLike[]): { text: string; findings: FindingLike[] };
}

export interface Inspection {
  readonly decision: PolicyDecision;
  /** Findings per detector (names and counts only). */
  readonly counts: Readonly<Record<string, number>>;
  /** Spans were replaced. */
  readonly redacted: boolean;
}

const ALL_CLASSES: ReadonlySet<DataClassName> = new Set(['PII', 'PCI', 'PHI', 'SECRET']);

export class ContentGuard implements ContentInspector {
  readonly #classifier: ClassifierLike;
  readonly #policy: Policy;
  readonly #responses: boolean;

  constructor(classifier: ClassifierLike, policy: Policy, opts: { responses: boolean }) {
    this.#classifier = classifier;
    this.#policy = policy;
    this.#responses = opts.responses;
  }

  /** Whether any data class could be redacted or refused for this caller: if not, responses need no inspection. */
  inspectsResponses(subject: PolicySubject): boolean {
    if (!this.#responses) return false;
    for (const v of this.#policy.decide(ALL_CLASSES, subject).byClass.values()) if (v.action !== 'permit') return true;
    return false;
  }

  get policyVersion(): string {
    return this.#policy.version;
  }

  /** A request's texts; redacts them in place. Throws 403 data_policy_denied. */
  inspectRequest(texts: readonly TextRef[], subject: PolicySubject): Inspection {
    return this.#inspect(texts, subject, 'request');
  }

  /** A buffered response's texts; redacts them in place. Throws 403 data_policy_denied. */
  inspectResponse(texts: readonly TextRef[], subject: PolicySubject): Inspection {
    return this.#inspect(texts, subject, 'response');
  }

  /**
   * Redaction for generated text in a stream, or null when nothing in a
   * response could be redacted for this caller — then the stream is not held
   * back at all. The API family applies it across chunk boundaries.
   */
  streamRedaction(subject: PolicySubject, onFindings: (found: readonly FindingLike[]) => void): RedactFn | null {
    if (!this.inspectsResponses(subject)) return null;
    return (text, released) => {
      const found = this.#classifier.scan(text);
      const hit = found.filter((f) => this.#policy.decide(new Set([f.dataClass]), subject).action !== 'permit');
      if (hit.length === 0) return { text, spans: [] };
      // Text still held back is scanned again when released: count it once, then.
      if (released) onFindings(hit);
      return { text: this.#classifier.redact(text, hit).text, spans: hit.map((f): Span => ({ start: f.start, end: f.end })) };
    };
  }

  #inspect(texts: readonly TextRef[], subject: PolicySubject, side: 'request' | 'response'): Inspection {
    const perText = texts.map((t) => ({ ref: t, findings: this.#classifier.scan(t.text) }));
    const classes = new Set<DataClassName>();
    const counts: Record<string, number> = {};
    for (const { findings } of perText) {
      for (const f of findings) {
        classes.add(f.dataClass);
        counts[f.detector] = (counts[f.detector] ?? 0) + 1;
      }
    }
    const decision = this.#policy.decide(classes, subject);
    if (decision.action === 'deny') {
      const denied = [...decision.byClass].filter(([, v]) => v.action === 'deny').map(([c]) => c);
      throw new GatewayError(
        'data_policy_denied',
        `The ${side} contains data the policy does not allow here: ${denied.join(', ')} (policy ${decision.version}).`,
      );
    }
    let redacted = false;
    if (decision.action === 'redact') {
      for (const { ref, findings } of perText) {
        const hit = findings.filter((f) => decision.byClass.get(f.dataClass)?.action === 'redact');
        if (hit.length === 0) continue;
        ref.set(this.#classifier.redact(ref.text, hit).text);
        redacted = true;
      }
    }
    return { decision, counts, redacted };
  }
}
