/**
 * Requests and responses of the watch hub, shaped after etcd's `WatchCreateRequest`,
 * `WatchCancelRequest` and `WatchResponse` (api/etcdserverpb/rpc.proto) with camelCase names.
 * The server edge maps them to and from the wire; `header` carries only the revision here, the
 * edge adds cluster_id, member_id and raft_term.
 */

import type { KvEvent, ResponseHeader } from '../types.js';

/** `WatchCreateRequest.filters`: drop PUT events, or drop DELETE events. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

/** etcd's `WatchCreateRequest`. Unset fields default as in proto3. */
export interface WatchCreateRequest {
  /** First key; empty is read as `"\0"`, as etcd does on Watch. */
  readonly key: Uint8Array;
  /** Empty = the single key; `"\0"` = every key ≥ `key`; else `[key, rangeEnd)`. */
  readonly rangeEnd?: Uint8Array;
  /** First revision to deliver; 0 (or unset) = the next revision. */
  readonly startRevision?: number;
  /** Ask for periodic empty responses while nothing happens (see `WatchHub.notifyProgress`). */
  readonly progressNotify?: boolean;
  readonly filters?: readonly WatchFilter[];
  /** Deliver each event's previous value (read at `modRevision - 1`). */
  readonly prevKv?: boolean;
  /** Client-chosen watch ID; 0 (or unset) = the server assigns one. */
  readonly watchId?: number;
  /** Allow one revision's events to be split across responses (see `WatchResponse.fragment`). */
  readonly fragment?: boolean;
}

/**
 * etcd's `WatchResponse`. Exactly one of these shapes: a create reply (`created`), a cancel
 * (`canceled`, with `compactRevision > 0` when history the watcher needed was compacted), a
 * progress notification (no events), or events of whole revisions in ascending order — except that
 * a fragmented revision spans several responses, every part but the last with `fragment = true`.
 */
export interface WatchResponse {
  /** `header.revision`: the revision of the last event included, or the hub's current one. */
  readonly header: ResponseHeader;
  /** The watcher this is for; -1 for a failed create or a stream-wide progress response. */
  readonly watchId: number;
  readonly created: boolean;
  readonly canceled: boolean;
  /** The compaction point when history the watcher needed is gone; else 0. */
  readonly compactRevision: number;
  /** etcd's cancel reason text; empty unless a create failed. */
  readonly cancelReason: string;
  readonly fragment: boolean;
  readonly events: readonly KvEvent[];
}

/** etcd's cancel reasons for a failed create (exact text; clients match on it). */
export const watchCancelReasons = Object.freeze({
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  emptyRange: 'mvcc: watcher range is empty',
  // Synod's own: etcd has no limit here. A new reason, not matched by any client.
  watchersExhausted: 'synod: too many watchers on the stream',
});
