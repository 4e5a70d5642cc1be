/**
 * `npm run bench:proto-load`: what the sidecar defers by loading proto-loader
 * on first use (src/server/proto/deferred.ts) — the pause of the first call
 * that needs it (ext_authz Check, a codec fallback) and the resident memory
 * it adds — each measured in a fresh process that starts the way the sidecar
 * does (through Node's compile cache, bin/compile-cache.js).
 *
 *   npm run bench:proto-load -- [--rounds 5]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { COMPILE_CACHE_DIR } from '../bin/compile-cache.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, child: { type: 'boolean', default: false } } });

if (values.child) {
  const { loadedProtos } = await import('../src/server/proto/deferred.ts');
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  loadedProtos();
  const ms = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ ms, mb: (process.memoryUsage().rss - rss0) / 2 ** 20 })}\n`);
} else {
  const rounds = Number(values.rounds);
  const self = fileURLToPath(import.meta.url);
  const env = { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE_DIR };
  // One run fills the compile cache for these modules, as an earlier start of the sidecar would.
  execFileSync(process.execPath, [self, '--child'], { env });
  const runs: Array<{ ms: number; mb: number }> = [];
  for (let i = 0; i < rounds; i++)
    runs.push(JSON.parse(execFileSync(process.execPath, [self, '--child'], { env, encoding: 'utf8' })) as { ms: number; mb: number });
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
  process.stdout.write(
    `proto-loader on first use, ${rounds} fresh processes: ${median(runs.map((r) => r.ms)).toFixed(0)} ms (median; ` +
      `${runs.map((r) => r.ms.toFixed(0)).join(', ')}), +${median(runs.map((r) => r.mb)).toFixed(1)} MB RSS (median)\n`,
  );
}
