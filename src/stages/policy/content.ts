/**
 * Content inspection: classify every prompt (and generated) text, decide
 * with the data policy, and apply the decision — refuse (naming the class,
 * never the value), redact the spans of the classes to redact with typed
 * placeholders, or permit. Only detector names and counts leave this module.
 */
import { GatewayError } from '../../pipeline/errors.ts';
import type { ContentInspector, DataClasses, RedactFn, Span, TextRef } from '../../pipeline/ports.ts';
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

/** Scans texts off the event loop (./../classify/pool.ts). */
export interface ScanPoolLike {
  scan(texts: readonly string[]): Promise<FindingLike[][]>;
}

export interface Inspection {
  readonly decision: PolicyDecision;
  /** Findings per detector (names and counts only). */
  readonly counts: Readonly<Record<string, number>>;
  /** Spans were replaced. */
  readonly redacted: boolean;
  readonly classes: DataClasses;
}

const ALL_CLASSES: ReadonlySet<DataClassName> = new Set(['PII', 'PCI', 'PHI', 'SECRET']);

export class ContentGuard implements ContentInspector {
  readonly #classifier: ClassifierLike;
  readonly #policy: Policy;
  readonly #responses: boolean;
  readonly #pool: ScanPoolLike | null;
  readonly #inlineChars: number;

  /**
   * `pool`: worker threads that scan large bodies; texts longer than
   * `inlineChars` in total are scanned there, so no request holds the event
   * loop for long (without a pool everything is scanned inline).
   */
  constructor(classifier: ClassifierLike, policy: Policy, opts: { responses: boolean; pool?: ScanPoolLike | null; inlineChars?: number }) {
    this.#classifier = classifier;
    this.#policy = policy;
    this.#responses = opts.responses;
    this.#pool = opts.pool ?? null;
    this.#inlineChars = opts.inlineChars ?? 32_768;
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

  /** A request's texts; redacts them in place. Rejects with 403 data_policy_denied. */
  async inspectRequest(texts: readonly TextRef[], subject: PolicySubject): Promise<Inspection> {
    return this.#inspect(texts, await this.#scanEach(texts), subject, 'request');
  }

  /** A buffered response's texts; redacts them in place. Rejects with 403 data_policy_denied. */
  async inspectResponse(texts: readonly TextRef[], subject: PolicySubject): Promise<Inspection> {
    return this.#inspect(texts, await this.#scanEach(texts), subject, 'response');
  }

  /** Findings per text: inline for the usual small body, on a worker thread for a large one. */
  async #scanEach(texts: readonly TextRef[]): Promise<FindingLike[][]> {
    let total = 0;
    for (const t of texts) total += t.text.length;
    if (this.#pool === null || total <= this.#inlineChars) return texts.map((t) => this.#classifier.scan(t.text));
    return this.#pool.scan(texts.map((t) => t.text));
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

  /**
   * Each text is classified on its own, and the places where one text meets
   * the next are classified again as ONE stream, in the order the model reads
   * them (the family's walk): a value split across two messages or content
   * parts is found whole, and each piece is redacted in the text it lies in.
   * Where a piece lies in a text that cannot be rewritten (an object key, a
   * schema, a data URL) redaction is impossible and the request is refused,
   * naming the field.
   */
  #inspect(texts: readonly TextRef[], scanned: readonly FindingLike[][], subject: PolicySubject, side: 'request' | 'response'): Inspection {
    const starts: number[] = [];
    let total = 0;
    for (const t of texts) {
      starts.push(total);
      total += t.text.length;
    }
    const findings: FindingLike[] = [];
    scanned.forEach((found, i) => {
      const from = starts[i] as number;
      for (const f of found) findings.push({ ...f, start: f.start + from, end: f.end + from });
    });
    for (const f of this.#acrossTexts(texts, starts, total)) findings.push(f);
    const classes = new Set<DataClassName>();
    const counts: Record<string, number> = {};
    for (const f of findings) {
      classes.add(f.dataClass);
      counts[f.detector] = (counts[f.detector] ?? 0) + 1;
    }
    const decision = this.#policy.decide(classes, subject);
    if (decision.action === 'deny') {
      const denied = [...decision.byClass].filter(([, v]) => v.action === 'deny').map(([c]) => c);
      throw new GatewayError(
        'data_policy_denied',
        `The ${side} contains data the policy does not allow here: ${denied.join(', ')} (policy ${decision.version}).`,
      );
    }
    const found = [...classes].sort();
    if (decision.action !== 'redact') return { decision, counts, redacted: false, classes: { found, sent: found } };
    // Every finding of a class the policy redacts is replaced (or the request refused below): only permitted classes remain.
    const sent = found.filter((c) => decision.byClass.get(c)?.action === 'permit');
    // Each finding to redact, cut into the pieces that fall in each text.
    const pieces = new Map<number, FindingLike[]>();
    for (const f of findings) {
      if (decision.byClass.get(f.dataClass)?.action !== 'redact') continue;
      for (let i = lastStartAtOrBefore(starts, f.start); i < texts.length && (starts[i] as number) < f.end; i++) {
        const ref = texts[i] as TextRef;
        const from = starts[i] as number;
        const start = Math.max(f.start, from) - from;
        const end = Math.min(f.end, from + ref.text.length) - from;
        if (end <= start) continue;
        if (!ref.redactable) {
          throw new GatewayError(
            'data_policy_denied',
            `The ${side} contains ${f.dataClass} data in ${ref.where}, where it cannot be redacted; the policy redacts ${f.dataClass}, so the ${side} is refused (policy ${decision.version}).`,
          );
        }
        const list = pieces.get(i) ?? [];
        list.push({ detector: f.detector, dataClass: f.dataClass, start, end });
        pieces.set(i, list);
      }
    }
    for (const [i, hit] of pieces) {
      const ref = texts[i] as TextRef;
      ref.set(this.#classifier.redact(ref.text, hit).text);
    }
    return { decision, counts, redacted: pieces.size > 0, classes: { found, sent } };
  }

  /**
   * Findings that cross from one text into the next: the joined text is
   * scanned only around each junction (SPLIT_WINDOW characters either side,
   * overlapping windows merged, so the extra work is bounded by the body's
   * size), and only findings spanning a junction are kept — the rest were
   * found in their own text.
   */
  #acrossTexts(texts: readonly TextRef[], starts: readonly number[], total: number): FindingLike[] {
    const out: FindingLike[] = [];
    // A junction between two texts read together: not at an empty text, not next to a key (structure, not prose).
    const junctions = starts.filter(
      (b, i) => i > 0 && b > 0 && b < total && b !== starts[i - 1] && texts[i]?.separate !== true && texts[i - 1]?.separate !== true,
    );
    let k = 0;
    while (k < junctions.length) {
      const lo = Math.max(0, (junctions[k] as number) - SPLIT_WINDOW);
      let hi = Math.min(total, (junctions[k] as number) + SPLIT_WINDOW);
      const inside: number[] = [junctions[k] as number];
      while (k + 1 < junctions.length && (junctions[k + 1] as number) - SPLIT_WINDOW <= hi) {
        k++;
        inside.push(junctions[k] as number);
        hi = Math.min(total, (junctions[k] as number) + SPLIT_WINDOW);
      }
      k++;
      for (const f of this.#classifier.scan(joinedRange(texts, starts, lo, hi))) {
        const start = f.start + lo;
        const end = f.end + lo;
        if (inside.some((b) => start < b && b < end)) out.push({ ...f, start, end });
      }
    }
    return out;
  }
}

/**
 * How far either side of the junction of two texts a split value is looked
 * for: longer than a card with separators, a cloud key or a token; a value
 * longer than this split across texts (a private key block) is found only
 * piece by piece, as any other text.
 */
const SPLIT_WINDOW = 128;

/**
 * Characters [lo, hi) of the texts joined end to end, without joining the
 * rest; a separate text (a key) inside the range is blanked to spaces of
 * its length, so that offsets hold and nothing is read across it.
 */
function joinedRange(texts: readonly TextRef[], starts: readonly number[], lo: number, hi: number): string {
  let out = '';
  for (let i = lastStartAtOrBefore(starts, lo); i < texts.length && (starts[i] as number) < hi; i++) {
    const from = starts[i] as number;
    const t = texts[i] as TextRef;
    const piece = t.text.slice(Math.max(0, lo - from), hi - from);
    out += t.separate === true ? ' '.repeat(piece.length) : piece;
  }
  return out;
}

/** Index of the last text starting at or before `offset` (texts may be empty: the last of equal starts). */
function lastStartAtOrBefore(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
