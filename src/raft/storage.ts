/**
 * What the core reads of the durable log. The driver writes to storage (as a `Ready` instructs) and
 * the core reads from it; the core never writes. Ranges are half-open: `[lo, hi)`.
 */

import { assert, SynodError } from '../base/index.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { emptyHardState } from './types.js';

/** Read access to durable Raft state. Implementations may be on disk or in memory. */
export interface Storage {
  /** The persisted hard state and the membership at the last snapshot or applied conf change. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in `[lo, hi)`, at least one if `lo < hi`, stopping early once their data exceeds
   * `bytesMax`. Throws SYNOD_LOG_COMPACTED if `lo ≤` the snapshot index, SYNOD_LOG_UNAVAILABLE if
   * `hi > lastIndex() + 1`.
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /**
   * The term of the entry at `index`, for `firstIndex() - 1 ≤ index ≤ lastIndex()` (the snapshot's
   * own index included). Throws SYNOD_LOG_COMPACTED below, SYNOD_LOG_UNAVAILABLE above.
   */
  term(index: number): number;
  /** The index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** The index of the last entry held, or the snapshot index if the log is empty. */
  lastIndex(): number;
  /** The latest snapshot. Throws SYNOD_SNAPSHOT_TEMPORARILY_UNAVAILABLE if one is being built. */
  snapshot(): Snapshot;
}

/** The data bytes of entries, for batch-size limits. */
export function entriesBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.length + entryOverheadBytes;
  return total;
}

/** Approximate per-entry header cost counted toward message and batch size limits. */
export const entryOverheadBytes = 24;

/** Cuts `entries` to the longest prefix within `bytesMax`, keeping at least one entry. */
export function limitBytes(entries: Entry[], bytesMax: number): Entry[] {
  if (entries.length === 0) return entries;
  let total = entries[0]!.data.length + entryOverheadBytes;
  let count = 1;
  while (count < entries.length) {
    total += entries[count]!.data.length + entryOverheadBytes;
    if (total > bytesMax) break;
    count++;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

const emptyConfState: ConfState = Object.freeze({ voters: [], learners: [] });

/**
 * An in-memory `Storage`, used by the simulator and tests, and as the reference the durable engine
 * is tested against. `entries[0]` is a dummy holding the snapshot's index and term.
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = emptyHardState;
  #snapshot: Snapshot = { metadata: { index: 0, term: 0, confState: emptyConfState }, data: new Uint8Array() };
  #entries: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array() }];

  /** A storage for a new member of a cluster whose initial voters are `voters`. */
  static bootstrap(confState: ConfState): MemoryStorage {
    const storage = new MemoryStorage();
    storage.#snapshot = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array() };
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  /** Records the hard state (the driver's persist step). */
  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    const offset = this.#entries[0]!.index;
    if (lo <= offset) throw new SynodError('SYNOD_LOG_COMPACTED');
    if (hi > this.lastIndex() + 1) {
      throw new SynodError('SYNOD_LOG_UNAVAILABLE', `entries [${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    }
    if (lo >= hi) return [];
    return limitBytes(this.#entries.slice(lo - offset, hi - offset), bytesMax);
  }

  term(index: number): number {
    const offset = this.#entries[0]!.index;
    if (index < offset) throw new SynodError('SYNOD_LOG_COMPACTED');
    if (index - offset >= this.#entries.length) throw new SynodError('SYNOD_LOG_UNAVAILABLE');
    return this.#entries[index - offset]!.term;
  }

  firstIndex(): number {
    return this.#entries[0]!.index + 1;
  }

  lastIndex(): number {
    return this.#entries[0]!.index + this.#entries.length - 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Replaces the whole log with `snapshot` (the driver's persist step for `Ready.snapshot`). */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.#snapshot.metadata.index) {
      throw new SynodError('SYNOD_SNAPSHOT_OUT_OF_DATE');
    }
    this.#snapshot = snapshot;
    this.#entries = [{ term: snapshot.metadata.term, index: snapshot.metadata.index, type: 'normal', data: new Uint8Array() }];
  }

  /**
   * Records a snapshot the application took at `index` (≤ last index), with its membership there.
   * Entries are kept; call `compact` to drop them.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.#snapshot.metadata.index) throw new SynodError('SYNOD_SNAPSHOT_OUT_OF_DATE');
    assert(index <= this.lastIndex(), `snapshot index ${index} beyond last index ${this.lastIndex()}`);
    this.#snapshot = { metadata: { index, term: this.term(index), confState }, data };
    return this.#snapshot;
  }

  /** Drops entries before `compactIndex`; the entry at `compactIndex` becomes the dummy. */
  compact(compactIndex: number): void {
    const offset = this.#entries[0]!.index;
    if (compactIndex <= offset) throw new SynodError('SYNOD_LOG_COMPACTED');
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    const dummy = this.#entries[compactIndex - offset]!;
    this.#entries = [{ term: dummy.term, index: dummy.index, type: 'normal', data: new Uint8Array() }, ...this.#entries.slice(compactIndex - offset + 1)];
  }

  /**
   * Appends `entries`, first truncating any existing suffix they overwrite (the driver's persist
   * step for `Ready.entries`). Entries at or below the snapshot index are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const kept = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const offset = kept[0]!.index - this.#entries[0]!.index;
    assert(offset <= this.#entries.length, `missing log entry: last ${this.lastIndex()}, appending at ${kept[0]!.index}`);
    this.#entries.length = offset;
    for (const entry of kept) this.#entries.push(entry);
  }
}
