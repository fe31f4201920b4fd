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
 * Durability — why a commit need not be fsync'd. The Raft log (RaftLogStore) is durable: an entry
 * is fsync'd there before it is applied, and a client is answered only after its entry applied.
 * The MVCC layer writes the applied Raft index into the `meta` bucket in the same transaction as
 * the command's effects (etcd's consistent index), so index and effects are on disk together or
 * not at all. After a crash the server reopens the store, reads `appliedIndex` and replays the
 * log after it. So losing the last commits is harmless *as long as the log still holds them*: the
 * one rule is that the server never compacts the Raft log past an applied index that is not yet
 * durable here.
 *
 * Batches (cf. etcd's backend batch transaction). The server applies all committed entries of one
 * Raft Ready inside `batch`: one LMDB write transaction, one commit, instead of one per entry.
 * Each command's `commit` joins it; reads inside see the batch's writes (lmdb-js reads through
 * the open write transaction). A command is still all-or-nothing: the MVCC layer checks a request
 * before it writes and hands each command's writes to one `commit`, which cannot stop halfway
 * except by throwing, and a throw aborts the whole batch. A crash thus leaves a prefix of whole
 * batches, each with its applied index; the rest replays from the log.
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
 * - 'data': fsync the data pages but not the meta page (MDB_NOMETASYNC). A system crash may undo
 *   the last commit(s) but never corrupts the tree: LMDB keeps two meta pages and the pages a
 *   synced meta references are synced. Undone commits replay from the Raft log.
 * - 'none' (default): no fsync at commit (MDB_NOSYNC); flush() runs `mdb_env_sync` off the main
 *   thread. Like etcd, whose backend commits every 100 ms and leans on its WAL, the kv store then
 *   costs no fsync on the apply path; the Raft log's fsync is the only one per Ready.
 *   - Process crash (kill -9, OOM, an assertion): nothing is lost. LMDB wrote every committed page
 *     with write(2) before the commit returned, so the OS page cache holds a consistent
 *     environment, which the next process reopens as is; at worst the last batch is missing, and
 *     it replays from the log.
 *   - OS crash or power loss: unsynced commits may be lost, and, as LMDB documents for
 *     MDB_NOSYNC, the disk may have persisted a meta page before the data pages it references, so
 *     the environment may be inconsistent (checksums would catch damaged values, not a damaged
 *     tree). It is therefore not trusted: `open` writes a marker file holding the OS boot id
 *     (fsync'd) before the first unsynced commit and `close` removes it after the final flush. A
 *     marker from another boot (or with no boot id known) means the OS went down with unsynced
 *     pages: `open` deletes the environment (`openReport.discardedUnsynced`), the store starts
 *     empty at applied index 0, and the server installs the Raft snapshot from its fsync'd log
 *     store and replays the log after it — the same path as a fresh member. A clean reboot after
 *     a kill -9 also rebuilds; that is slow, never wrong.
 *   Choose 'data' where restarts after power loss must be fast.
 * Measured (kv-backend.bench.ts: one put of 128 bytes plus the applied index per commit, ext4 on
 * a virtual disk): 'full' 3,100–4,100 commits/s, 'data' 6,200–6,800, 'none' ~97,000, and one
 * flush() after ~195k unsynced commits took ~31 ms. End to end (bench kv, 1 member, Put, Ready
 * batching on), 'none' over 'data': 1.1–2.2× the ops/s (noisy shared VM).
 *
 * Checksums: each stored value is `crc32 (u32, big-endian) ‖ value`, the crc covering bucket
 * name, key and value, so a value moved under another key fails too. A mismatch throws
 * SYNOD_STORAGE_CORRUPT naming the bucket and key.
 *
 * Ownership follows the contract: buffers returned by `get` and `scan` are plain `Uint8Array` views
 * of fresh copies made by lmdb-js (values start past the checksum header), so they stay valid after
 * the next commit too; nothing handed to `commit` is kept.
 */

import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb';
import { assert, SynodError } from '../base/index.js';
import {
  dataFileBytes, recoverInterruptedDefrag, replaceWithCopy, writeCompactCopy, type KvDefragReport,
} from './kv-defrag.js';

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
  /** Default 'none' (see the module comment); 'data' never needs a rebuild after power loss. */
  readonly commitSync?: CommitSync;
  /**
   * This boot of the operating system (default: Linux's /proc/sys/kernel/random/boot_id, or ''
   * where there is none, which treats every unclean shutdown as a power loss). For tests.
   */
  readonly bootId?: string;
}

/** What `open` found. */
export interface LmdbKvBackendOpenReport {
  /**
   * True if the environment was discarded: it held unsynced 'none' commits when the operating
   * system went down, so it may be corrupt. The store reopens empty (applied index 0) and the
   * server rebuilds it from the Raft snapshot and log.
   */
  readonly discardedUnsynced: boolean;
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
  /** The environment; replaced by its compacted copy in `defragment`. */
  #root: RootDatabase;
  #databases: ReadonlyMap<KvBucketName, Database<Buffer, Buffer>>;
  readonly #commitFlags: number;
  readonly #commitSync: CommitSync;
  readonly #bootId: string;
  readonly #path: string;
  /** What `open` found. */
  readonly openReport: LmdbKvBackendOpenReport;
  /** True while `batch` runs: commits join its transaction. */
  #batching = false;
  #closed = false;

  private constructor(root: RootDatabase, options: {
    path: string; commitSync: CommitSync; bootId: string; openReport: LmdbKvBackendOpenReport;
  }) {
    this.#root = root;
    this.#path = options.path;
    this.#commitSync = options.commitSync;
    this.#bootId = options.bootId;
    this.openReport = Object.freeze(options.openReport);
    this.#databases = openBuckets(root);
    this.#commitFlags = transactionAbortable | transactionSynchronousCommit |
      commitSyncFlags[options.commitSync];
  }

  /**
   * Opens (creating if missing) the environment at `options.path`. An environment left with
   * unsynced commits by an earlier boot of the operating system is discarded first (see
   * `openReport` and the module comment).
   */
  static open(options: LmdbKvBackendOptions): LmdbKvBackend {
    const { path } = options;
    const commitSync = options.commitSync ?? 'none';
    assert(commitSync in commitSyncFlags, `unknown commitSync ${String(commitSync)}`);
    recoverInterruptedDefrag(path);
    mkdirSync(path, { recursive: true });
    const bootId = options.bootId ?? readBootId();
    const discardedUnsynced = discardIfUnsynced(path, bootId);
    // Written before the first unsynced commit, removed by `close` after the last flush.
    if (commitSync === 'none') writeUnsyncedMarker(path, bootId);
    const root = openLmdb({ path, ...environmentOptions });
    return new LmdbKvBackend(root, { path, commitSync, bootId, openReport: { discardedUnsynced } });
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

  /**
   * Applies `writes` in order: all or none, later writes win. Outside a batch this is one LMDB
   * write transaction; inside `batch` it joins the batch's transaction (no commit, no sync).
   */
  commit(writes: readonly KvBackendWrite[]): void {
    this.#assertOpen();
    for (const write of writes) this.#database(write.bucket);
    const sealed = writes.map(sealWrite);
    if (this.#batching) {
      this.#write(sealed);
      return;
    }
    this.#root.transactionSync(() => this.#write(sealed), this.#commitFlags);
  }

  /**
   * Runs `body` inside one LMDB write transaction and commits it once, with the sync policy, when
   * `body` returns: every `commit` made by `body` is part of it, and `get`/`scan` inside `body` see
   * them. If `body` throws, the transaction is aborted and none of its commits are stored; the
   * caller's in-memory state is then ahead of the backend and must be discarded (the server stops
   * and recovers from disk and the Raft log). A nested `batch` joins the outer one.
   */
  batch<T>(body: () => T): T {
    this.#assertOpen();
    if (this.#batching) return body();
    this.#batching = true;
    try {
      const result = this.#root.transactionSync(body, this.#commitFlags);
      assert(!isThenable(result), 'a batch body must be synchronous');
      return result;
    } finally {
      this.#batching = false;
    }
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

  /**
   * Rewrites the environment with only its live pages and switches to the copy, so the file
   * shrinks to what the data needs (kv-defrag.ts has the steps and their crash safety). The
   * caller guarantees nothing commits until it resolves (the server holds applies); reads go on
   * against the original until the switch, which is synchronous, and against the copy after.
   */
  async defragment(): Promise<KvDefragReport> {
    this.#assertOpen();
    assert(!this.#batching, 'defragment outside a batch');
    const bytesBefore = dataFileBytes(this.#path);
    await this.flush();
    const copy = await writeCompactCopy(this.#root, this.#path);
    if (this.#commitSync === 'none') writeUnsyncedMarker(copy, this.#bootId);
    const original = this.#root;
    this.#root = openLmdb({ path: copy, ...environmentOptions });
    this.#databases = openBuckets(this.#root);
    await original.close();
    await replaceWithCopy(this.#path);
    return { bytesBefore, bytesAfter: dataFileBytes(this.#path) };
  }

  /** Flushes, then closes the environment; every later call throws SYNOD_STORAGE_CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await this.#root.close();
    removeUnsyncedMarker(this.#path);
  }

  #write(sealed: readonly SealedWrite[]): void {
    for (const write of sealed) {
      const database = this.#databases.get(write.bucket)!;
      if (write.stored === undefined) database.removeSync(write.key);
      else database.putSync(write.key, write.stored);
    }
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

/**
 * The file beside LMDB's that says "this environment may hold commits not yet synced", holding the
 * boot id of the operating system that made them. LMDB's own files are removed with it.
 */
const unsyncedMarkerName = 'unsynced.boot-id';
const lmdbFileNames = Object.freeze(['data.mdb', 'lock.mdb']);

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Removes the environment if its marker names another boot (or none is known): the OS went down
 * with unsynced pages, and LMDB under MDB_NOSYNC does not promise a consistent file then. After a
 * process crash on the same boot the OS page cache still holds every write, so it is kept.
 */
function discardIfUnsynced(path: string, bootId: string): boolean {
  const markerPath = join(path, unsyncedMarkerName);
  if (!existsSync(markerPath)) return false;
  const markedBootId = readFileSync(markerPath, 'utf8');
  if (bootId !== '' && markedBootId === bootId) return false;
  for (const name of lmdbFileNames) rmSync(join(path, name), { force: true });
  removeUnsyncedMarker(path);
  return true;
}

/** Writes and fsyncs the marker (and its directory entry) before any unsynced commit. */
function writeUnsyncedMarker(path: string, bootId: string): void {
  const descriptor = openSync(join(path, unsyncedMarkerName), 'w');
  try {
    writeFileSync(descriptor, bootId);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  syncDirectory(path);
}

function removeUnsyncedMarker(path: string): void {
  rmSync(join(path, unsyncedMarkerName), { force: true });
  syncDirectory(path);
}

function syncDirectory(path: string): void {
  const descriptor = openSync(path, 'r');
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

interface SealedWrite {
  readonly bucket: KvBucketName;
  readonly key: Buffer;
  readonly stored: Buffer | undefined;
}

function openBuckets(root: RootDatabase): ReadonlyMap<KvBucketName, Database<Buffer, Buffer>> {
  return new Map(kvBucketNames.map((bucket) => [bucket, root.openDB<Buffer, Buffer>({
    name: `kv/${bucket}`, encoding: 'binary', keyEncoding: 'binary',
  })]));
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

function isThenable(value: unknown): boolean {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
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
