/**
 * Rebuilds the in-memory parts of the store (key index, leases and their attachments, counters)
 * from what a backend holds, as etcd's store restore does (server/mvcc/kvstore.go, restore). Used
 * on open and after installing a snapshot. A backend that contradicts itself is corrupt.
 */

import { SynodError } from '../base/index.js';
import type { Backend } from './backend.js';
import { bytesEqual } from './bytes.js';
import { ByteReader, decodeRecord } from './codec.js';
import { KeyIndexTree } from './key-index.js';
import { LeaseTable } from './lease-table.js';
import { decodeRevision } from './revision.js';
import { metaKeys, readCommitted } from './write-txn.js';
import type { MvccState } from './write-txn.js';

/** What `loadState` rebuilds. */
export interface LoadedState {
  readonly index: KeyIndexTree;
  readonly leases: LeaseTable;
  readonly currentRevision: number;
  readonly compactRevision: number;
  readonly leaseIdNext: bigint;
  readonly appliedIndex: number;
}

/** Reads `backend` whole and rebuilds the in-memory state; an empty backend is an empty store. */
export function loadState(backend: Backend): LoadedState {
  const currentRevision = readMeta(backend, metaKeys.currentRevision, (r) => r.u64()) ?? 1;
  // -1 until the first compaction (etcd's compactMainRev), so that compacting at 0 is accepted once.
  const compactRevision = readMeta(backend, metaKeys.compactRevision, (r) => r.u64()) ?? -1;
  const leaseIdNext = readMeta(backend, metaKeys.leaseIdNext, (r) => r.i64()) ?? 1n;
  const appliedIndex = readMeta(backend, metaKeys.appliedIndex, (r) => r.u64()) ?? 0;
  const leases = new LeaseTable();
  for (const entry of backend.scan('lease', { start: new Uint8Array(0) })) {
    const id = new ByteReader(entry.key).i64();
    leases.grant({ id, ttlSeconds: new ByteReader(entry.value).u64() });
  }
  const index = new KeyIndexTree();
  for (const entry of backend.scan('key', { start: new Uint8Array(0) })) {
    const revision = decodeRevision(entry.key);
    if (revision.main > currentRevision) throw corrupt('a revision is newer than the store');
    const record = decodeRecord(entry.value, revision.main);
    if (record.kind === 'put') {
      index.getOrCreate(record.kv.key).put(revision);
      continue;
    }
    const keyIndex = index.get(record.key);
    if (keyIndex === undefined || !keyIndex.isLive()) throw corrupt('a tombstone of a missing key');
    keyIndex.tombstone(revision);
  }
  const state: MvccState = {
    backend, index, leases, currentRevision, compactRevision, appliedIndex,
    appliedIndexPending: undefined,
  };
  attachLeases(state);
  return { index, leases, currentRevision, compactRevision, leaseIdNext, appliedIndex };
}

function attachLeases(state: MvccState): void {
  for (const keyIndex of state.index.all()) {
    const revision = keyIndex.revisionAt(state.currentRevision);
    if (revision === undefined) continue;
    const kv = readCommitted(state, revision);
    if (!bytesEqual(kv.key, keyIndex.key)) throw corrupt('a record is filed under another key');
    if (kv.lease === 0n) continue;
    if (!state.leases.has(kv.lease)) throw corrupt('a key is attached to a missing lease');
    state.leases.attach(kv.lease, kv.key);
  }
}

function readMeta<T>(
  backend: Backend, key: Uint8Array, read: (reader: ByteReader) => T,
): T | undefined {
  const bytes = backend.get('meta', key);
  return bytes === undefined ? undefined : read(new ByteReader(bytes));
}

function corrupt(detail: string): SynodError {
  return new SynodError('SYNOD_STORAGE_CORRUPT', `kv: ${detail}`);
}
