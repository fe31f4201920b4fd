/**
 * Requests, responses and events of the KV state machine, shaped after etcd's `etcdserverpb` and
 * `mvccpb` messages with camelCase names. Revisions are numbers (safe integers); lease IDs are
 * int64 on the wire and so are `bigint` here, with `0n` meaning "no lease". Enum values are etcd's
 * enum names, as npm etcd3 sends them (`enums: String`). Optional request fields default as in
 * proto3: zero, empty or false.
 */

/** `ResponseHeader.revision`: the store's current revision when the response was made. */
export interface ResponseHeader {
  readonly revision: number;
}

/** etcd's `mvccpb.KeyValue`. Invariant: `version ≥ 1`, `createRevision ≤ modRevision`. */
export interface KeyValue {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  /** 1 on create, +1 per write since. */
  readonly version: number;
  readonly value: Uint8Array;
  /** The attached lease, or 0n. */
  readonly lease: bigint;
}

/**
 * One change for watchers, as `mvccpb.Event`. A DELETE's `kv` holds only `key` and `modRevision`
 * (the deleting revision), as etcd sends it; `prevKv` is the value before the change, if any.
 */
export interface KvEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

/** `RangeRequest.sort_order`. */
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
/** `RangeRequest.sort_target`. */
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/** etcd's `RangeRequest`. `rangeEnd` empty = the single key; `"\0"` = every key ≥ `key`. */
export interface RangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** At most this many kvs; 0 = no limit. */
  readonly limit?: number;
  /** Read as of this revision; ≤ 0 = the current one. */
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  /** Filters; 0 = no bound. Inclusive. */
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

/** etcd's `RangeResponse`. `count` is taken before filters and limit. */
export interface RangeResponse {
  readonly header: ResponseHeader;
  readonly kvs: KeyValue[];
  /** True when more kvs matched than `limit` allowed. */
  readonly more: boolean;
  readonly count: number;
}

/** etcd's `PutRequest`. */
export interface PutRequest {
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
  /** Lease to attach; 0n = none. */
  readonly lease?: bigint;
  readonly prevKv?: boolean;
  /** Keep the current value (the key must exist; `value` must be empty). */
  readonly ignoreValue?: boolean;
  /** Keep the current lease (the key must exist; `lease` must be 0n). */
  readonly ignoreLease?: boolean;
}

/** etcd's `PutResponse`. */
export interface PutResponse {
  readonly header: ResponseHeader;
  readonly prevKv?: KeyValue;
}

/** etcd's `DeleteRangeRequest`. */
export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly prevKv?: boolean;
}

/** etcd's `DeleteRangeResponse`. `prevKvs` is filled only when asked for. */
export interface DeleteRangeResponse {
  readonly header: ResponseHeader;
  readonly deleted: number;
  readonly prevKvs: KeyValue[];
}

/** `Compare.result`. */
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

/** `Compare.target` with its `target_union` operand. */
export type CompareTarget =
  | { readonly target: 'VERSION'; readonly version: number }
  | { readonly target: 'CREATE'; readonly createRevision: number }
  | { readonly target: 'MOD'; readonly modRevision: number }
  | { readonly target: 'VALUE'; readonly value: Uint8Array }
  | { readonly target: 'LEASE'; readonly lease: bigint };

/** etcd's `Compare`: `kv.<target> <result> operand` must hold for every key in the span. */
export type Compare = CompareTarget & {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly result: CompareResult;
};

/** etcd's `RequestOp` oneof. */
export type RequestOp =
  | { readonly requestRange: RangeRequest }
  | { readonly requestPut: PutRequest }
  | { readonly requestDeleteRange: DeleteRangeRequest }
  | { readonly requestTxn: TxnRequest };

/** etcd's `ResponseOp` oneof. */
export type ResponseOp =
  | { readonly responseRange: RangeResponse }
  | { readonly responsePut: PutResponse }
  | { readonly responseDeleteRange: DeleteRangeResponse }
  | { readonly responseTxn: TxnResponse };

/** etcd's `TxnRequest`. */
export interface TxnRequest {
  readonly compare?: readonly Compare[];
  readonly success?: readonly RequestOp[];
  readonly failure?: readonly RequestOp[];
}

/** etcd's `TxnResponse`. */
export interface TxnResponse {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
}
