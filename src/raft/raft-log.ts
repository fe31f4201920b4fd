/**
 * The node's whole log: durable entries in `Storage`, then the `Unstable` tail. It tracks the commit
 * index and how far the application has applied.
 *
 * Invariant: applied ≤ applying ≤ committed ≤ lastIndex(), and firstIndex() - 1 ≤ applied.
 */

import { assert, isSynodError, mark } from '../base/index.js';
import type { PlantedBug } from './config.js';
import type { Storage } from './storage.js';
import { limitBytes } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { Unstable } from './unstable.js';

/** The log: storage plus the unstable tail, with commit and apply positions. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  committed: number;
  /** Highest index handed to the application for applying (it may not have finished). */
  applying: number;
  /** Highest index the application reported applied. */
  applied: number;
  readonly #committedBytesMax: number;

  constructor(storage: Storage, options: { committedBytesMax: number }) {
    this.storage = storage;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    this.committed = firstIndex - 1;
    this.applying = firstIndex - 1;
    this.applied = firstIndex - 1;
    this.#committedBytesMax = options.committedBytesMax;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index known durable and consistent with this log (what a leader may count for itself). */
  durableLastIndex(): number {
    if (this.unstable.snapshot !== null) return 0;
    return Math.min(this.unstable.offset - 1, this.lastIndex());
  }

  /** The term at `index`, or null if compacted or beyond the end. */
  term(index: number): number | null {
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== null) return unstableTerm;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return null;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (isSynodError(error, 'SYNOD_LOG_COMPACTED') || isSynodError(error, 'SYNOD_LOG_UNAVAILABLE')) return null;
      throw error;
    }
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== null, 'the last entry has no term');
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /**
   * The follower's append (paper figure 2, AppendEntries receiver rules 2–5). Returns the index of
   * the last new entry, or null when the log does not contain an entry at `index` with `logTerm`.
   */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with committed entry ${this.committed}`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends after truncating conflicts; returns the new last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `truncating committed entries: after ${after} < committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * The index of the first entry in `entries` that is not already in the log with the same term, or
   * 0 if all are present. Entries past the end count as conflicting (new).
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * For fast backtracking (thesis §5.3 optimisation, as etcd's findConflictByTerm): the largest index
   * ≤ `index` whose term is ≤ `term`, and that term. Entries after it cannot match an entry of `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; ; i--) {
      const ourTerm = this.term(i);
      if (ourTerm === null) return { index: i, term: 0 };
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
  }

  /** Election restriction (paper §5.4.1): is (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Advances the commit index to `index` if the entry there has `term` (the leader's current term:
   * paper §5.4.2, figure 8). Returns whether it advanced.
   */
  maybeCommit(index: number, term: number, plantedBug: PlantedBug | null): boolean {
    if (index <= this.committed) return false;
    if (this.term(index) === term || plantedBug === 'commit-previous-term') {
      this.commitTo(index);
      return true;
    }
    mark('commit deferred: entry from a previous term');
    return false;
  }

  /** Raises the commit index (never lowers it). */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}: log lost or truncated`);
    this.committed = index;
  }

  /** Entries not yet handed to the driver for persisting. */
  nextUnstableEntries(): Entry[] {
    return this.unstable.nextEntries();
  }

  hasNextUnstableEntries(): boolean {
    return this.unstable.offsetInProgress < this.unstable.offset + this.unstable.entries.length;
  }

  /** Committed entries to hand out for applying, bounded in bytes. Empty while a snapshot is pending. */
  nextCommittedEntries(): Entry[] {
    if (this.unstable.snapshot !== null) return [];
    const lo = this.applying + 1;
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.#committedBytesMax);
  }

  hasNextCommittedEntries(): boolean {
    return this.unstable.snapshot === null && this.applying < this.committed;
  }

  /** Records that entries up to `index` were handed out for applying. */
  acceptApplying(index: number): void {
    assert(index <= this.committed, `applying ${index} beyond commit ${this.committed}`);
    this.applying = Math.max(this.applying, index);
  }

  /** Records that the application applied up to `index`. */
  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.committed || index <= this.storage.lastIndex(), `applied ${index} beyond commit ${this.committed}`);
    this.applied = index;
    this.applying = Math.max(this.applying, index);
    if (this.committed < index) this.committed = index;
  }

  /** Entries in `[lo, hi)` limited to `bytesMax` (at least one), from storage then the unstable tail. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, `slice [${lo}, ${hi}) out of bounds`);
    if (lo === hi) return [];
    const unstableOffset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < unstableOffset) {
      result = this.storage.entries(lo, Math.min(hi, unstableOffset), bytesMax);
      const storedHi = Math.min(hi, unstableOffset);
      if (result.length < storedHi - lo) return result; // Cut by the byte limit.
    }
    if (hi > unstableOffset) {
      const tail = this.unstable.slice(Math.max(lo, unstableOffset), hi);
      result = result.length === 0 ? tail : result.concat(tail);
    }
    return limitBytes(result, bytesMax);
  }

  /**
   * Entries from `index` to the end, limited to `bytesMax`. Returns null when `index` is compacted
   * (the follower needs a snapshot).
   */
  entriesFrom(index: number, bytesMax: number): Entry[] | null {
    if (index > this.lastIndex()) return [];
    if (index < this.firstIndex()) return null;
    try {
      return this.slice(index, this.lastIndex() + 1, bytesMax);
    } catch (error) {
      if (isSynodError(error, 'SYNOD_LOG_COMPACTED')) return null;
      throw error;
    }
  }

  /** The newest snapshot, pending or stored. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with `snapshot` (a follower installing what the leader sent). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.metadata.index > this.committed, 'restoring a snapshot at or below commit');
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }
}
