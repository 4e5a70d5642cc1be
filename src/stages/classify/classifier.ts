/**
 * Data classification of prompt/response text: PII, PCI, PHI and secrets.
 *
 * All detectors are compiled once in the constructor and are linear-time on
 * adversarial input (see detectors.ts and safe-regex.ts); text is scanned in
 * full, without a length cap. Detectors (custom ones included) run on the
 * normalised text (normalize.ts: NFKC, digits of every script, no invisible
 * characters, one kind of space and dash); findings are mapped back, so their
 * offsets always index the original text.
 */
import { TermMatcher, builtinDetectors, type DataClass, type Detector, type Finding } from './detectors.ts';
import { normalizeForDetection, type NormalizedText } from './normalize.ts';
import { compileSafePattern } from './safe-regex.ts';

export type { DataClass, Detector, Finding } from './detectors.ts';
export { BUILTIN_DETECTOR_NAMES } from './detectors.ts';
export { UnsafePatternError } from './safe-regex.ts';

export interface CustomDetectorConfig {
  name: string;
  dataClass: DataClass;
  /** Regex source; checked by compileSafePattern (no nested quantifiers, backreferences or lookaround). */
  pattern?: string;
  /** Case-insensitive whole-word terms. */
  terms?: string[];
}

export interface ClassifierConfig {
  phiTerms?: string[];
  custom?: CustomDetectorConfig[];
  /** Run only these detectors (built-in or custom names); default all. */
  only?: string[];
  /** Shannon entropy threshold (bits/char) for high_entropy_secret; default 3.0. */
  entropyThreshold?: number;
}

const DATA_CLASSES: ReadonlySet<string> = new Set(['PII', 'PCI', 'PHI', 'SECRET']);
const CUSTOM_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const CUSTOM_PRIORITY = 45;
const isTokenChar = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

function customDetector(c: CustomDetectorConfig): Detector {
  if (typeof c.name !== 'string' || !CUSTOM_NAME_RE.test(c.name)) throw new Error(`classifier: invalid custom detector name ${JSON.stringify(c.name)}`);
  if (!DATA_CLASSES.has(c.dataClass)) throw new Error(`classifier: custom detector "${c.name}" has invalid dataClass`);
  if (c.pattern === undefined && (c.terms === undefined || c.terms.length === 0))
    throw new Error(`classifier: custom detector "${c.name}" needs a pattern or terms`);
  const re = c.pattern !== undefined ? compileSafePattern(c.name, c.pattern) : null;
  const terms = c.terms ? new TermMatcher(c.terms) : null;
  const { name, dataClass } = c;
  return {
    name,
    dataClass,
    priority: CUSTOM_PRIORITY,
    find(text) {
      const out: Finding[] = terms ? terms.find(text, name, dataClass) : [];
      if (re) {
        re.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = re.exec(text)) !== null) {
          if (m[0].length === 0) {
            re.lastIndex = m.index + 1;
            continue;
          }
          // Unbounded quantifiers are capped (safe-regex.ts): a match that stops inside a word
          // token is extended to the token's end so a long secret is never partly leaked.
          let end = m.index + m[0].length;
          if (isTokenChar(text.charCodeAt(end - 1))) while (end < text.length && isTokenChar(text.charCodeAt(end))) end++;
          re.lastIndex = end;
          out.push({ detector: name, dataClass, start: m.index, end });
        }
      }
      return out;
    },
  };
}

/** `[REDACTED:<DETECTOR_IN_UPPER_SNAKE>]` */
export function redactionLabel(detector: string): string {
  return `[REDACTED:${detector.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}]`;
}

/**
 * Non-overlapping subset: longest span wins, then the more specific detector
 * (priority), then the earlier start. Returned sorted by start.
 */
export function resolveOverlaps(cands: readonly Finding[], priority: (name: string) => number, textLength?: number): Finding[] {
  const valid = cands.filter(
    (f) => Number.isInteger(f.start) && Number.isInteger(f.end) && f.start >= 0 && f.end > f.start && (textLength === undefined || f.end <= textLength),
  );
  const byRank = [...valid].sort((a, b) => b.end - b.start - (a.end - a.start) || priority(b.detector) - priority(a.detector) || a.start - b.start);
  const picked: Finding[] = []; // sorted by start
  for (const f of byRank) {
    let lo = 0;
    let hi = picked.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((picked[mid] as Finding).start < f.start) lo = mid + 1;
      else hi = mid;
    }
    const before = picked[lo - 1];
    const after = picked[lo];
    if (before && before.end > f.start) continue;
    if (after && after.start < f.end) continue;
    picked.splice(lo, 0, f);
  }
  return picked;
}

/**
 * Findings on the normalised text (sorted, non-overlapping) as findings on the
 * original. Two findings that split the expansion of one original code point
 * (e.g. "ﬁ" → "fi") would map to overlapping spans: the later one then starts
 * where the earlier ends, so together they still cover everything either
 * covered and redaction stays well-defined.
 */
function toOriginal(norm: NormalizedText, picked: readonly Finding[]): Finding[] {
  const out: Finding[] = [];
  let prevEnd = 0;
  for (const f of picked) {
    const o = norm.toOriginal(f.start, f.end);
    const start = Math.max(o.start, prevEnd);
    if (start >= o.end) continue;
    out.push({ detector: f.detector, dataClass: f.dataClass, start, end: o.end });
    prevEnd = o.end;
  }
  return out;
}

export class Classifier {
  private readonly detectors: readonly Detector[];
  private readonly priorities: ReadonlyMap<string, number>;

  constructor(cfg: ClassifierConfig = {}) {
    const builtins = builtinDetectors({
      phiTerms: cfg.phiTerms ?? [],
      ...(cfg.entropyThreshold === undefined ? {} : { entropyThreshold: cfg.entropyThreshold }),
    });
    const custom = (cfg.custom ?? []).map(customDetector);
    const all = [...builtins, ...custom];
    const names = new Set<string>();
    for (const d of all) {
      if (names.has(d.name)) throw new Error(`classifier: duplicate detector name "${d.name}"`);
      names.add(d.name);
    }
    if (cfg.only) {
      for (const n of cfg.only) if (!names.has(n)) throw new Error(`classifier: unknown detector "${n}" in only`);
      const keep = new Set(cfg.only);
      this.detectors = all.filter((d) => keep.has(d.name));
    } else this.detectors = all;
    this.priorities = new Map(all.map((d) => [d.name, d.priority]));
  }

  /** Names of the detectors this classifier runs. */
  get detectorNames(): string[] {
    return this.detectors.map((d) => d.name);
  }

  /** Findings, sorted and non-overlapping, with offsets into `text` (never into its normalised form). */
  scan(text: string): Finding[] {
    const norm = normalizeForDetection(text);
    const cands: Finding[] = [];
    for (const d of this.detectors) for (const f of d.find(norm.text)) cands.push(f);
    const picked = resolveOverlaps(cands, (n) => this.priorities.get(n) ?? 0);
    return norm.unchanged ? picked : toOriginal(norm, picked);
  }

  redact(text: string, findings?: Finding[]): { text: string; findings: Finding[] } {
    const fs = findings ? resolveOverlaps(findings, (n) => this.priorities.get(n) ?? 0, text.length) : this.scan(text);
    let out = '';
    let pos = 0;
    for (const f of fs) {
      out += text.slice(pos, f.start) + redactionLabel(f.detector);
      pos = f.end;
    }
    out += text.slice(pos);
    return { text: out, findings: fs };
  }
}

/** Counts per detector name (names and counts only: safe for headers/audit). */
export function summarize(findings: readonly Finding[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of findings) out[f.detector] = (out[f.detector] ?? 0) + 1;
  return out;
}
