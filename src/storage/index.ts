/** Synod's storage layer: the durable Raft log and the MVCC backend, on LMDB. */
export {
  RaftLogStore,
  persistBytesMax,
  snapshotDataBytesMax,
  tailScanEntriesDefault,
  writesInflightMax,
  type OpenReport,
  type PersistRequest,
  type RaftLogStoreOptions,
} from './raft-log-store.js';
export {
  LmdbKvBackend,
  kvBucketNames,
  kvKeyBytesMax,
  type CommitSync,
  type KvBackendEntry,
  type KvBackendWrite,
  type KvBucketName,
  type KvScanBounds,
  type LmdbKvBackendOptions,
} from './kv-backend.js';
export type { KvDefragReport } from './kv-defrag.js';
