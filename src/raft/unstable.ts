/**
 * The tail of the log not yet known to be durable: entries (and possibly a snapshot) the driver has
 * been asked to persist, or will be. `inProgress` marks how much of it a Ready has already handed out,
 * so the next Ready hands out only what is new.
 */

import { assert } from '../base/index.js';
import type { Entry, Snapshot } from './types.js';

/** Not-yet-durable entries starting at `offset`, and an optional incoming snapshot. */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of `entries[0]`. */
  offset: number;
  /** Entries with index < this have been handed out in a Ready. Invariant: offset ≤ offsetInProgress. */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** The first index if there is a snapshot (its index + 1). */
  maybeFirstIndex(): number | null {
    return this.snapshot === null ? null : this.snapshot.metadata.index + 1;
  }

  /** The last index if there are entries or a snapshot. */
  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? null : this.snapshot.metadata.index;
  }

  /** The term at `index`, if this tail knows it. */
  maybeTerm(index: number): number | null {
    if (index < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || index > last) return null;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries not yet handed out. */
  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    return start >= this.entries.length ? [] : this.entries.slice(start);
  }

  /** The snapshot, if not yet handed out. */
  nextSnapshot(): Snapshot | null {
    return this.snapshot === null || this.snapshotInProgress ? null : this.snapshot;
  }

  /** Marks everything current as handed out. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== null) this.snapshotInProgress = true;
  }

  /**
   * Entries up to `index` with `term` are durable. Ignored if the entry there has since been
   * replaced (its term differs) or was never here.
   */
  stableTo(index: number, term: number): void {
    const known = this.maybeTerm(index);
    if (known === null || known !== term || index < this.offset) return;
    const count = index + 1 - this.offset;
    this.entries = this.entries.slice(count);
    this.offset = index + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  /** The snapshot at `index` is durable. */
  stableSnapTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces everything with `snapshot`. */
  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /** Appends `entries`, truncating any suffix they conflict with. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (from <= this.offset) {
      // Replaces the whole tail; the storage driver truncates the durable log on write.
      this.offset = from;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, from - this.offset);
      for (const entry of entries) this.entries.push(entry);
    }
    this.offsetInProgress = Math.min(this.offsetInProgress, from);
  }

  /** Entries in `[lo, hi)`, which must lie within this tail. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, `unstable slice [${lo}, ${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
