/**
 * `npm run bench:content:compare -- <base-commit> [rounds]`: `npm run bench:content`
 * (this checkout's bench/content.ts) over the classifier of `<base-commit>` and
 * over this checkout's, alternately, `rounds` times (default 5), then the
 * median of each cell. Alternating rounds spread a busy machine's noise over
 * both sides instead of charging it to one. The base's src/ is extracted with
 * `git archive` into a temporary directory (no checkout is touched).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [base, roundsArg] = process.argv.slice(2);
if (base === undefined) {
  process.stderr.write('usage: npm run bench:content:compare -- <base-commit> [rounds]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 5);
const here = resolve(import.meta.dirname, '..');
const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: here, encoding: 'utf8' }).trim() !== '';

const baseDir = mkdtempSync(join(tmpdir(), 'bench-content-base-'));
try {
  const archive = execFileSync('git', ['archive', base, 'src'], { cwd: here });
  execFileSync('tar', ['-x', '-C', baseDir], { input: archive });
  cpSync(join(here, 'bench', 'content.ts'), join(baseDir, 'bench', 'content.ts'));
  cpSync(join(here, 'package.json'), join(baseDir, 'package.json'));
  symlinkSync(join(here, 'node_modules'), join(baseDir, 'node_modules'));

  /** Per side, per table row ("<table title> | <prompt>"), the classify + policy + redact µs of each round. */
  const cells = new Map<string, Map<string, number[]>>([
    ['base', new Map()],
    ['head', new Map()],
  ]);
  const run = (side: 'base' | 'head', cwd: string): void => {
    const r = spawnSync(process.execPath, ['bench/content.ts'], { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${side}: bench/content.ts failed: ${r.stderr}`);
    let title = '';
    for (const line of r.stdout.split('\n')) {
      const row = /^\| (\d+ kB) \| \d+ \| (\d+) \| \d+ \|$/.exec(line);
      if (row) {
        const key = `${title} | ${row[1] as string}`;
        const rows = cells.get(side) as Map<string, number[]>;
        rows.set(key, [...(rows.get(key) ?? []), Number(row[2])]);
      } else if (line.trim() !== '' && !line.startsWith('|') && !line.startsWith('Validation')) title = line.trim();
    }
  };
  for (let i = 0; i < rounds; i++) {
    run('base', baseDir);
    run('head', here);
    process.stderr.write(`round ${i + 1}/${rounds}\n`);
  }
  const median = (xs: readonly number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? (s[s.length >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
  };
  process.stdout.write(
    `classify + policy + redact µs per request, median of ${rounds} alternating rounds (${new Date().toISOString()}, Node ${process.version})\n` +
      `base ${base}, head ${head}${dirty ? ' + uncommitted changes in src' : ''}\n\n| prose | prompt | base µs | head µs | head − base |\n|---|---|--:|--:|--:|\n`,
  );
  for (const [key, values] of cells.get('base') as Map<string, number[]>) {
    const b = median(values);
    const h = median(cells.get('head')?.get(key) ?? []);
    const [title, size] = key.split(' | ') as [string, string];
    process.stdout.write(`| ${title} | ${size} | ${b.toFixed(0)} | ${h.toFixed(0)} | ${h - b >= 0 ? '+' : ''}${(h - b).toFixed(0)} |\n`);
  }
} finally {
  rmSync(baseDir, { recursive: true, force: true });
}
