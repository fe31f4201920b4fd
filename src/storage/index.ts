/** Synod's storage layer: the durable Raft log on LMDB. */
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
