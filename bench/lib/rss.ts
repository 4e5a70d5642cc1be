/** Resident memory of another process, from /proc/<pid>/status (Linux). */
import { readFileSync } from 'node:fs';

/** VmRSS of `pid` in MB (2^20 bytes, as top and ps count); NaN when it cannot be read (process gone, not Linux). */
export function readRssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}
