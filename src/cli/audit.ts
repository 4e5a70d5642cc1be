/**
 * `inference-gateway audit verify|export|keygen` (docs/audit.md).
 *
 * verify: checks the hash chains and signed checkpoints of audit files,
 * directories (their `*.jsonl`, rotated files first) or a Redis stream;
 * prints a summary and, on failure, the first broken position. Exit 0 ok,
 * 1 broken, 2 usage (or unreadable input).
 * export: usage and cost per UTC day / org / tenant / key / model / currency as JSON or CSV on stdout.
 * keygen: a new Ed25519 checkpoint signing key (FILE) and its public half (FILE.pub).
 */
import { parseArgs } from 'node:util';
import { generateSigningKey } from '../crypto/signing.ts';
import { exportUsage, usageToCsv, usageToJson } from '../audit/export.ts';
import { parseRange } from '../audit/range.ts';
import { exportDestinations } from '../audit/destinations.ts';
import { asUsage, type CommandGroup, dispatch, usage, UsageError } from './dispatch.ts';
import {
  fileSources,
  formatPosition,
  loadPublicKeys,
  redisStreamSource,
  type SourceLine,
  type VerifyIssue,
  type VerifyReport,
  verifyAudit,
} from '../audit/verify.ts';

/** What `--class` takes (the classifier's data classes). */
const DATA_CLASSES: readonly string[] = ['PII', 'PCI', 'PHI', 'SECRET'];

const AUDIT: CommandGroup = {
  name: 'audit',
  header: 'Usage: inference-gateway audit <command> [options]\n\nCommands:\n',
  commands: {
    verify: {
      usage: `  verify [--keys PATH]... [--require-sealed] [--json] (FILE|DIR)...
  verify [--keys PATH]... [--require-sealed] [--json] --redis URL [--stream NAME] [--prefix P]
      Checks every chain: consecutive seq, prev hashes, checkpoint signatures and hashes,
      truncation. --keys: PEM public (or private) keys, files or directories of *.pem/*.pub;
      give every key that ever signed (old keys stay valid after a rotation).
      --require-sealed: chains without a final checkpoint, and a torn last line, are errors.
      A directory is read as its *.jsonl files sorted by name, so rotated
      audit-<timestamp>.jsonl files come before the live audit.jsonl. Files are read in
      the order given. Exit 0 ok, 1 broken (the first broken position is printed), 2 usage.
`,
      run: verify,
    },
    export: {
      usage: `  export [--format json|csv] [--from DATE] [--to DATE] (FILE|DIR)... | --redis URL [--stream NAME]
      Usage and cost per UTC day, org, tenant, API key, model and currency: requests,
      prompt/completion tokens and exact cost (estimated ones counted apart), outcomes. DATE: YYYY-MM-DD (whole UTC day, both
      ends included) or an ISO 8601 timestamp (--from inclusive, --to exclusive).
  export --by destination [--class PII|PCI|PHI|SECRET] [--from DATE] [--to DATE] (FILE|DIR)... | --redis URL
      Where requests went (JSON): per UTC day, model and serving deployment id, the data classes
      found and still sent, the destination rules that constrained them, vetoed attempts, outcomes
      and error codes. --class: only requests in which that class was found.
`,
      run: exportCmd,
    },
    keygen: {
      usage: `  keygen --out FILE
      Writes a new Ed25519 checkpoint signing key to FILE (0600) and its public key to
      FILE.pub; prints the key id (kid).
`,
      run: keygen,
    },
  },
  footer: `
Redis: --stream defaults to igw:audit (audit.stream); --prefix is prepended to it;
--timeout-ms N bounds each command (default 10000).
`,
  // An input that cannot be read is a usage error (exit 2), like a bad flag; anything else is a fault.
  exitCodeFor: (err) => {
    const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
    return code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR' ? 2 : undefined;
  },
};

const SOURCE_OPTIONS = {
  redis: { type: 'string' },
  stream: { type: 'string', default: 'igw:audit' },
  prefix: { type: 'string', default: '' },
  'timeout-ms': { type: 'string', default: '10000' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function auditCommand(argv: string[]): Promise<number> {
  return dispatch(AUDIT, argv);
}

function timeoutOf(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--timeout-ms must be a positive integer, not ${s}`);
  return n;
}

/** Files/dirs or a Redis stream, never both. */
function sourcesOf(positionals: string[], v: { redis?: string | undefined; stream: string; prefix: string; 'timeout-ms': string }): AsyncIterable<SourceLine> {
  if (v.redis !== undefined) {
    if (positionals.length > 0) throw new UsageError('give files/directories or --redis, not both');
    if (!/^rediss?:\/\//.test(v.redis)) throw new UsageError('--redis must be a redis:// or rediss:// URL');
    return redisStreamSource({ url: v.redis, stream: v.stream, prefix: v.prefix, commandTimeoutMs: timeoutOf(v['timeout-ms']) });
  }
  if (positionals.length === 0) throw new UsageError(`no input: give audit files or directories, or --redis URL\n\n${usage(AUDIT)}`);
  return fileSources(positionals);
}

async function verify(args: string[]): Promise<number> {
  const { values: v, positionals } = asUsage(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...SOURCE_OPTIONS,
        keys: { type: 'string', multiple: true, default: [] },
        'require-sealed': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    }),
  );
  if (v.help === true) {
    process.stdout.write(usage(AUDIT));
    return 0;
  }
  const sources = sourcesOf(positionals, v);
  const keys = asUsage(() => loadPublicKeys(v.keys));
  const report = await verifyAudit(sources, keys, { requireSealed: v['require-sealed'] });
  if (v.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(summary(report, keys.size));
  return report.ok ? 0 : 1;
}

function issueLine(i: VerifyIssue): string {
  return `${formatPosition(i)}: ${i.reason}`;
}

export function summary(r: VerifyReport, keyCount: number): string {
  const c = r.counts;
  const out: string[] = [];
  out.push(
    `${r.ok ? 'OK' : 'BROKEN'}: ${c.records} record(s), ${c.checkpoints} checkpoint(s) in ${c.chains} chain(s) (${c.sealed} sealed, ${c.unsealed} unsealed) from ${c.sources} source(s), ${c.lines} line(s); ${keyCount} public key(s)`,
  );
  for (const ch of r.chains) {
    out.push(
      `  chain ${ch.id}: ${ch.records} record(s), seq ${ch.firstSeq ?? '-'}..${ch.lastSeq}, last checkpoint ${ch.lastCheckpointSeq ?? 'none'}, ${ch.sealed ? 'sealed' : 'unsealed'}`,
    );
  }
  if (c.records === 0 && c.checkpoints === 0) out.push('warning: no audit lines found');
  for (const w of r.warnings) out.push(`warning: ${issueLine(w)}`);
  if (r.firstError !== null) {
    out.push(`first broken position: ${issueLine(r.firstError)}`);
    if (c.errors > 1) {
      out.push(`${c.errors} error(s) in all${r.errors.length < c.errors ? ` (first ${r.errors.length} listed)` : ''}:`);
      for (const e of r.errors.slice(0, 20)) out.push(`  ${issueLine(e)}`);
      if (r.errors.length > 20) out.push(`  … (--json lists up to ${r.errors.length})`);
    }
  }
  return `${out.join('\n')}\n`;
}

async function exportCmd(args: string[]): Promise<number> {
  const { values: v, positionals } = asUsage(() =>
    parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...SOURCE_OPTIONS,
        format: { type: 'string', default: 'json' },
        from: { type: 'string' },
        to: { type: 'string' },
        by: { type: 'string', default: 'usage' },
        class: { type: 'string' },
      },
    }),
  );
  if (v.help === true) {
    process.stdout.write(usage(AUDIT));
    return 0;
  }
  if (v.format !== 'json' && v.format !== 'csv') throw new UsageError(`--format must be json or csv, not ${v.format}`);
  const range = { ...(v.from === undefined ? {} : { from: v.from }), ...(v.to === undefined ? {} : { to: v.to }) };
  asUsage(() => parseRange(range));
  if (v.by !== 'usage' && v.by !== 'destination') throw new UsageError(`--by must be usage or destination, not ${v.by}`);
  if (v.by === 'destination') {
    if (v.format !== 'json') throw new UsageError('--by destination writes JSON only');
    const dataClass = v.class ?? null;
    if (dataClass !== null && !DATA_CLASSES.includes(dataClass)) throw new UsageError(`--class must be one of ${DATA_CLASSES.join(', ')}, not ${dataClass}`);
    const report = await exportDestinations(sourcesOf(positionals, v), range, dataClass);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.skipped > 0) process.stderr.write(`audit export: skipped ${report.skipped} line(s) that are not audit records (run 'audit verify')\n`);
    return 0;
  }
  if (v.class !== undefined) throw new UsageError('--class needs --by destination');
  const report = await exportUsage(sourcesOf(positionals, v), range);
  process.stdout.write(v.format === 'csv' ? usageToCsv(report) : usageToJson(report));
  if (report.skipped > 0) process.stderr.write(`audit export: skipped ${report.skipped} line(s) that are not audit records (run 'audit verify')\n`);
  return 0;
}

async function keygen(args: string[]): Promise<number> {
  const { values: v, positionals } = asUsage(() =>
    parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }),
  );
  if (v.help === true) {
    process.stdout.write(usage(AUDIT));
    return 0;
  }
  if (v.out === undefined || positionals.length > 0) throw new UsageError('usage: audit keygen --out FILE');
  let kid: string;
  try {
    kid = generateSigningKey(v.out).kid;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      process.stderr.write(`audit keygen: ${v.out} already exists (not overwritten)\n`);
      return 1;
    }
    throw err;
  }
  process.stderr.write(`wrote ${v.out} (private, 0600) and ${v.out}.pub (public; give it to 'audit verify --keys')\n`);
  process.stdout.write(`${kid}\n`);
  return 0;
}
