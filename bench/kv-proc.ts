/**
 * Server-side cost from Linux's /proc: CPU time (utime + stime of every thread of a process, from
 * /proc/<pid>/stat) and resident memory (VmRSS from /proc/<pid>/status), summed over the members
 * of a target.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { assert } from '../src/base/index.js';

/** Clock ticks per second of /proc CPU times (USER_HZ); 100 on every common Linux build. */
const clockTicksPerSecond = readClockTicks();

function readClockTicks(): number {
  try {
    const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 });
    const value = Number(text.trim());
    return Number.isSafeInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

/** CPU time a process has used so far, user plus system, in microseconds. */
export function cpuMicroseconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is parenthesised and may contain spaces; fields after it are not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Field 3 (state) is fields[0], so utime (field 14) is fields[11] and stime (15) fields[12].
  const ticks = Number(fields[11]) + Number(fields[12]);
  assert(Number.isFinite(ticks) && ticks >= 0, `CPU ticks of pid ${pid}`);
  return (ticks * 1e6) / clockTicksPerSecond;
}

/** Resident set size of a process in bytes (VmRSS). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert(match !== null, `VmRSS of pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** CPU microseconds summed over processes. */
export function totalCpuMicroseconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMicroseconds(pid), 0);
}

/** Resident bytes summed over processes. */
export function totalResidentBytes(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + residentBytes(pid), 0);
}
