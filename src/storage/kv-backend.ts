/**
 * The MVCC store's backend on LMDB: a durable implementation of the `Backend` contract of
 * src/kv/backend.ts (buckets of byte keys in unsigned byte order, half-open scans, atomic batches).
 * The layer rule keeps src/storage below src/kv, so the contract's types are declared here again
 * with the same shape; TypeScript's structural typing makes `LmdbKvBackend` a `Backend`, and
 * kv-backend.test.ts checks the assignability.
 *
 * Layout: one LMDB named database per bucket (`kv/key`, `kv/lease`, `kv/meta`), binary keys and
 * values. LMDB's default key order is memcmp with the shorter key first, which is exactly
 * `compareBytes`, so scans need no custom comparator. Key prefixes in one database would work too;
 * named databases keep each bucket's B+tree small and let `scan` run without prefix arithmetic.
 *
 * Durability — why a commit need not be fsync'd. The Raft log (RaftLogStore) is durable; the MVCC
 * layer writes the applied Raft index into the `meta` bucket in the same batch as the command's
 * effects (etcd's consistent index). A commit is one LMDB write transaction, so it is atomic: the
 * index and the effects are on disk together or not at all. After a crash the server reopens the
 * store, reads `appliedIndex` and replays the log after it. So losing the last few commits is
 * harmless *as long as the log still holds them*: the one rule is that the server never compacts
 * the Raft log past an applied index that is not yet durable here.
 *
 * How the server uses `flush()` before compacting the log (cf. etcd, which forces a backend commit
 * before it compacts raft storage):
 *   1. read `appliedIndex` from the state machine (say A) — every commit up to A has returned;
 *   2. `await backend.flush()` — resolves once everything committed so far is on disk;
 *   3. only then compact the Raft log (and take a Raft snapshot) at ≤ A.
 *
 * Sync policy (`commitSync`), per write transaction:
 * - 'full': fsync data and meta page at every commit (LMDB's default). Survives power loss at every
 *   commit; flush() is a no-op in effect.
 * - 'data' (default): fsync the data pages but not the meta page (MDB_NOMETASYNC). A system crash
 *   may undo the last commit(s) but never corrupts the tree: LMDB keeps two meta pages and the pages
 *   a synced meta references are synced. Undone commits are replayed from the Raft log (their
 *   applied index is undone with them), so nothing acknowledged is lost and nothing is corrupted.
 *   The server batches a Ready's committed entries into few commits, so the per-commit cost is
 *   shared.
 * - 'none': no fsync at commit (MDB_NOSYNC); flush() runs `mdb_env_sync` off the main
 *   thread. A process crash loses nothing (the writes are in the OS page cache). An OS crash or
 *   power loss before the next flush may lose unflushed commits — and, as LMDB documents for
 *   MDB_NOSYNC, because the disk may persist a meta page before the data pages it references, it
 *   may leave the environment inconsistent. Reads verify checksums (below), so such damage surfaces
 *   as SYNOD_STORAGE_CORRUPT, and the replica must then be rebuilt from a Raft snapshot, not from
 *   its own log. Choose 'data' where power loss is a realistic fault.
 * Measured (kv-backend.bench.ts: one put of 128 bytes plus the applied index per commit, ext4 on
 * a virtual disk): 'full' 3,100–4,100 commits/s, 'data' 6,200–6,800, 'none' ~97,000, and one
 * flush() after ~195k unsynced commits took ~31 ms.
 *
 * Checksums: each stored value is `crc32 (u32, big-endian) ‖ value`, the crc covering bucket
 * name, key and value, so a value moved under another key fails too. A mismatch throws
 * SYNOD_STORAGE_CORRUPT naming the bucket and key.
 *
 * Ownership follows the contract: buffers returned by `get` and `scan` are plain `Uint8Array` views
 * of fresh copies made by lmdb-js (values start past the checksum header), so they stay valid after
 * the next commit too; nothing handed to `commit` is kept.
 */

import { crc32 } from 'node:zlib';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { assert, SynodError } from '../base/index.js';

/** The buckets of the MVCC layer (same shape as src/kv/backend.ts `BucketName`). */
export type KvBucketName = 'key' | 'lease' | 'meta';

/** Every bucket, in the MVCC layer's fixed order. */
export const kvBucketNames: readonly KvBucketName[] = Object.freeze(['key', 'lease', 'meta']);

/** One write: a put when `value` is present, otherwise a delete (same shape as `BackendWrite`). */
export interface KvBackendWrite {
  readonly bucket: KvBucketName;
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

/** One stored entry, as returned by `scan` (same shape as `BackendEntry`). */
export interface KvBackendEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** Half-open bounds `[start, end)`; `end` undefined means no upper bound (same as `ScanBounds`). */
export interface KvScanBounds {
  readonly start: Uint8Array;
  readonly end?: Uint8Array;
}

/** When a commit is fsync'd; see the module comment. */
export type CommitSync = 'full' | 'data' | 'none';

/** Options of `LmdbKvBackend.open`. */
export interface LmdbKvBackendOptions {
  /** Directory of the LMDB environment; created if missing. Not shared with another store. */
  readonly path: string;
  /** Default 'data': never corrupt on power loss; undone commits replay from the Raft log. */
  readonly commitSync?: CommitSync;
}

/**
 * Longest key, bytes: lmdb-js's limit (LMDB built with a 1978-byte maximum key). The MVCC layer's
 * keys are revisions (17 bytes), lease IDs (8) and metadata names.
 */
export const kvKeyBytesMax = 1978;
/** Bytes of the checksum header in front of every stored value. */
export const kvValueHeaderBytes = 4;

// lmdb-js transaction flags (index.d.ts `TransactionFlags`; LMDB's txn begin flags).
const transactionAbortable = 0x1;
const transactionSynchronousCommit = 0x2;
const transactionNoSync = 0x10000; // MDB_NOSYNC
const transactionNoMetaSync = 0x40000; // MDB_NOMETASYNC

const commitSyncFlags: Readonly<Record<CommitSync, number>> = Object.freeze({
  full: 0,
  data: transactionNoMetaSync,
  none: transactionNoSync,
});

/** `RootDatabase.sync`, which lmdb-js has but does not declare: async `mdb_env_sync(force)`. */
interface SyncableRoot {
  sync(callback: (error?: Error) => void): void;
}

/** An LMDB-backed MVCC backend. Single writer; every call is synchronous except flush/close. */
export class LmdbKvBackend {
  readonly #root: RootDatabase;
  readonly #databases: ReadonlyMap<KvBucketName, Database<Buffer, Buffer>>;
  readonly #commitFlags: number;
  #closed = false;

  private constructor(root: RootDatabase, commitSync: CommitSync) {
    this.#root = root;
    this.#databases = new Map(kvBucketNames.map((bucket) => [bucket, openBucket(root, bucket)]));
    this.#commitFlags = transactionAbortable | transactionSynchronousCommit |
      commitSyncFlags[commitSync];
  }

  /** Opens (creating if missing) the environment at `options.path`. */
  static open(options: LmdbKvBackendOptions): LmdbKvBackend {
    const commitSync = options.commitSync ?? 'data';
    assert(commitSync in commitSyncFlags, `unknown commitSync ${String(commitSync)}`);
    const root = openLmdb({ path: options.path, ...environmentOptions });
    return new LmdbKvBackend(root, commitSync);
  }

  /** The value under `key`, or undefined. Throws SYNOD_STORAGE_CORRUPT on a checksum mismatch. */
  get(bucket: KvBucketName, key: Uint8Array): Uint8Array | undefined {
    const database = this.#database(bucket);
    if (key.length === 0) return undefined; // LMDB cannot store an empty key (commit asserts).
    const stored = database.get(toBuffer(key));
    return stored === undefined ? undefined : openValue(bucket, key, stored);
  }

  /** Entries with `start ≤ key < end` in ascending byte order. Not valid across a `commit`. */
  scan(bucket: KvBucketName, bounds: KvScanBounds): Iterable<KvBackendEntry> {
    const database = this.#database(bucket);
    const { start, end } = bounds;
    if (end !== undefined && compareKeys(start, end) >= 0) return [];
    const range = database.getRange({
      ...(start.length === 0 ? {} : { start: toBuffer(start) }),
      ...(end === undefined ? {} : { end: toBuffer(end) }),
    });
    return range.map((entry) => {
      const key = plainView(entry.key);
      return { key, value: openValue(bucket, key, entry.value) };
    });
  }

  /** Applies `writes` in order in one LMDB write transaction: all or none. Later writes win. */
  commit(writes: readonly KvBackendWrite[]): void {
    this.#assertOpen();
    for (const write of writes) this.#database(write.bucket);
    const sealed = writes.map(sealWrite);
    this.#root.transactionSync(() => {
      for (const write of sealed) {
        const database = this.#databases.get(write.bucket)!;
        if (write.stored === undefined) database.removeSync(write.key);
        else database.putSync(write.key, write.stored);
      }
    }, this.#commitFlags);
  }

  /**
   * Removes every entry of every bucket in one transaction (before a Raft snapshot is restored
   * into this backend). Committed with the backend's sync policy, like any other commit.
   */
  clear(): void {
    this.#assertOpen();
    this.#root.transactionSync(() => {
      for (const database of this.#databases.values()) {
        for (const key of [...database.getKeys()]) database.removeSync(key);
      }
    }, this.#commitFlags);
  }

  /** Resolves once every commit made before the call is on disk (`mdb_env_sync`, forced). */
  flush(): Promise<void> {
    this.#assertOpen();
    const root = this.#root as unknown as SyncableRoot;
    return new Promise((resolve, reject) => {
      root.sync((error) => (error === undefined || error === null ? resolve() : reject(error)));
    });
  }

  /** Flushes, then closes the environment; every later call throws SYNOD_STORAGE_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await this.#root.close();
  }

  #database(bucket: KvBucketName): Database<Buffer, Buffer> {
    this.#assertOpen();
    const database = this.#databases.get(bucket);
    assert(database !== undefined, `unknown bucket ${String(bucket)}`);
    return database;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SynodError('SYNOD_STORAGE_CLOSED');
  }
}

/**
 * lmdb-js environment options. `overlappingSync` (on by default on Linux) would defer syncs to a
 * background flush; it is off so the per-transaction flags above alone decide what is synced.
 */
const environmentOptions = Object.freeze({
  maxDbs: kvBucketNames.length + 1,
  overlappingSync: false,
  noSync: false,
  noMetaSync: false,
});

interface SealedWrite {
  readonly bucket: KvBucketName;
  readonly key: Buffer;
  readonly stored: Buffer | undefined;
}

function openBucket(root: RootDatabase, bucket: KvBucketName): Database<Buffer, Buffer> {
  return root.openDB<Buffer, Buffer>({ name: `kv/${bucket}`, encoding: 'binary',
    keyEncoding: 'binary' });
}

function sealWrite(write: KvBackendWrite): SealedWrite {
  const { bucket, key, value } = write;
  assert(key.length >= 1, `empty key in bucket ${bucket}`);
  assert(key.length <= kvKeyBytesMax, `key of ${key.length} bytes in bucket ${bucket}`);
  const stored = value === undefined ? undefined : sealValue(bucket, key, value);
  return { bucket, key: toBuffer(key), stored };
}

/** `crc32(bucket ‖ key ‖ value)` then the value. */
function sealValue(bucket: KvBucketName, key: Uint8Array, value: Uint8Array): Buffer {
  const stored = Buffer.allocUnsafe(kvValueHeaderBytes + value.length);
  stored.writeUInt32BE(checksum(bucket, key, value), 0);
  stored.set(value, kvValueHeaderBytes);
  return stored;
}

/** Verifies a stored value's checksum and returns the value (a view past the header). */
function openValue(bucket: KvBucketName, key: Uint8Array, stored: Uint8Array): Uint8Array {
  if (stored.length < kvValueHeaderBytes) throw corrupt(bucket, key, 'value shorter than header');
  const value = plainView(stored).subarray(kvValueHeaderBytes);
  const view = new DataView(stored.buffer, stored.byteOffset, kvValueHeaderBytes);
  if (view.getUint32(0) !== checksum(bucket, key, value)) {
    throw corrupt(bucket, key, 'checksum mismatch');
  }
  return value;
}

function checksum(bucket: KvBucketName, key: Uint8Array, value: Uint8Array): number {
  return crc32(value, crc32(key, crc32(bucket)));
}

function corrupt(bucket: KvBucketName, key: Uint8Array, reason: string): SynodError {
  const hex = Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex');
  return new SynodError('SYNOD_STORAGE_CORRUPT', `storage record kv/${bucket}/${hex}: ${reason}`);
}

/** A plain `Uint8Array` over `bytes` (lmdb-js returns Buffers; the contract promises neither). */
function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Unsigned byte order (src/kv `compareBytes`; storage may not import it). */
function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(toBuffer(a), toBuffer(b));
}
