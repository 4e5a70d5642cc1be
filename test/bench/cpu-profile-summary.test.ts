// bench/cpu-profile-summary.ts (`npm run bench:profile`) on a small synthetic profile: idle left out, self and
// inclusive shares, and the call paths into one function.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const SCRIPT = new URL('../../bench/cpu-profile-summary.ts', import.meta.url).pathname;
const frame = (functionName: string, url = 'file:///x/app.ts', lineNumber = 0) => ({ functionName, url, lineNumber, scriptId: '1', columnNumber: 0 });

test('shares of busy time, idle excluded; callers of one function', () => {
  const dir = mkdtempSync(join(tmpdir(), 'igw-prof-'));
  try {
    // root → handle → { parse, write }; plus (idle). Samples: parse 30 µs, write 10 µs, handle 10 µs, idle 50 µs.
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 5] },
        { id: 2, callFrame: frame('handle', 'file:///x/app.ts', 9), children: [3, 4] },
        { id: 3, callFrame: frame('parse', 'file:///x/json.ts', 19) },
        { id: 4, callFrame: frame('write', 'file:///x/app.ts', 29) },
        { id: 5, callFrame: frame('(idle)', '') },
      ],
      samples: [3, 3, 3, 4, 2, 5, 5, 5, 5, 5],
      timeDeltas: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10],
    };
    const file = join(dir, 'p.cpuprofile');
    writeFileSync(file, JSON.stringify(profile));
    const run = (...args: string[]): string => execFileSync(process.execPath, [SCRIPT, file, ...args], { encoding: 'utf8' });
    const out = run();
    assert.match(out, /: 0 ms busy/);
    assert.match(out, /self\n\s+60\.0 %\s+parse \/x\/json\.ts:20\n\s+20\.0 %\s+(handle|write)/);
    const inclusive = out.slice(out.indexOf('inclusive\n'));
    assert.match(inclusive, /\n\s*100\.0 %\s+handle \/x\/app\.ts:10\n/);
    assert.match(inclusive, /\n\s+60\.0 %\s+parse \/x\/json\.ts:20\n/);
    assert.doesNotMatch(out, /idle/);
    assert.match(run('--by', 'file'), /self\n\s+60\.0 %\s+\/x\/json\.ts\n\s+40\.0 %\s+\/x\/app\.ts/);
    assert.match(run('--callers', 'write'), /20\.0 %\s+handle \/x\/app\.ts:10 <- \(root\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
