/** Describes the machine and software a benchmark ran on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';

export interface MachineInfo {
  /** `nproc` (CPUs this process may use). */
  nproc: number;
  cpuModel: string;
  memTotalBytes: number;
  kernel: string;
  node: string;
  envoy: string;
  envoyBin: string;
  git: { commit: string; dirty: boolean } | null;
}

function tryExec(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(envoy: { version: string; bin: string }, repoDir: string): MachineInfo {
  const nproc = Number(tryExec('nproc', [])) || availableParallelism();
  let cpuModel = 'unknown';
  let memTotalBytes = 0;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1] !== undefined) cpuModel = m[1].trim();
  } catch {
    // not Linux
  }
  try {
    const m = /^MemTotal:\s*(\d+)\s*kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m?.[1] !== undefined) memTotalBytes = Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  const commit = tryExec('git', ['-C', repoDir, 'rev-parse', '--short', 'HEAD']);
  const status = tryExec('git', ['-C', repoDir, 'status', '--porcelain']);
  return {
    nproc,
    cpuModel,
    memTotalBytes,
    kernel: `Linux ${release()}`,
    node: process.version,
    envoy: envoy.version,
    envoyBin: envoy.bin,
    git: commit === null ? null : { commit, dirty: status !== null && status !== '' },
  };
}

export function describeMachine(m: MachineInfo): string {
  const gib = (m.memTotalBytes / 2 ** 30).toFixed(1);
  return `${m.nproc} CPU (nproc), ${m.cpuModel}, ${gib} GiB RAM, ${m.kernel}, Node ${m.node}, Envoy ${m.envoy}`;
}
