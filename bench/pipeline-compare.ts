/**
 * `node bench/pipeline-compare.ts --base DIR [--rounds 5] -- <bench:pipeline args>`:
 * runs `bench/pipeline.ts` alternately in another checkout of the project
 * (DIR, e.g. the commit before a change: `git archive <commit> | tar -x -C DIR`
 * with node_modules linked in) and in this one, round after round, and
 * prints each run, the median of the rounds' paired differences, and the
 * medians of µs CPU per request and requests/s.
 * Interleaving pairs the runs, so a neighbour's load on a shared machine
 * weighs on both builds alike.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { base: { type: 'string' }, rounds: { type: 'string', default: '5' } },
  allowPositionals: true,
});
if (values.base === undefined) throw new Error('--base DIR (the checkout to compare against) is required');
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
const builds = { base: resolve(values.base), this: resolve(import.meta.dirname, '..') };

interface Run {
  readonly cpuUs: number;
  readonly rps: number;
}

function runOnce(dir: string): Run {
  const out = execFileSync(process.execPath, ['bench/pipeline.ts', ...positionals], { cwd: dir, encoding: 'utf8' });
  const m = /([\d.]+) µs CPU per request, (\d+) requests\/s/.exec(out);
  if (m === null) throw new Error(`no result line in the output of ${dir}:\n${out}`);
  return { cpuUs: Number(m[1]), rps: Number(m[2]) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const results: Record<keyof typeof builds, Run[]> = { base: [], this: [] };
for (let round = 1; round <= rounds; round++) {
  // Alternate which build goes first, so neither always runs on a warmer (or busier) machine.
  const order: Array<keyof typeof builds> = round % 2 === 1 ? ['base', 'this'] : ['this', 'base'];
  for (const name of order) {
    const r = runOnce(builds[name]);
    results[name].push(r);
    process.stdout.write(`round ${round} ${name}: ${r.cpuUs.toFixed(1)} µs CPU per request, ${r.rps} requests/s\n`);
  }
}
// The same round's two runs saw the same machine: their difference is steadier than the difference of the medians.
const diffs = results.this.map((r, i) => r.cpuUs - (results.base[i] as Run).cpuUs);
process.stdout.write(`paired differences (this − base): ${diffs.map((d) => d.toFixed(1)).join(', ')} µs; median ${median(diffs).toFixed(1)} µs\n`);
for (const name of ['base', 'this'] as const) {
  const rs = results[name];
  process.stdout.write(
    `median ${name} (${builds[name]}): ${median(rs.map((r) => r.cpuUs)).toFixed(1)} µs CPU per request, ` +
      `${Math.round(median(rs.map((r) => r.rps)))} requests/s over ${rs.length} runs\n`,
  );
}
