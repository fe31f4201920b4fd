/**
 * The ordered storage the MVCC layer persists to. A backend holds a fixed set of buckets; each is
 * an ordered map from byte keys to byte values, ordered by unsigned byte comparison
 * (`compareBytes`). Reads see the last committed write; writes are grouped in a batch committed
 * atomically, so a crash leaves either all or none of one applied command. `batch` groups many
 * commits (one Raft Ready's applies) into one storage transaction, so a crash leaves a prefix of
 * whole batches. The in-memory
 * implementation (`MemoryBackend`) is the test double; a durable (LMDB) implementation follows the
 * same contract.
 *
 * Ownership: a backend copies nothing it is handed, so callers must not mutate a key or value after
 * passing it in. Buffers a backend returns are read-only and valid until the next `commit`; a
 * caller that keeps one longer copies it. The MVCC layer decodes every value it reads at once.
 */

/** The buckets the MVCC layer uses: revisions → key-values, lease IDs → leases, metadata. */
export type BucketName = 'key' | 'lease' | 'meta';

/** Every bucket, in a fixed order (the snapshot encoding relies on it). */
export const bucketNames: readonly BucketName[] = Object.freeze(['key', 'lease', 'meta']);

/** One write in a batch: a put when `value` is present, otherwise a delete (absent key is fine). */
export interface BackendWrite {
  readonly bucket: BucketName;
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

/** One stored entry, as returned by `scan`. */
export interface BackendEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** Half-open key bounds `[start, end)` of a scan; `end` undefined means no upper bound. */
export interface ScanBounds {
  readonly start: Uint8Array;
  readonly end?: Uint8Array;
}

/** Ordered storage with atomic batches. See the module comment for ordering and ownership. */
export interface Backend {
  /** The value under `key`, or undefined. */
  get(bucket: BucketName, key: Uint8Array): Uint8Array | undefined;
  /** Entries with `start ≤ key < end`, in ascending byte order. Not valid across a `commit`. */
  scan(bucket: BucketName, bounds: ScanBounds): Iterable<BackendEntry>;
  /** Applies `writes` in order, all or none. Later writes to the same key win. */
  commit(writes: readonly BackendWrite[]): void;
  /**
   * Runs `body` (synchronous) as one batch: every `commit` inside it becomes durable together, in
   * one storage transaction, when `body` returns, and reads inside `body` see them. A nested call
   * joins the outer batch. If `body` throws, how many of its commits are kept is the backend's
   * choice (LMDB keeps none, memory keeps all), so the caller must discard the state built on them.
   */
  batch<T>(body: () => T): T;
}
