/**
 * The decoded etcd v3 messages `synod ctl` reads, as src/server/grpc/proto.ts's loader options
 * deliver them: proto field names, 64-bit integers as decimal strings, bytes as Buffers, enums
 * as value names, absent messages as null.
 */

/** A 64-bit integer as the decimal string the loader decodes (`longs: String`). */
export type Int64 = string;

/** etcdserverpb.ResponseHeader. */
export interface WireHeader {
  readonly cluster_id: Int64;
  readonly member_id: Int64;
  readonly revision: Int64;
  readonly raft_term: Int64;
}

/** mvccpb.KeyValue. */
export interface WireKeyValue {
  readonly key: Buffer;
  readonly create_revision: Int64;
  readonly mod_revision: Int64;
  readonly version: Int64;
  readonly value: Buffer;
  readonly lease: Int64;
}

/** RangeResponse. */
export interface WireRangeResponse {
  readonly header: WireHeader | null;
  readonly kvs: readonly WireKeyValue[];
  readonly more: boolean;
  readonly count: Int64;
}

/** PutResponse. */
export interface WirePutResponse {
  readonly header: WireHeader | null;
  readonly prev_kv: WireKeyValue | null;
}

/** DeleteRangeResponse. */
export interface WireDeleteRangeResponse {
  readonly header: WireHeader | null;
  readonly deleted: Int64;
  readonly prev_kvs: readonly WireKeyValue[];
}

/** ResponseOp: `response` names the member that is set. */
export interface WireResponseOp {
  readonly response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  readonly response_range?: WireRangeResponse;
  readonly response_put?: WirePutResponse;
  readonly response_delete_range?: WireDeleteRangeResponse;
  readonly response_txn?: WireTxnResponse;
}

/** TxnResponse. */
export interface WireTxnResponse {
  readonly header: WireHeader | null;
  readonly succeeded: boolean;
  readonly responses: readonly WireResponseOp[];
}

/** mvccpb.Event. */
export interface WireEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: WireKeyValue | null;
  readonly prev_kv: WireKeyValue | null;
}

/** WatchResponse. */
export interface WireWatchResponse {
  readonly header: WireHeader | null;
  readonly watch_id: Int64;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: Int64;
  readonly cancel_reason: string;
  readonly events: readonly WireEvent[];
}

/** etcdserverpb.Member. */
export interface WireMember {
  readonly ID: Int64;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

/** The responses of the Cluster RPCs (`member` only on MemberAdd). */
export interface WireMemberResponse {
  readonly header: WireHeader | null;
  readonly member?: WireMember | null;
  readonly members: readonly WireMember[];
}

/** StatusResponse. */
export interface WireStatusResponse {
  readonly header: WireHeader | null;
  readonly version: string;
  readonly dbSize: Int64;
  readonly leader: Int64;
  readonly raftIndex: Int64;
  readonly raftTerm: Int64;
  readonly raftAppliedIndex: Int64;
  readonly errors: readonly string[];
  readonly dbSizeInUse: Int64;
  readonly isLearner: boolean;
}

/** HashKVResponse. */
export interface WireHashKvResponse {
  readonly header: WireHeader | null;
  readonly hash: number;
  readonly compact_revision: Int64;
}

/** AlarmMember. */
export interface WireAlarmMember {
  readonly memberID: Int64;
  readonly alarm: 'NONE' | 'NOSPACE' | 'CORRUPT';
}

/** AlarmResponse. */
export interface WireAlarmResponse {
  readonly header: WireHeader | null;
  readonly alarms: readonly WireAlarmMember[];
}

/** The key as the wire takes it: etcdctl arguments are UTF-8 text. */
export function keyBytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/**
 * The exclusive end of the range of every key starting with `key` (clientv3's
 * GetPrefixRangeEnd): the last byte below 0xff incremented, the 0xff bytes after it dropped;
 * `"\0"` (every key ≥ key) when every byte is 0xff.
 */
export function prefixRangeEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let index = end.length - 1; index >= 0; index--) {
    if (end[index]! < 0xff) {
      end[index] = end[index]! + 1;
      return end.subarray(0, index + 1);
    }
  }
  return Buffer.from([0]);
}

/** `range_end = "\0"`: every key ≥ the key (clientv3's WithFromKey). */
export const fromKeyRangeEnd: Buffer = Buffer.from([0]);

/**
 * `{ range_end }` only when non-empty. grpc-js writes a field given as an empty Buffer, and
 * etcd's decoder then reads an empty range end as "every key ≥ key" rather than "this key".
 */
export function rangeEndField(rangeEnd: Buffer | null): { range_end?: Buffer } {
  return rangeEnd === null || rangeEnd.length === 0 ? {} : { range_end: rangeEnd };
}

/** authpb.Permission. */
export interface WirePermission {
  readonly permType: 'READ' | 'WRITE' | 'READWRITE';
  readonly key: Buffer;
  readonly range_end: Buffer;
}

/** AuthRoleGetResponse. */
export interface WireRoleGetResponse {
  readonly header: WireHeader | null;
  readonly perm: readonly WirePermission[];
}

/** AuthUserGetResponse and AuthRoleListResponse: a header and names. */
export interface WireRolesResponse {
  readonly header: WireHeader | null;
  readonly roles: readonly string[];
}

/** AuthUserListResponse. */
export interface WireUserListResponse {
  readonly header: WireHeader | null;
  readonly users: readonly string[];
}

/** AuthStatusResponse. */
export interface WireAuthStatusResponse {
  readonly header: WireHeader | null;
  readonly enabled: boolean;
  readonly authRevision: Int64;
}

/** The Auth responses that carry only a header (UserAdd, RoleGrantPermission, …). */
export interface WireHeaderResponse {
  readonly header: WireHeader | null;
}
