/**
 * Subcommand dispatch (src/cli/dispatch.ts): in-process against a made-up
 * group, then through `node src/cli/main.ts` for what each real group has
 * always answered to a help word, a missing and an unknown subcommand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { asUsage, type CommandGroup, dispatch, type Output, usage, UsageError } from '../../src/cli/dispatch.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';

function capture(): Output & { text: { stdout: string; stderr: string } } {
  const text = { stdout: '', stderr: '' };
  return {
    text,
    stdout: { write: (s: string) => (text.stdout += s) },
    stderr: { write: (s: string) => (text.stderr += s) },
  };
}

class StoreDown extends Error {}

const ran: string[][] = [];
const GROUP: CommandGroup = {
  name: 'things',
  header: 'Usage: things <command>\n',
  commands: {
    make: { usage: '  make NAME\n', run: (argv) => (ran.push(argv), 0) },
    fail: { usage: '  fail\n', run: () => Promise.reject(new StoreDown('store down')) },
    misuse: {
      usage: '  misuse\n',
      run: () =>
        asUsage((): number => {
          throw new RangeError('--count must be a number');
        }),
    },
    crash: {
      usage: '  crash\n',
      run: () => {
        throw new TypeError('bug');
      },
    },
  },
  footer: '(end)\n',
  exitCodeFor: (err) => (err instanceof StoreDown ? 1 : undefined),
};
const USAGE = 'Usage: things <command>\n  make NAME\n  fail\n  misuse\n  crash\n(end)\n';

test("the usage is the header, each subcommand's lines in table order, and the footer", () => {
  assert.equal(usage(GROUP), USAGE);
});

test('a known subcommand runs with the rest of the command line; its exit code is returned', async () => {
  const out = capture();
  assert.equal(await dispatch(GROUP, ['make', 'x', '--flag'], out), 0);
  assert.deepEqual(ran.at(-1), ['x', '--flag']);
  assert.deepEqual(out.text, { stdout: '', stderr: '' });
});

test('help words: usage on stdout, exit 0', async () => {
  for (const word of ['help', '--help', '-h']) {
    const out = capture();
    assert.equal(await dispatch(GROUP, [word], out), 0, word);
    assert.deepEqual(out.text, { stdout: USAGE, stderr: '' }, word);
  }
});

test('missing or unknown subcommand: exit 2; unknown ones are named (Object.prototype members too)', async () => {
  let out = capture();
  assert.equal(await dispatch(GROUP, [], out), 2);
  assert.deepEqual(out.text, { stdout: '', stderr: USAGE });
  for (const name of ['nope', '--nope', 'constructor', '__proto__']) {
    out = capture();
    assert.equal(await dispatch(GROUP, [name], out), 2, name);
    assert.deepEqual(out.text, { stdout: '', stderr: `things: unknown command '${name}'\n\n${USAGE}` }, name);
  }
});

test("the older groups' way: usage on stdout for missing and unknown, `help` not a help word", async () => {
  const legacy: CommandGroup = { ...GROUP, helpWords: ['--help', '-h'], missingTo: 'stdout', unknown: 'as-missing' };
  for (const argv of [[], ['nope'], ['help']]) {
    const out = capture();
    assert.equal(await dispatch(legacy, argv, out), 2, argv.join(' '));
    assert.deepEqual(out.text, { stdout: USAGE, stderr: '' }, argv.join(' '));
  }
});

test("errors a subcommand throws: UsageError → 2, exitCodeFor's code, or propagated", async () => {
  let out = capture();
  assert.equal(await dispatch(GROUP, ['misuse'], out), 2);
  assert.equal(out.text.stderr, 'things misuse: --count must be a number\n');
  out = capture();
  assert.equal(await dispatch(GROUP, ['fail'], out), 1);
  assert.equal(out.text.stderr, 'things fail: store down\n');
  await assert.rejects(dispatch(GROUP, ['crash'], capture()), TypeError);
  assert.ok(new UsageError('x') instanceof Error);
});

/** What each group of the real CLI answers; these are the answers scripts may rely on. */
test('the CLI: help words, missing and unknown subcommands, per group', () => {
  const cases: Array<[args: string[], exit: number, stream: 'stdout' | 'stderr', first: RegExp]> = [
    [[], 2, 'stdout', /^inference-gateway — /],
    [['--help'], 0, 'stdout', /^inference-gateway — /],
    [['help'], 0, 'stdout', /^inference-gateway — /],
    [['--bogus'], 2, 'stdout', /^inference-gateway — /],
    [['bogus'], 2, 'stderr', /^inference-gateway: unknown command 'bogus'$/],
    [['keys'], 2, 'stderr', /^Usage: inference-gateway keys <command>/],
    [['keys', 'help'], 0, 'stdout', /^Usage: inference-gateway keys <command>/],
    [['keys', 'bogus'], 2, 'stderr', /^keys: unknown command 'bogus'$/],
    [['audit', '-h'], 0, 'stdout', /^Usage: inference-gateway audit <command>/],
    [['audit', 'nope'], 2, 'stderr', /^audit: unknown command 'nope'$/],
    [['config'], 2, 'stdout', /^Usage: inference-gateway config validate FILE$/],
    [['config', 'help'], 2, 'stdout', /^Usage: inference-gateway config validate FILE$/],
    [['config', '--help'], 0, 'stdout', /^Usage: inference-gateway config validate FILE$/],
    [['envoy', 'bogus'], 2, 'stdout', /^Usage: inference-gateway envoy path$/],
    [['snapshot', 'bogus'], 2, 'stdout', /^Usage:$/],
    [['snapshot', '-h'], 0, 'stdout', /^Usage:$/],
  ];
  for (const [args, exit, stream, first] of cases) {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8' });
    const label = `inference-gateway ${args.join(' ')}`;
    assert.equal(r.status, exit, `${label}: ${r.stderr}`);
    assert.match(r[stream].split('\n')[0] ?? '', first, label);
    assert.equal(r[stream === 'stdout' ? 'stderr' : 'stdout'], '', `${label}: nothing on the other stream`);
  }
});
