import { describe, expect, it } from 'vitest';
import { MemoryStorage } from './storage.js';
import type { Entry } from './types.js';
import { codeOf } from '../../test/support/error-codes.js';

function entries(from: number, terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: from + i, type: 'normal', data: new Uint8Array(10) }));
}


describe('MemoryStorage', () => {
  it('appends, truncates a conflicting suffix, and reads back [lo, hi)', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, [1, 1, 2, 2]));
    storage.append(entries(3, [3]));
    expect(storage.lastIndex()).toBe(3);
    expect(storage.entries(1, 4, Infinity).map((e) => e.term)).toEqual([1, 1, 3]);
    expect(storage.term(3)).toBe(3);
  });

  it('limits entries by bytes but always returns at least one', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, [1, 1, 1, 1]));
    expect(storage.entries(1, 5, 1)).toHaveLength(1);
    expect(storage.entries(1, 5, 2 * (10 + 24))).toHaveLength(2);
  });

  it('compacts and snapshots with named errors below and above the log', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, [1, 1, 2, 2, 2]));
    storage.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([7]));
    storage.compact(3);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(2);
    expect(codeOf(() => storage.term(2))).toBe('SYNOD_LOG_COMPACTED');
    expect(codeOf(() => storage.entries(3, 5, Infinity))).toBe('SYNOD_LOG_COMPACTED');
    expect(codeOf(() => storage.entries(4, 7, Infinity))).toBe('SYNOD_LOG_UNAVAILABLE');
    expect(codeOf(() => storage.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array()))).toBe('SYNOD_SNAPSHOT_OUT_OF_DATE');
  });

  it('replaces everything with an applied snapshot and appends after it', () => {
    const storage = new MemoryStorage();
    storage.append(entries(1, [1, 1]));
    storage.applySnapshot({ metadata: { index: 10, term: 4, confState: { voters: [1, 2], learners: [] } }, data: new Uint8Array() });
    expect(storage.firstIndex()).toBe(11);
    expect(storage.lastIndex()).toBe(10);
    storage.append(entries(11, [5]));
    expect(storage.lastIndex()).toBe(11);
    expect(storage.initialState().confState.voters).toEqual([1, 2]);
  });
});
