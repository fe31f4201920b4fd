/**
 * Reading a snapshot file that `etcdctl snapshot save` wrote from Synod's Maintenance.Snapshot
 * stream (layout in api/snapshot-stream.ts), for `synod snapshot status` and `synod snapshot
 * restore` (etcdctl 3.4's `snapshot status` and `snapshot restore`, which read bbolt files and so
 * cannot read Synod's).
 *
 * `snapshotStatusOf` answers what etcdctl's status prints (etcd snapshot/v3_snapshot.go, Status):
 * - `hash`: crc32 (IEEE, zlib's) of the payload, i.e. of `KvStateMachine.serialize()`'s bytes
 *   between the file's header and its padding. A content hash like etcd's (which is a Castagnoli
 *   crc32 over bbolt's buckets), so the same state gives the same number; not etcd's value.
 * - `revision`: the store's current revision at the snapshot.
 * - `totalKey`: records in every bucket of the state (`key` revisions, `lease`, `meta`), as etcd
 *   counts every key of every bbolt bucket. Not the number of live keys.
 * - `totalSize`: the file's size in bytes, hash trailer included.
 */

import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { assert } from '../base/index.js';
import { bucketNames, KvStateMachine } from '../kv/index.js';
import { decodeSnapshotFile, snapshotHashBytes } from './api/snapshot-stream.js';

/** What `synod snapshot status` reports; field names as etcdctl's JSON output. */
export interface SnapshotStatus {
  /** crc32 of the payload, a uint32. */
  readonly hash: number;
  /** The MVCC revision the snapshot holds. */
  readonly revision: number;
  /** Records in every bucket of the state machine's backend. */
  readonly totalKey: number;
  /** Bytes of the file. */
  readonly totalSize: number;
}

/** Options of `decodeSnapshot`. */
export interface DecodeSnapshotOptions {
  /**
   * Check the SHA-256 trailer (etcdctl's default). When false, the trailer must still be there,
   * but its value is ignored: every other check (magic, version, length, padding) still runs.
   */
  readonly verifyHash: boolean;
}

/**
 * The payload of a snapshot file. SYNOD_STORAGE_CORRUPT when the file fails its hash (unless
 * `verifyHash` is false), its magic, version, length or padding.
 */
export function decodeSnapshot(file: Uint8Array, options: DecodeSnapshotOptions): Uint8Array {
  if (options.verifyHash || file.length < snapshotHashBytes) return decodeSnapshotFile(file);
  // decodeSnapshotFile always checks the trailer: hand it a copy whose trailer is right, so that
  // skipping the hash check skips nothing else.
  const bodyBytes = file.length - snapshotHashBytes;
  const rehashed = new Uint8Array(file.length);
  rehashed.set(file.subarray(0, bodyBytes));
  rehashed.set(createHash('sha256').update(file.subarray(0, bodyBytes)).digest(), bodyBytes);
  return decodeSnapshotFile(rehashed);
}

/**
 * Verifies `file` (hash and format) and summarizes it. Decodes the whole state into memory, so a
 * payload that is not a state machine snapshot is SYNOD_STORAGE_CORRUPT too.
 */
export function snapshotStatusOf(file: Uint8Array): SnapshotStatus {
  const payload = decodeSnapshot(file, { verifyHash: true });
  const machine = KvStateMachine.restore(payload);
  let totalKey = 0;
  for (const bucket of bucketNames) {
    const records = machine.store.backend.scan(bucket, { start: new Uint8Array(0) });
    for (const _record of records) totalKey++;
  }
  const hash = crc32(payload);
  assert(hash >= 0 && hash <= 0xffff_ffff, 'crc32 is a uint32');
  assert(machine.store.currentRevision >= 1, 'a store is at revision 1 or later');
  return { hash, revision: machine.store.currentRevision, totalKey, totalSize: file.length };
}
