/**
 * Content inspection: classify every prompt (and generated) text, decide
 * with the data policy, and apply the decision — refuse (naming the class,
 * never the value), redact the spans of the classes to redact with typed
 * placeholders, or permit. Only detector names and counts leave this module.
 */
import type { Endpoint } from '../../families/openai/endpoints.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import { SseRedactor, type Span } from '../../families/openai/sse-redact.ts';
import { requestTexts, responseTexts, type TextRef } from '../../families/openai/texts.ts';
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

export class ContentGuard {
  readonly #classifier: ClassifierLike;
  readonly #policy: Policy;
  readonly #responses: boolean;
  readonly #holdBack: number;

  constructor(classifier: ClassifierLike, policy: Policy, opts: { responses: boolean; streamHoldBackChars: number }) {
    this.#classifier = classifier;
    this.#policy = policy;
    this.#responses = opts.responses;
    this.#holdBack = opts.streamHoldBackChars;
  }

  /** Whether any data class could be redacted or refused for this caller: if not, responses need no inspection. */
  #responsesMatter(subject: PolicySubject): boolean {
    if (!this.#responses) return false;
    for (const v of this.#policy.decide(ALL_CLASSES, subject).byClass.values()) if (v.action !== 'permit') return true;
    return false;
  }

  get policyVersion(): string {
    return this.#policy.version;
  }

  /** Request side; mutates the parsed body when redacting. Throws 403 data_policy_denied. */
  inspectRequest(endpoint: Endpoint, body: Record<string, unknown>, subject: PolicySubject): Inspection {
    return this.#inspect(requestTexts(endpoint, body), subject, 'request');
  }

  /** A buffered response body; mutates it when redacting (null: not inspected, nothing could apply). */
  inspectResponse(body: Record<string, unknown>, subject: PolicySubject): Inspection | null {
    if (!this.#responsesMatter(subject)) return null;
    return this.#inspect(responseTexts(body), subject, 'response');
  }

  /**
   * A redactor for an SSE response, or null when nothing in a response could
   * be redacted for this caller — then the stream is not held back at all.
   */
  streamRedactor(subject: PolicySubject, onFindings: (found: readonly FindingLike[]) => void): SseRedactor | null {
    if (!this.#responsesMatter(subject)) return null;
    return new SseRedactor((text) => {
      const found = this.#classifier.scan(text);
      const hit = found.filter((f) => this.#policy.decide(new Set([f.dataClass]), subject).action !== 'permit');
      if (hit.length === 0) return { text, spans: [] };
      onFindings(hit);
      return { text: this.#classifier.redact(text, hit).text, spans: hit.map((f): Span => ({ start: f.start, end: f.end })) };
    }, this.#holdBack);
  }

  #inspect(texts: TextRef[], subject: PolicySubject, side: 'request' | 'response'): Inspection {
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
      throw new GatewayError('data_policy_denied', `The ${side} contains data the policy does not allow here: ${denied.join(', ')} (policy ${decision.version}).`);
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
