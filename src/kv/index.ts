/** Synod's MVCC key-value state machine: etcd v3 KV and lease semantics over an ordered backend. */
export type { Backend, BackendEntry, BackendWrite, BucketName, ScanBounds } from './backend.js';
export { bucketNames } from './backend.js';
export { MemoryBackend } from './memory-backend.js';
export { compareBytes, bytesEqual, prefixEnd, isUnboundedEnd, utf8, utf8Text } from './bytes.js';
export type { Revision } from './revision.js';
export { compareRevisions, encodeRevision, decodeRevision } from './revision.js';
export { KeyIndex, KeyIndexTree } from './key-index.js';
export type { Lease, LeaseLimits } from './lease-table.js';
export { defaultLeaseLimits } from './lease-table.js';
export {
  txnOpsMaxDefault, checkRangeRequest, checkPutRequest, checkDeleteRangeRequest, checkTxnRequest,
} from './txn-check.js';
export {
  MvccStore, type MvccStoreOptions, type WriteResult, type LeaseGrantResponse,
  type LeaseTimeToLiveResponse,
} from './mvcc-store.js';
export { encodeCommand, decodeCommand, type Command } from './command.js';
export { KvStateMachine, type ApplyResult, type CommandResponse } from './state-machine.js';
export type * from './types.js';
export * from './watch/index.js';
export {
  MemberTable, memberTableKeyPrefixes, checkRecord, encodeMemberChange, isHttpUrl, isRaftId, raftIdMax, membersMax, memberUrlsMax,
  type MemberChange, type MemberRecord,
} from './members.js';
export {
  AuthStore, rootName, type AuthChange, type AuthRole, type AuthUser,
} from './auth-store.js';
export { permitsRange, type KeyPermission, type PermissionType } from './auth-permissions.js';
