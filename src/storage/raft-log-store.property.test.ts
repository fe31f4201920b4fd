// Optimized versus naive: random sequences of writes applied to RaftLogStore and to the reference
// MemoryStorage must leave both with the same log, hard state and snapshot, also across reopen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import { MemoryStorage } from '../raft/storage.js';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { RaftLogStore } from './raft-log-store.js';

type Operation =
  | { kind: 'append'; start: number; increments: number[]; hardState: HardState | null }
  | { kind: 'install'; ahead: number; termAhead: number; voters: number[] }
  | { kind: 'snapshot'; at: number; byte: number }
  | { kind: 'compact'; at: number }
  | { kind: 'reopen' };

const hardStateArbitrary = fc.record({ term: fc.nat(9), vote: fc.nat(5), commit: fc.nat(40) });
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    kind: fc.constant('append' as const),
    start: fc.nat(),
    increments: fc.array(fc.nat(1), { maxLength: 6 }),
    hardState: fc.option(hardStateArbitrary),
  }) },
  fc.record({
    kind: fc.constant('install' as const),
    ahead: fc.integer({ min: -2, max: 4 }),
    termAhead: fc.nat(2),
    voters: fc.array(fc.nat(5), { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('snapshot' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('compact' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('reopen' as const) }),
);

/** Picks an index in `[lo, hi]` from a raw draw. */
function pick(raw: number, lo: number, hi: number): number {
  return lo + (raw % (hi - lo + 1));
}

function newEntries(reference: MemoryStorage, start: number, increments: number[]): Entry[] {
  const dummy = reference.firstIndex() - 1;
  let term = Math.max(1, reference.term(Math.max(start - 1, dummy)));
  return increments.map((increment, i) => {
    term += increment;
    return { term, index: start + i, type: 'normal', data: new Uint8Array([start + i, term]) };
  });
}

async function codeOf(body: () => unknown): Promise<string | null> {
  try {
    await body();
    return null;
  } catch (error) {
    if (isSynodError(error)) return error.code;
    throw error;
  }
}

async function apply(
  operation: Operation,
  reference: MemoryStorage,
  store: RaftLogStore,
): Promise<void> {
  const dummy = reference.firstIndex() - 1;
  const last = reference.lastIndex();
  if (operation.kind === 'append') {
    const start = Math.max(1, pick(operation.start, dummy - 2, last + 1));
    const entries = newEntries(reference, start, operation.increments);
    reference.append(entries);
    if (operation.hardState !== null) reference.setHardState(operation.hardState);
    await store.persist({ snapshot: null, entries, hardState: operation.hardState });
  } else if (operation.kind === 'install') {
    const index = Math.max(0, last + operation.ahead);
    const term = reference.term(Math.max(dummy, Math.min(index, last))) + operation.termAhead;
    const confState = { voters: operation.voters, learners: [] };
    const metadata = { index, term: Math.max(1, term), confState };
    const snapshot: Snapshot = { metadata, data: new Uint8Array([index]) };
    const expected = await codeOf(() => reference.applySnapshot(snapshot));
    const actual = await codeOf(() => store.persist({ snapshot, entries: [], hardState: null }));
    expect(actual).toBe(expected);
  } else if (operation.kind === 'snapshot') {
    const at = pick(operation.at, Math.max(0, dummy - 1), last);
    const data = new Uint8Array([operation.byte]);
    const confState = { voters: [1], learners: [at] };
    const expected = await codeOf(() => reference.createSnapshot(at, confState, data));
    expect(await codeOf(() => store.createSnapshot(at, confState, data))).toBe(expected);
  } else if (operation.kind === 'compact') {
    const at = pick(operation.at, Math.max(0, dummy - 1), last);
    const expected = await codeOf(() => reference.compact(at));
    expect(await codeOf(() => store.compact(at))).toBe(expected);
  }
}

function expectSame(reference: MemoryStorage, store: RaftLogStore): void {
  const first = reference.firstIndex();
  const last = reference.lastIndex();
  expect([store.firstIndex(), store.lastIndex()]).toEqual([first, last]);
  expect(store.term(first - 1)).toBe(reference.term(first - 1));
  const expected = reference.entries(first, last + 1, Infinity);
  expect(store.entries(first, last + 1, Infinity)).toEqual(expected);
  expect(store.initialState()).toEqual(reference.initialState());
  expect(store.snapshot()).toEqual(reference.snapshot());
}

describe('RaftLogStore against MemoryStorage', () => {
  it('agrees on every random sequence of writes, also after reopen', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operationArbitrary, { maxLength: 25 }), async (operations) => {
        const path = mkdtempSync(join(tmpdir(), 'synod-log-property-'));
        let store = await RaftLogStore.open({ path });
        try {
          const reference = new MemoryStorage();
          for (const operation of operations) {
            if (operation.kind === 'reopen') {
              await store.close();
              store = await RaftLogStore.open({ path });
              expect(store.openReport.truncatedFrom).toBe(null);
            } else {
              await apply(operation, reference, store);
            }
            expectSame(reference, store);
          }
          await store.close();
          store = await RaftLogStore.open({ path });
          expectSame(reference, store);
        } finally {
          await store.close().catch(() => undefined);
          rmSync(path, { recursive: true, force: true });
        }
      }),
      { numRuns: 60, seed: 20_260_101 },
    );
  });
});
