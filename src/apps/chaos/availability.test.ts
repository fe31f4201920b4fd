import { describe, expect, it } from 'vitest';
import { longestGap, writeUnavailability } from './availability.js';
import type { HistoryEntry } from './types.js';

function write(completedAtMs: number, outcome: 'ok' | 'unknown' = 'ok'): HistoryEntry {
  return {
    workload: 'set', clientId: 0, member: 'n1', call: null, invokedAtMs: completedAtMs - 1,
    completedAtMs, outcome,
  };
}

describe('write unavailability', () => {
  it('measures the longest stretch without an OK write that overlaps the fault', () => {
    const times = [0, 10, 20, 30, 1_530, 1_540, 1_550];
    expect(longestGap(times, 25, 2_000)).toBe(1_500); // 30 → 1530.
    expect(longestGap(times, 1_540, 1_560)).toBe(10);
    expect(longestGap([0, 10], 100, 400)).toBe(390); // Nothing after the fault: open until `to`.
    expect(longestGap([], 100, 400)).toBe(300);
  });

  it('groups gaps by fault kind with p50 and max, ignoring failed and unknown writes', () => {
    const history = [0, 100, 200, 1_200, 1_300, 5_000, 5_100].map((t) => write(t));
    history.push(write(700, 'unknown'));
    const result = writeUnavailability({
      history,
      faults: [
        { kind: 'kill', startedAtMs: 150, healedAtMs: 210, detail: 'n1' },
        { kind: 'kill', startedAtMs: 1_250, healedAtMs: 1_310, detail: 'n2' },
      ],
      isWrite: () => true,
      endMs: 5_200,
    });
    expect(result).toEqual([{ kind: 'kill', faults: 2, gapsMs: [1_000, 3_700], p50Ms: 1_000, maxMs: 3_700 }]);
  });
});
