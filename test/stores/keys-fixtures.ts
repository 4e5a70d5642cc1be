/** Key records for store tests, and a quiet logger that remembers what it was told. */
import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateApiKey } from '../../src/crypto/api-key-format.ts';
import type { KeyRecord } from '../../src/stores/keys/port.ts';
import { waitFor } from '../helpers/wait.ts';

export interface TestKey {
  readonly key: string;
  readonly record: KeyRecord;
}

export function makeKey(extra: Partial<Omit<KeyRecord, 'id' | 'hash'>> = {}): TestKey {
  const k = generateApiKey();
  return {
    key: k.key,
    record: {
      id: k.id,
      hash: k.hash,
      principal: 'alice',
      org: 'acme',
      tenant: 'research',
      tier: 'standard',
      roles: [],
      models: ['*'],
      endpoints: ['*'],
      createdAt: Date.parse('2026-01-01T00:00:00Z'),
      expiresAt: null,
      revokedAt: null,
      ...extra,
    },
  };
}

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Polls `check` until it holds (see helpers/wait.ts); resolves with how long that took, in ms. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  await waitFor(check, { what, timeoutMs, intervalMs: 10 });
  return Date.now() - started;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit. */
  readonly ms: number;
  /** Date.now() when the process exited. */
  readonly exitedAt: number;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** `node src/cli/main.ts keys …` as a child process. */
export async function runKeysCli(args: readonly string[], opts: { stdin?: string } = {}): Promise<CliResult> {
  const started = Date.now();
  const child = spawn(process.execPath, ['src/cli/main.ts', 'keys', ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(opts.stdin ?? '');
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const exitedAt = Date.now();
  return { code, stdout, stderr, ms: exitedAt - started, exitedAt };
}
