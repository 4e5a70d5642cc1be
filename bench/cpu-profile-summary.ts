/**
 * `npm run bench:profile -- FILE.cpuprofile [--by function|file] [--top N] [--callers NAME]`:
 * where a V8 CPU profile's busy time went, idle excluded — self time per
 * function (or per source file), the largest inclusive times, or the call
 * paths into one function (`--callers writeUtf8String`). For the sidecar
 * under `npm run bench`:
 *
 *   npm run bench -- --scenarios chat --hold-streams 0 --no-results --no-docs \
 *     --sidecar-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"
 *   npm run bench:profile -- /tmp/prof/<the largest file>
 *
 * (the smaller file is the launcher's; percentages are of the sidecar's busy
 * main-thread time over the whole run, all phases.)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { by: { type: 'string', default: 'function' }, top: { type: 'string', default: '40' }, callers: { type: 'string' } },
});
const file = positionals[0];
if (file === undefined || (values.by !== 'function' && values.by !== 'file')) {
  process.stderr.write('usage: npm run bench:profile -- FILE.cpuprofile [--by function|file] [--top N] [--callers NAME]\n');
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const where = (url: string): string => url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
const fnKey = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const key = (n: ProfileNode): string => (values.by === 'file' ? where(n.callFrame.url) || n.callFrame.functionName : fnKey(n));

// µs of busy time per sampled node ((idle) is the event loop waiting).
const selfUs = new Map<number, number>();
let busyUs = 0;
profile.samples.forEach((id, i) => {
  if (byId.get(id)?.callFrame.functionName === '(idle)') return;
  const d = profile.timeDeltas[i] ?? 0;
  selfUs.set(id, (selfUs.get(id) ?? 0) + d);
  busyUs += d;
});
const pct = (us: number): string => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %`;
process.stdout.write(`${file}: ${(busyUs / 1000).toFixed(0)} ms busy\n`);

if (values.callers !== undefined) {
  const paths = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined || !fnKey(n).startsWith(values.callers)) continue;
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < 8; p = parent.get(p)) chain.push(fnKey(byId.get(p)!));
    const path = chain.join(' <- ');
    paths.set(path, (paths.get(path) ?? 0) + us);
  }
  for (const [path, us] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${path}\n`);
  process.exit(0);
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const k = key(byId.get(id)!);
  self.set(k, (self.get(k) ?? 0) + us);
  // Each key once per sample, however often it recurs on the stack.
  const seen = new Set<string>();
  for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) seen.add(key(byId.get(p)!));
  for (const s of seen) inclusive.set(s, (inclusive.get(s) ?? 0) + us);
}
process.stdout.write('self\n');
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write('inclusive\n');
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
