/**
 * How long writes were unavailable around each fault: the longest stretch, overlapping the fault
 * (from its start to the first OK write after its heal, or at most `recoveryWindowMs` after the
 * heal), during which no write completed OK.
 * Writes that keep succeeding through a fault (a follower killed, a minority cut off) give a
 * stretch no longer than the workload's own pace. Measured the same way for every target.
 */

import type { FaultKind, FaultRecord, HistoryEntry } from './types.js';

/** How long after a heal the search for the gap continues when no write succeeds. */
export const recoveryWindowMs = 10_000;

/** Unavailability per fault kind: each fault's gap, and p50 / max over them. */
export interface AvailabilityByKind {
  readonly kind: FaultKind;
  readonly faults: number;
  readonly gapsMs: readonly number[];
  readonly p50Ms: number;
  readonly maxMs: number;
}

/**
 * `isWrite` says which history entries are writes (register put/cas, set add, bank transfer…);
 * `endMs` is when the run stopped issuing operations.
 */
export function writeUnavailability(options: {
  readonly history: readonly HistoryEntry[];
  readonly faults: readonly FaultRecord[];
  readonly isWrite: (entry: HistoryEntry) => boolean;
  readonly endMs: number;
}): AvailabilityByKind[] {
  const okWrites = options.history
    .filter((entry) => entry.outcome === 'ok' && options.isWrite(entry))
    .map((entry) => entry.completedAtMs)
    .sort((a, b) => a - b);
  const byKind = new Map<FaultKind, number[]>();
  for (const fault of options.faults) {
    const healedAtMs = fault.healedAtMs ?? options.endMs;
    const firstAfterHeal = okWrites.find((time) => time >= healedAtMs);
    const windowEnd = Math.min(options.endMs, firstAfterHeal ?? healedAtMs + recoveryWindowMs);
    const gap = longestGap(okWrites, fault.startedAtMs, windowEnd);
    const gaps = byKind.get(fault.kind) ?? [];
    gaps.push(gap);
    byKind.set(fault.kind, gaps);
  }
  return [...byKind].map(([kind, gaps]) => {
    const sorted = [...gaps].sort((a, b) => a - b);
    return {
      kind, faults: gaps.length, gapsMs: gaps,
      p50Ms: sorted[Math.floor((sorted.length - 1) / 2)]!,
      maxMs: sorted[sorted.length - 1]!,
    };
  });
}

/**
 * The longest interval without a completion in `times` (sorted ascending) that overlaps
 * [from, to]: it starts at the last completion before `from` (or `from` if none) and the window
 * ends at `to`, so a stretch still open at `to` counts up to `to`.
 */
export function longestGap(times: readonly number[], from: number, to: number): number {
  let previous = from;
  for (const time of times) {
    if (time >= from) break;
    previous = time;
  }
  let longest = 0;
  for (const time of times) {
    if (time < from) continue;
    if (time > to) break;
    longest = Math.max(longest, time - previous);
    previous = time;
  }
  longest = Math.max(longest, to - previous);
  return Math.round(longest);
}
