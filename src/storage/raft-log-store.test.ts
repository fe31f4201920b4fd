import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { isSynodError } from '../base/index.js';
import type { Entry, HardState } from '../raft/types.js';
import { RaftLogStore } from './raft-log-store.js';
import { logKey, metaKeys } from './record-codec.js';
import { codeOf } from '../../test/support/error-codes.js';

const directories: string[] = [];
const stores: RaftLogStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => undefined);
  for (const path of directories.splice(0)) rmSync(path, { recursive: true, force: true });
});

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'synod-log-'));
  directories.push(directory);
  return directory;
}

async function openStore(path = temporaryDirectory()): Promise<RaftLogStore> {
  const store = await RaftLogStore.open({ path });
  stores.push(store);
  return store;
}

function entries(from: number, terms: number[]): Entry[] {
  const data = (i: number) => new Uint8Array(10).fill(i);
  return terms.map((term, i) => ({ term, index: from + i, type: 'normal', data: data(i) }));
}


async function codeOfAsync(body: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await body();
  } catch (error) {
    if (isSynodError(error)) return error.code;
    throw error;
  }
  return undefined;
}

function append(store: RaftLogStore, list: Entry[]): Promise<void> {
  return store.persist({ snapshot: null, entries: list, hardState: null });
}

function persistHardState(store: RaftLogStore, hardState: HardState): Promise<void> {
  return store.persist({ snapshot: null, entries: [], hardState });
}

function binaryDatabase(name: string) {
  return { name, encoding: 'binary', keyEncoding: 'binary' } as const;
}

/** Rewrites the record under `key` of database `name` with the byte at `offset` flipped. */
async function flipByte(path: string, name: string, key: Buffer, offset: number): Promise<void> {
  const root = openLmdb({ path, maxDbs: 4, overlappingSync: false });
  const database = root.openDB<Buffer, Buffer>(binaryDatabase(name));
  const record = Buffer.from(database.getBinary(key)!);
  record[offset]! ^= 0x40;
  await database.put(key, record);
  await root.close();
}

function flipEntryByte(path: string, index: number, offset: number): Promise<void> {
  return flipByte(path, 'log', logKey(index), offset);
}

describe('RaftLogStore conformance with MemoryStorage', () => {
  it('appends, truncates a conflicting suffix, and reads back [lo, hi)', async () => {
    const store = await openStore();
    await append(store, entries(1, [1, 1, 2, 2]));
    await append(store, entries(3, [3]));
    expect(store.lastIndex()).toBe(3);
    expect(store.entries(1, 4, Infinity).map((e) => e.term)).toEqual([1, 1, 3]);
    expect(store.term(3)).toBe(3);
  });

  it('limits entries by bytes but always returns at least one', async () => {
    const store = await openStore();
    await append(store, entries(1, [1, 1, 1, 1]));
    expect(store.entries(1, 5, 1)).toHaveLength(1);
    expect(store.entries(1, 5, 2 * (10 + 24))).toHaveLength(2);
  });

  it('compacts and snapshots with named errors below and above the log', async () => {
    const store = await openStore();
    await append(store, entries(1, [1, 1, 2, 2, 2]));
    await store.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([7]));
    await store.compact(3);
    expect(store.firstIndex()).toBe(4);
    expect(store.term(3)).toBe(2);
    expect(codeOf(() => store.term(2))).toBe('SYNOD_LOG_COMPACTED');
    expect(codeOf(() => store.entries(3, 5, Infinity))).toBe('SYNOD_LOG_COMPACTED');
    expect(codeOf(() => store.entries(4, 7, Infinity))).toBe('SYNOD_LOG_UNAVAILABLE');
    expect(codeOf(() => store.term(6))).toBe('SYNOD_LOG_UNAVAILABLE');
    const stale = () => store.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array());
    expect(await codeOfAsync(stale)).toBe('SYNOD_SNAPSHOT_OUT_OF_DATE');
    expect(await codeOfAsync(() => store.compact(3))).toBe('SYNOD_LOG_COMPACTED');
    expect(store.snapshot().data).toEqual(new Uint8Array([7]));
  });

  it('replaces everything with a persisted snapshot and appends after it', async () => {
    const store = await openStore();
    await append(store, entries(1, [1, 1]));
    const metadata = { index: 10, term: 4, confState: { voters: [1, 2], learners: [] } };
    const snapshot = { metadata, data: new Uint8Array([1, 2]) };
    await store.persist({ snapshot, entries: entries(11, [5]), hardState: null });
    expect(store.firstIndex()).toBe(11);
    expect(store.lastIndex()).toBe(11);
    expect(store.initialState().confState.voters).toEqual([1, 2]);
    const stale = () => store.persist({ snapshot, entries: [], hardState: null });
    expect(await codeOfAsync(stale)).toBe('SYNOD_SNAPSHOT_OUT_OF_DATE');
    expect(store.lastIndex()).toBe(11); // The rejected persist rolled back alone.
  });

  it('merges concurrent persists and keeps their order', async () => {
    const store = await openStore();
    await Promise.all([
      append(store, entries(1, [1, 1, 1])),
      append(store, entries(3, [2, 2])),
      store.persist({ snapshot: null, entries: [], hardState: { term: 2, vote: 1, commit: 2 } }),
    ]);
    expect(store.entries(1, 5, Infinity).map((e) => e.term)).toEqual([1, 1, 2, 2]);
    expect(store.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 2 });
  });

  it('commits the rest of a group when one persist in it is rejected', async () => {
    const store = await openStore();
    const metadata = { index: 0, term: 0, confState: { voters: [], learners: [] } };
    const stale = { metadata, data: new Uint8Array() };
    const results = await Promise.allSettled([
      append(store, entries(1, [1, 1])),
      store.persist({ snapshot: stale, entries: entries(3, [9]), hardState: null }),
      append(store, entries(3, [2])),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(store.entries(1, 4, Infinity).map((e) => e.term)).toEqual([1, 1, 2]);
  });

  it('throws SYNOD_STORAGE_CLOSED after close', async () => {
    const store = await RaftLogStore.open({ path: temporaryDirectory() });
    await store.close();
    expect(codeOf(() => store.lastIndex())).toBe('SYNOD_STORAGE_CLOSED');
    expect(codeOf(() => store.entries(1, 1, 0))).toBe('SYNOD_STORAGE_CLOSED');
    expect(await codeOfAsync(() => append(store, entries(1, [1])))).toBe('SYNOD_STORAGE_CLOSED');
    expect(await codeOfAsync(() => store.close())).toBe('SYNOD_STORAGE_CLOSED');
  });
});

describe('RaftLogStore restart and corruption', () => {
  it('reopens with identical hard state, entries and snapshot', async () => {
    const path = temporaryDirectory();
    const bootstrapConfState = { voters: [1, 2, 3], learners: [] };
    const first = await RaftLogStore.open({ path, bootstrapConfState });
    expect(first.openReport.created).toBe(true);
    await append(first, entries(1, [1, 1, 2, 2, 3]));
    await first.createSnapshot(2, { voters: [1, 2, 3], learners: [4] }, new Uint8Array([9, 9]));
    await first.compact(2);
    await persistHardState(first, { term: 3, vote: 2, commit: 4 });
    await first.close();
    const second = await openStore(path);
    expect(second.openReport).toEqual({ truncatedFrom: null, scannedEntries: 3, created: false });
    expect(second.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 4 });
    const confState = { voters: [1, 2, 3], learners: [4] };
    expect(second.snapshot().metadata).toEqual({ index: 2, term: 1, confState });
    expect(second.snapshot().data).toEqual(new Uint8Array([9, 9]));
    expect([second.firstIndex(), second.lastIndex(), second.term(2)]).toEqual([3, 5, 1]);
    expect(second.entries(3, 6, Infinity)).toEqual(entries(1, [1, 1, 2, 2, 3]).slice(2));
  });

  it('truncates a corrupt uncommitted tail on open and reports it', async () => {
    const path = temporaryDirectory();
    const first = await openStore(path);
    await append(first, entries(1, [1, 1, 1, 2, 2]));
    await persistHardState(first, { term: 2, vote: 1, commit: 3 });
    await first.close();
    await flipEntryByte(path, 5, 30);
    await flipEntryByte(path, 4, 8);
    const second = await openStore(path);
    expect(second.openReport.truncatedFrom).toBe(4);
    expect(second.lastIndex()).toBe(3);
    await second.close();
    const third = await openStore(path);
    expect(third.openReport.truncatedFrom).toBe(null);
    expect(third.entries(1, 4, Infinity).map((e) => e.term)).toEqual([1, 1, 1]);
  });

  it('refuses to open over a corrupt hard state', async () => {
    const path = temporaryDirectory();
    await (await RaftLogStore.open({ path })).close();
    await flipByte(path, 'meta', metaKeys.hardState, 3);
    await expect(RaftLogStore.open({ path })).rejects.toThrow(/meta\/hard-state is corrupt/);
  });

  it('refuses to truncate a committed entry and names the corrupt key on read', async () => {
    const path = temporaryDirectory();
    const first = await openStore(path);
    await append(first, entries(1, [1, 1, 1]));
    await persistHardState(first, { term: 1, vote: 1, commit: 3 });
    await first.close();
    await flipEntryByte(path, 3, 29);
    const corrupt = { code: 'SYNOD_STORAGE_CORRUPT' };
    await expect(RaftLogStore.open({ path })).rejects.toMatchObject(corrupt);
    await flipEntryByte(path, 3, 29); // Repair, then damage an entry below a good one.
    await flipEntryByte(path, 1, 12);
    await expect(RaftLogStore.open({ path })).rejects.toThrow(/log\/1 is corrupt: checksum/);
    const blind = await RaftLogStore.open({ path, tailScanEntriesMax: 1 });
    stores.push(blind);
    expect(codeOf(() => blind.entries(1, 3, Infinity))).toBe('SYNOD_STORAGE_CORRUPT');
    expect(() => blind.term(1)).toThrow(/log\/1/);
    expect(blind.term(2)).toBe(1);
  });
});
