/**
 * An in-memory `Backend`: per bucket, a sorted array of entries with binary search. `get` is
 * O(log n); each put or delete is O(n) for the array shift, which is fine for tests and the
 * simulator. It doubles as the reference a durable backend is tested against.
 */

import { assert } from '../base/index.js';
import type { Backend, BackendEntry, BackendWrite, BucketName, ScanBounds } from './backend.js';
import { bucketNames } from './backend.js';
import { compareBytes } from './bytes.js';

/** A sorted in-memory backend. Commits are atomic trivially: nothing can fail halfway. */
export class MemoryBackend implements Backend {
  readonly #buckets = new Map<BucketName, BackendEntry[]>(bucketNames.map((name) => [name, []]));

  get(bucket: BucketName, key: Uint8Array): Uint8Array | undefined {
    const entries = this.#bucket(bucket);
    const index = lowerBound(entries, key);
    const entry = entries[index];
    return entry !== undefined && compareBytes(entry.key, key) === 0 ? entry.value : undefined;
  }

  *scan(bucket: BucketName, bounds: ScanBounds): Iterable<BackendEntry> {
    const entries = this.#bucket(bucket);
    for (let index = lowerBound(entries, bounds.start); index < entries.length; index++) {
      const entry = entries[index]!;
      if (bounds.end !== undefined && compareBytes(entry.key, bounds.end) >= 0) return;
      yield entry;
    }
  }

  commit(writes: readonly BackendWrite[]): void {
    for (const write of writes) {
      const entries = this.#bucket(write.bucket);
      const index = lowerBound(entries, write.key);
      const found = index < entries.length && compareBytes(entries[index]!.key, write.key) === 0;
      if (write.value === undefined) {
        if (found) entries.splice(index, 1);
      } else if (found) {
        entries[index] = { key: write.key, value: write.value };
      } else {
        entries.splice(index, 0, { key: write.key, value: write.value });
      }
    }
  }

  /** Runs `body`; its commits are applied as they come, and kept if it throws. */
  batch<T>(body: () => T): T {
    return body();
  }

  #bucket(name: BucketName): BackendEntry[] {
    const entries = this.#buckets.get(name);
    assert(entries !== undefined, `unknown bucket ${name}`);
    return entries;
  }
}

/** The first index whose key is ≥ `key`. */
function lowerBound(entries: readonly BackendEntry[], key: Uint8Array): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareBytes(entries[middle]!.key, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}
