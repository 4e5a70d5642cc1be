/**
 * Audit chain verifier (docs/audit.md). Pure logic over lines: it is handed
 * the lines of one or more sources (files, a Redis stream) in order and
 * checks, per chain:
 *
 *   - `chain.seq` runs 1, 2, 3, … without gaps, repeats or reordering;
 *   - each `chain.prev` is the hash of the previous record of that chain;
 *   - each checkpoint is signed (Ed25519 over the canonical JSON of the
 *     checkpoint without `sig`) by a known key (`kid`), and its `hash` is the
 *     hash of record `seq` of its chain;
 *   - at the end, a checkpoint that names a `seq` the chain never reached
 *     means the tail was cut off (`truncated`); a chain whose last line is not
 *     a `final` checkpoint for its last record is `unsealed` (its records
 *     after the last checkpoint cannot be proven complete) — an error only
 *     with `requireSealed`.
 *
 * A line that is not JSON is an error, except the last line of the last
 * source when it has no trailing newline: that is a write torn by a crash
 * (`torn tail`, an error only with `requireSealed`).
 *
 * The report lists every problem (up to a cap), ordered by position, so the
 * first entry is the first broken position (source + line).
 *
 * Memory: per chain the verifier keeps its head plus the hashes of the last
 * RECENT_WINDOW records (a checkpoint is written right behind the record it
 * names, so it never needs older ones); a checkpoint naming an older record
 * is reported as not checkable.
 */
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { canonicalJson, GENESIS, recordHash } from '../crypto/canonical.ts';
import { verifyText } from '../crypto/signing.ts';
import { describeRedisUrl } from '../stores/redis-connection.ts';
import { isObject } from '../shared/values.ts';

/** One line of an audit source. */
export interface SourceLine {
  /** File path, or `redis://host:port <stream>`. */
  readonly source: string;
  /** 1-based line number (for a stream: entry number). */
  readonly line: number;
  /** The line without its newline. */
  readonly text: string;
  /** The line had no terminating newline (only possible for the last line of a file). */
  readonly partial?: boolean;
  /** Extra position detail, e.g. the Redis stream entry id. */
  readonly ref?: string;
}

export type IssueKind =
  | 'invalid_json'
  | 'invalid_line'
  | 'gap'
  | 'order'
  | 'prev_mismatch'
  | 'after_final'
  | 'unknown_key'
  | 'bad_signature'
  | 'checkpoint_mismatch'
  | 'checkpoint_ahead'
  | 'checkpoint_too_old'
  | 'truncated'
  | 'unsealed'
  | 'torn_tail';

export interface VerifyIssue {
  readonly kind: IssueKind;
  readonly source: string;
  readonly line: number;
  readonly ref?: string;
  readonly chain?: string;
  readonly reason: string;
}

export interface ChainSummary {
  readonly id: string;
  /** Record lines seen for this chain. */
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number;
  /** Highest seq named by a checkpoint with a valid signature (null: none). */
  readonly lastCheckpointSeq: number | null;
  readonly checkpoints: number;
  /** Ends with a valid `final` checkpoint naming its last record. */
  readonly sealed: boolean;
  readonly firstSource: string;
  readonly lastSource: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly chains: ChainSummary[];
  /** Sorted by position; the first one is the first broken position. Capped at MAX_ISSUES. */
  readonly errors: VerifyIssue[];
  readonly firstError: VerifyIssue | null;
  /** Not errors under the options used (unsealed chains, a torn tail without requireSealed). */
  readonly warnings: VerifyIssue[];
  readonly tornTail: VerifyIssue | null;
  readonly counts: {
    readonly sources: number;
    readonly lines: number;
    readonly records: number;
    readonly checkpoints: number;
    readonly chains: number;
    readonly sealed: number;
    readonly unsealed: number;
    /** All errors found, including those beyond the cap. */
    readonly errors: number;
  };
}

export interface VerifyOptions {
  /** Unsealed chains and a torn tail are errors (a log that must be complete, e.g. after a clean shutdown). */
  readonly requireSealed?: boolean;
}

export const RECENT_WINDOW = 8192;
export const MAX_ISSUES = 1000;

interface Pos {
  readonly ord: number;
  readonly source: string;
  readonly line: number;
  readonly ref: string | undefined;
}

interface Pending {
  readonly seq: number;
  readonly hash: string;
  readonly pos: Pos;
}

interface ChainState {
  readonly id: string;
  records: number;
  firstSeq: number | null;
  lastSeq: number;
  lastHash: string;
  lastPos: Pos | null;
  lastCheckpointSeq: number | null;
  checkpoints: number;
  final: { seq: number; pos: Pos } | null;
  /** seq → hash and position of recent records. */
  readonly recent: Map<number, { hash: string; pos: Pos }>;
  /** Checkpoints naming a seq not reached yet. */
  pending: Pending[];
  firstSource: string;
  lastSource: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

export function formatPosition(p: { source: string; line: number; ref?: string | undefined }): string {
  return `${p.source}:${p.line}${p.ref === undefined ? '' : ` (${p.ref})`}`;
}

export async function verifyAudit(
  sources: AsyncIterable<SourceLine>,
  publicKeys: ReadonlyMap<string, KeyObject>,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const requireSealed = opts.requireSealed === true;
  const chains = new Map<string, ChainState>();
  /** Found while streaming (so in position order), capped. */
  const errors: Array<{ ord: number; issue: VerifyIssue }> = [];
  /** Found at the end of the input (truncation, unsealed chains, torn tail). */
  const late: Array<{ ord: number; issue: VerifyIssue }> = [];
  let errorCount = 0;
  let ord = 0;
  let lines = 0;
  let records = 0;
  let checkpoints = 0;
  const sourceNames = new Set<string>();
  /** A non-JSON partial line: a torn tail if nothing follows it. */
  let tornCandidate: { pos: Pos; text: string } | null = null;

  const issueAt = (kind: IssueKind, pos: Pos, reason: string, chain?: string): VerifyIssue => ({
    kind,
    source: pos.source,
    line: pos.line,
    ...(pos.ref === undefined ? {} : { ref: pos.ref }),
    ...(chain === undefined ? {} : { chain }),
    reason,
  });
  const fail = (kind: IssueKind, pos: Pos, reason: string, chain?: string): void => {
    errorCount++;
    if (errors.length < MAX_ISSUES) errors.push({ ord: pos.ord, issue: issueAt(kind, pos, reason, chain) });
  };
  const at = (p: Pos): string => formatPosition(p);

  const stateOf = (id: string, pos: Pos): ChainState => {
    let s = chains.get(id);
    if (s === undefined) {
      s = {
        id,
        records: 0,
        firstSeq: null,
        lastSeq: 0,
        lastHash: GENESIS,
        lastPos: null,
        lastCheckpointSeq: null,
        checkpoints: 0,
        final: null,
        recent: new Map(),
        pending: [],
        firstSource: pos.source,
        lastSource: pos.source,
      };
      chains.set(id, s);
    }
    s.lastSource = pos.source;
    return s;
  };

  const onRecord = (obj: Record<string, unknown>, pos: Pos): void => {
    const c = obj.chain;
    if (!isObject(c) || typeof c.id !== 'string' || c.id === '' || !isSeq(c.seq) || typeof c.prev !== 'string' || !HEX64.test(c.prev)) {
      fail('invalid_line', pos, 'record without a valid "chain" field ({ id, seq >= 1, prev: 64 hex digits })');
      return;
    }
    records++;
    const id = c.id;
    const seq = c.seq;
    const s = stateOf(id, pos);
    const prevSeq = s.lastSeq;
    s.records++;
    s.firstSeq ??= seq;
    if (s.final !== null) {
      fail('after_final', pos, `record seq ${seq} after the final checkpoint of the chain (seq ${s.final.seq} at ${at(s.final.pos)})`, id);
    }
    if (seq === s.lastSeq + 1) {
      if (c.prev !== s.lastHash) {
        fail(
          'prev_mismatch',
          pos,
          s.lastPos === null
            ? `record seq 1 has prev ${c.prev.slice(0, 12)}…, not the genesis value (0 × 64)`
            : `record seq ${seq}: prev does not match the hash of record seq ${s.lastSeq} at ${at(s.lastPos)} (that record was altered, or this one was)`,
          id,
        );
      }
    } else if (seq > s.lastSeq + 1) {
      const missing = seq - s.lastSeq - 1;
      fail(
        'gap',
        pos,
        `gap: record seq ${seq} follows seq ${s.lastSeq}${s.lastPos === null ? ' (chain start)' : ` at ${at(s.lastPos)}`}; ${missing === 1 ? `record ${s.lastSeq + 1} is` : `records ${s.lastSeq + 1}..${seq - 1} are`} missing`,
        id,
      );
    } else {
      fail(
        'order',
        pos,
        `record seq ${seq} repeats or goes back: expected seq ${s.lastSeq + 1} after ${s.lastPos === null ? 'the chain start' : at(s.lastPos)}`,
        id,
      );
    }
    // Resynchronize on this record so one break is reported once.
    const hash = recordHash(obj);
    s.lastSeq = seq;
    s.lastHash = hash;
    s.lastPos = pos;
    s.recent.set(seq, { hash, pos });
    if (s.recent.size > RECENT_WINDOW) {
      const oldest = s.recent.keys().next();
      if (oldest.done !== true) s.recent.delete(oldest.value);
    }
    if (s.pending.length > 0) {
      const still: Pending[] = [];
      for (const p of s.pending) {
        if (p.seq > seq) still.push(p);
        else if (p.seq === seq)
          fail(
            'checkpoint_ahead',
            p.pos,
            `checkpoint names seq ${p.seq} before that record appears (at ${at(pos)}): lines out of order${p.hash === hash ? '' : ", and its hash does not match that record's"}`,
            id,
          );
        else
          fail('checkpoint_ahead', p.pos, `checkpoint names seq ${p.seq}, which is missing: the chain goes from seq ${prevSeq} to seq ${seq} (${at(pos)})`, id);
      }
      s.pending = still;
    }
  };

  const onCheckpoint = (obj: Record<string, unknown>, pos: Pos): void => {
    const { chain, seq, hash, kid, sig, final } = obj;
    if (
      typeof chain !== 'string' ||
      chain === '' ||
      !isSeq(seq) ||
      typeof hash !== 'string' ||
      !HEX64.test(hash) ||
      typeof kid !== 'string' ||
      typeof sig !== 'string' ||
      typeof final !== 'boolean' ||
      typeof obj.at !== 'string'
    ) {
      fail('invalid_line', pos, 'checkpoint line with missing or malformed fields (chain, seq, hash, at, final, kid, sig)');
      return;
    }
    checkpoints++;
    const s = stateOf(chain, pos);
    const key = publicKeys.get(kid);
    if (key === undefined) {
      fail('unknown_key', pos, `checkpoint seq ${seq} is signed with key ${kid}, for which no public key was given`, chain);
      return;
    }
    const body: Record<string, unknown> = { ...obj };
    delete body.sig;
    if (!verifyText(key, canonicalJson(body), sig)) {
      fail('bad_signature', pos, `checkpoint seq ${seq}: bad signature (key ${kid}); the checkpoint was forged or altered`, chain);
      return;
    }
    s.checkpoints++;
    if (seq > s.lastSeq) {
      s.pending.push({ seq, hash, pos });
    } else {
      const rec = s.recent.get(seq);
      if (rec === undefined) {
        fail(
          'checkpoint_too_old',
          pos,
          `checkpoint names seq ${seq}, more than ${RECENT_WINDOW} records behind the chain head (seq ${s.lastSeq}): cannot be checked`,
          chain,
        );
      } else if (rec.hash !== hash) {
        fail('checkpoint_mismatch', pos, `checkpoint hash does not match record seq ${seq} at ${at(rec.pos)} (that record was altered, or replaced)`, chain);
      }
    }
    s.lastCheckpointSeq = Math.max(s.lastCheckpointSeq ?? 0, seq);
    if (final) {
      if (s.final !== null) fail('after_final', pos, `second final checkpoint for the chain (the first is at ${at(s.final.pos)})`, chain);
      else if (seq < s.lastSeq) fail('after_final', pos, `final checkpoint names seq ${seq} but the chain already has records up to seq ${s.lastSeq}`, chain);
      s.final ??= { seq, pos };
    }
  };

  for await (const l of sources) {
    lines++;
    const pos: Pos = { ord: ord++, source: l.source, line: l.line, ref: l.ref };
    sourceNames.add(l.source);
    if (tornCandidate !== null) {
      // Something follows the partial line: it was not the tail of the last source.
      fail('invalid_json', tornCandidate.pos, 'not valid JSON (a line without its newline, not at the end of the last source)');
      tornCandidate = null;
    }
    let value: unknown;
    try {
      value = JSON.parse(l.text);
    } catch {
      if (l.partial === true) tornCandidate = { pos, text: l.text };
      else fail('invalid_json', pos, l.text.trim() === '' ? 'empty line (not valid JSON)' : 'not valid JSON');
      continue;
    }
    if (!isObject(value)) {
      fail('invalid_line', pos, 'a JSON value that is not an object');
      continue;
    }
    if (value.type === 'checkpoint') onCheckpoint(value, pos);
    // `admin`: the control plane's admin audit log (src/control-plane/audit.ts), chained the same way.
    else if (value.type === 'request' || value.type === 'admin') onRecord(value, pos);
    else fail('invalid_line', pos, `unknown line type ${JSON.stringify(value.type) ?? 'undefined'} (expected "request", "admin" or "checkpoint")`);
  }

  const warnings: VerifyIssue[] = [];
  let tornTail: VerifyIssue | null = null;
  if (tornCandidate !== null) {
    tornTail = issueAt(
      'torn_tail',
      tornCandidate.pos,
      `torn tail: the last line (${Buffer.byteLength(tornCandidate.text)} bytes) has no newline and is not complete JSON (a write cut short by a crash)`,
    );
    if (requireSealed) {
      errorCount++;
      late.push({ ord: tornCandidate.pos.ord, issue: tornTail });
    } else warnings.push(tornTail);
  }

  const summaries: ChainSummary[] = [];
  let sealedCount = 0;
  for (const s of chains.values()) {
    for (const p of s.pending) {
      errorCount++;
      late.push({
        ord: p.pos.ord,
        issue: issueAt(
          'truncated',
          p.pos,
          `truncated: checkpoint names seq ${p.seq} but the chain ends at seq ${s.lastSeq}${s.lastPos === null ? '' : ` (${at(s.lastPos)})`}; ${p.seq - s.lastSeq === 1 ? `record ${p.seq} was` : `records ${s.lastSeq + 1}..${p.seq} were`} removed`,
          s.id,
        ),
      });
    }
    const sealed = s.final !== null && s.final.seq === s.lastSeq && s.pending.length === 0;
    if (sealed) sealedCount++;
    else {
      const pos = s.lastPos ?? s.final?.pos ?? null;
      const after = s.lastSeq - (s.lastCheckpointSeq ?? 0);
      const reason = `chain ${s.id} is unsealed: no final checkpoint for its last record (seq ${s.lastSeq}); last checkpoint at ${s.lastCheckpointSeq === null ? 'none' : `seq ${s.lastCheckpointSeq}`}${after > 0 ? `, ${after} record(s) after it cannot be proven complete` : ''}`;
      const issue = issueAt('unsealed', pos ?? { ord: ord, source: s.lastSource, line: 0, ref: undefined }, reason, s.id);
      if (requireSealed) {
        errorCount++;
        late.push({ ord: pos?.ord ?? ord, issue });
      } else warnings.push(issue);
    }
    summaries.push({
      id: s.id,
      records: s.records,
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      lastCheckpointSeq: s.lastCheckpointSeq,
      checkpoints: s.checkpoints,
      sealed,
      firstSource: s.firstSource,
      lastSource: s.lastSource,
    });
  }

  // Streamed errors are already in position order; merge the end-of-input ones in.
  const sorted = [...errors, ...late]
    .sort((a, b) => a.ord - b.ord)
    .slice(0, MAX_ISSUES)
    .map((x) => x.issue);

  return {
    ok: errorCount === 0,
    chains: summaries,
    errors: sorted,
    firstError: sorted[0] ?? null,
    warnings,
    tornTail,
    counts: {
      sources: sourceNames.size,
      lines,
      records,
      checkpoints,
      chains: chains.size,
      sealed: sealedCount,
      unsealed: chains.size - sealedCount,
      errors: errorCount,
    },
  };
}

// ---------------------------------------------------------------------------
// Sources

/**
 * The `*.jsonl` files to read for `paths`, in order. Paths are taken in the
 * order given. A directory contributes its `*.jsonl` files sorted by name
 * (UTF-16 code units): the file sink renames a full file to
 * `<name>-<UTC timestamp>.jsonl` (fixed-width, so these sort
 * chronologically), and `-` sorts before `.`, so every rotated
 * `audit-….jsonl` comes before the live `audit.jsonl`.
 */
export async function listAuditFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const st = await stat(p);
    if (st.isDirectory()) {
      const names = (await readdir(p, { withFileTypes: true })).filter((d) => d.isFile() && d.name.endsWith('.jsonl')).map((d) => d.name);
      names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const n of names) out.push(join(p, n));
    } else out.push(p);
  }
  return out;
}

/** Lines of one file, streamed; the last one is `partial` when the file does not end in a newline. */
export async function* fileLines(file: string): AsyncGenerator<SourceLine> {
  const decoder = new TextDecoder('utf-8');
  let carry: Buffer[] = [];
  let line = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const part = chunk.subarray(start, nl);
      const bytes = carry.length === 0 ? part : Buffer.concat([...carry, part]);
      carry = [];
      yield { source: file, line: ++line, text: decoder.decode(bytes) };
      start = nl + 1;
    }
    if (start < chunk.length) carry.push(chunk.subarray(start));
  }
  if (carry.length > 0) yield { source: file, line: line + 1, text: decoder.decode(Buffer.concat(carry)), partial: true };
}

/** Every line of the files or directories in `paths` (see listAuditFiles for the order). */
export async function* fileSources(paths: readonly string[]): AsyncGenerator<SourceLine> {
  for (const file of await listAuditFiles(paths)) yield* fileLines(file);
}

export interface RedisStreamSourceOptions {
  readonly url: string;
  /** Stream key (the sink's `audit.stream`, e.g. `igw:audit`), after `prefix`. */
  readonly stream: string;
  /** Prepended to `stream` (default none). */
  readonly prefix?: string;
  /** Entries per XRANGE page (default 1000). */
  readonly pageSize?: number;
  readonly commandTimeoutMs?: number;
}

/**
 * The entries of a Redis stream written by RedisStreamSink, oldest first,
 * read with XRANGE in pages. Each entry's `line` field is one line; an entry
 * without one yields an empty (invalid) line. `line` numbers count entries
 * from 1; `ref` is the entry id.
 */
export async function* redisStreamSource(opts: RedisStreamSourceOptions): AsyncGenerator<SourceLine> {
  const key = `${opts.prefix ?? ''}${opts.stream}`;
  const source = `${describeRedisUrl(opts.url)} ${key}`;
  const page = opts.pageSize ?? 1000;
  const redis = new Redis(opts.url, {
    lazyConnect: true,
    commandTimeout: opts.commandTimeoutMs ?? 10_000,
    connectTimeout: opts.commandTimeoutMs ?? 10_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 3 ? null : 100 * times),
    connectionName: 'inference-gateway-audit-verify',
    disconnectTimeout: 200,
  });
  redis.on('error', () => undefined); // surfaced by the commands
  try {
    await redis.connect();
    let start = '-';
    let n = 0;
    for (;;) {
      const entries = await redis.xrange(key, start, '+', 'COUNT', page);
      for (const [id, fields] of entries) {
        let text = '';
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === 'line') {
            text = fields[i + 1] ?? '';
            break;
          }
        }
        yield { source, line: ++n, text, ref: `entry ${id}` };
      }
      const last = entries[entries.length - 1];
      if (entries.length < page || last === undefined) break;
      start = `(${last[0]}`;
    }
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------------------
// Keys

export { loadPublicKeys } from '../crypto/signing.ts';
