/**
 * The in-memory index from keys to their revisions, after etcd's `keyIndex` and `treeIndex`
 * (server/mvcc/key_index.go, index.go). Values live in the backend under their revision; the index
 * answers "which revision holds key K as of store revision R" and which revisions compaction frees.
 *
 * A key's history is a list of generations. A generation starts at a create and ends with a
 * tombstone (the delete's revision is the generation's last entry); the last generation is open
 * while the key is live. Example: put@2, put@3, delete@4, put@6 → [{2, 3, 4 ✝}, {6}].
 */

import { assert } from '../base/index.js';
import type { KeySpan } from './bytes.js';
import { compareBytes, isUnboundedEnd } from './bytes.js';
import type { Revision } from './revision.js';
import { compareRevisions } from './revision.js';

/** One life of a key: create to tombstone. Invariant: `revisions` non-empty and ascending. */
interface Generation {
  readonly revisions: Revision[];
  /** True when the last revision is the delete that ended this generation. */
  tombstoned: boolean;
}

/** The revision history of one key. */
export class KeyIndex {
  /** The key; owned by the index, never mutated. */
  readonly key: Uint8Array;
  readonly #generations: Generation[] = [];

  constructor(key: Uint8Array) {
    this.key = key;
  }

  /** Records a write at `revision`, opening a generation if the key is not live. */
  put(revision: Revision): void {
    this.#assertAfterLast(revision);
    const last = this.#generations.at(-1);
    if (last === undefined || last.tombstoned) {
      this.#generations.push({ revisions: [revision], tombstoned: false });
    } else {
      last.revisions.push(revision);
    }
  }

  /** Records the delete at `revision`, ending the live generation. The key must be live. */
  tombstone(revision: Revision): void {
    this.#assertAfterLast(revision);
    const last = this.#generations.at(-1);
    assert(last !== undefined && !last.tombstoned, 'tombstone of a key that is not live');
    last.revisions.push(revision);
    last.tombstoned = true;
  }

  /** True when the key has a live value at the newest revision. */
  isLive(): boolean {
    const last = this.#generations.at(-1);
    return last !== undefined && !last.tombstoned;
  }

  /** True once compaction has removed every revision. */
  isEmpty(): boolean {
    return this.#generations.length === 0;
  }

  /**
   * The revision holding the key's value as of store revision `atMain`, or undefined if the key
   * did not exist then (never written, or the latest change at or before `atMain` is a delete).
   */
  revisionAt(atMain: number): Revision | undefined {
    for (let g = this.#generations.length - 1; g >= 0; g--) {
      const generation = this.#generations[g]!;
      if (generation.revisions[0]!.main > atMain) continue;
      const revisions = generation.revisions;
      let index = revisions.length - 1;
      while (revisions[index]!.main > atMain) index--;
      const isTombstone = generation.tombstoned && index === revisions.length - 1;
      return isTombstone ? undefined : revisions[index];
    }
    return undefined;
  }

  /**
   * Drops history no read at a revision ≥ `atMain` can need, returning the dropped revisions.
   * Kept: the latest revision ≤ `atMain` if it is a value (not a tombstone), and all after it.
   */
  compact(atMain: number): Revision[] {
    const flat: Array<{ revision: Revision; isTombstone: boolean }> = [];
    for (const generation of this.#generations) {
      generation.revisions.forEach((revision, index) => {
        const isLast = index === generation.revisions.length - 1;
        flat.push({ revision, isTombstone: generation.tombstoned && isLast });
      });
    }
    let pivot = -1;
    while (pivot + 1 < flat.length && flat[pivot + 1]!.revision.main <= atMain) pivot++;
    if (pivot < 0) return [];
    const dropCount = flat[pivot]!.isTombstone ? pivot + 1 : pivot;
    const dropped = flat.slice(0, dropCount).map((entry) => entry.revision);
    this.#dropOldest(dropCount);
    return dropped;
  }

  /** Every revision held, oldest first; for tests and invariant checks. */
  revisions(): Revision[] {
    return this.#generations.flatMap((generation) => generation.revisions);
  }

  #dropOldest(count: number): void {
    let remaining = count;
    while (remaining > 0) {
      const first = this.#generations[0];
      assert(first !== undefined, 'compaction dropped more revisions than held');
      if (first.revisions.length <= remaining) {
        remaining -= first.revisions.length;
        this.#generations.shift();
      } else {
        first.revisions.splice(0, remaining);
        remaining = 0;
      }
    }
    // Invariant: a generation that survives compaction still starts before its tombstone.
    const first = this.#generations[0];
    assert(first === undefined || !(first.tombstoned && first.revisions.length === 1),
      'compaction left a lone tombstone');
  }

  #assertAfterLast(revision: Revision): void {
    const last = this.#generations.at(-1)?.revisions.at(-1);
    assert(last === undefined || compareRevisions(last, revision) < 0, 'key revisions must ascend');
  }
}

/**
 * The ordered set of key indexes: a sorted array with binary search. Lookup is O(log n), range is
 * O(log n + k), inserting or removing a key is O(n) for the array shift; a B-tree can replace it
 * behind the same methods when key counts make the shift matter.
 */
export class KeyIndexTree {
  readonly #indexes: KeyIndex[] = [];

  /** Number of keys with any history held. */
  get size(): number {
    return this.#indexes.length;
  }

  /** The index of `key`, if any history of it is held. */
  get(key: Uint8Array): KeyIndex | undefined {
    const position = this.#lowerBound(key);
    const found = this.#indexes[position];
    return found !== undefined && compareBytes(found.key, key) === 0 ? found : undefined;
  }

  /** The index of `key`, created empty if absent. */
  getOrCreate(key: Uint8Array): KeyIndex {
    const position = this.#lowerBound(key);
    const found = this.#indexes[position];
    if (found !== undefined && compareBytes(found.key, key) === 0) return found;
    const created = new KeyIndex(key.slice());
    this.#indexes.splice(position, 0, created);
    return created;
  }

  /** Removes the index of `key`, which must be empty (fully compacted). */
  remove(key: Uint8Array): void {
    const position = this.#lowerBound(key);
    const found = this.#indexes[position];
    assert(found !== undefined && compareBytes(found.key, key) === 0, 'remove of an unknown key');
    assert(found.isEmpty(), 'remove of a key index that still holds revisions');
    this.#indexes.splice(position, 1);
  }

  /** The indexes whose keys fall in `span` (etcd range_end rules), in ascending key order. */
  range(span: KeySpan): KeyIndex[] {
    if (span.rangeEnd.length === 0) {
      const single = this.get(span.key);
      return single === undefined ? [] : [single];
    }
    const start = this.#lowerBound(span.key);
    const end = isUnboundedEnd(span.rangeEnd)
      ? this.#indexes.length
      : this.#lowerBound(span.rangeEnd);
    return start < end ? this.#indexes.slice(start, end) : [];
  }

  /** Every index, in ascending key order. */
  all(): readonly KeyIndex[] {
    return this.#indexes;
  }

  #lowerBound(key: Uint8Array): number {
    let low = 0;
    let high = this.#indexes.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.#indexes[middle]!.key, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
