/**
 * Reading watch events back from MVCC history, for watchers that are behind (etcd's
 * watchableStore.syncWatchers, server/mvcc/watchable_store.go). The `key` bucket holds one record
 * per change under its encoded revision `(main, sub)`, in revision order, so the events of
 * revisions `[from, to]` are one backend scan from `(from, 0)` to `(to + 1, 0)`. A previous value
 * is read as of `modRevision - 1`, as etcd's watch server does; when that is compacted the event
 * goes without it, as in etcd.
 *
 * Compaction removes the records of revisions below the compaction point and the tombstones at
 * it, so history is complete only from `compactRevision + 1`; a reader behind that is canceled
 * by the hub (see watch-hub.ts for the exact rule).
 */

import { assert, isSynodError } from '../../base/index.js';
import { decodeRecord } from '../codec.js';
import type { MvccStore } from '../mvcc-store.js';
import { decodeRevision, encodeRevision } from '../revision.js';
import type { KeyValue, KvEvent } from '../types.js';

/** The events of one revision, in sub-revision order. Invariant: non-empty. */
export interface RevisionEvents {
  readonly revision: number;
  readonly events: KvEvent[];
}

/** What to read: a revision interval, which events, and whether to attach previous values. */
export interface HistoryQuery {
  /** First revision, inclusive. */
  readonly fromRevision: number;
  /** Last revision, inclusive; at most the store's current revision. */
  readonly toRevision: number;
  /** Keeps an event (judged on `type` and `kv.key` only, before the previous value is read). */
  readonly select: (event: KvEvent) => boolean;
  readonly prevKv: boolean;
}

/**
 * Yields, in ascending order, each revision in the query's interval with a selected event. The
 * generator reads the backend lazily: consume it to the end or drop it before the store changes
 * (a backend scan is not valid across a commit).
 */
export function* readHistory(store: MvccStore, query: HistoryQuery): Generator<RevisionEvents> {
  const { fromRevision, toRevision } = query;
  assert(fromRevision >= 1 && fromRevision <= toRevision + 1, 'history: bad revision interval');
  assert(toRevision <= store.currentRevision, 'history: read past the current revision');
  const bounds = {
    start: encodeRevision({ main: fromRevision, sub: 0 }),
    end: encodeRevision({ main: toRevision + 1, sub: 0 }),
  };
  let group: RevisionEvents | undefined;
  for (const entry of store.backend.scan('key', bounds)) {
    const { main } = decodeRevision(entry.key);
    const event = eventOf(decodeRecord(entry.value, main), main);
    if (!query.select(event)) continue;
    if (group !== undefined && group.revision !== main) {
      yield group;
      group = undefined;
    }
    group ??= { revision: main, events: [] };
    group.events.push(query.prevKv ? withPrevKv(store, event) : event);
  }
  if (group !== undefined) yield group;
}

function eventOf(record: ReturnType<typeof decodeRecord>, main: number): KvEvent {
  if (record.kind === 'put') return { type: 'PUT', kv: record.kv };
  // The same shape the write path emits for a delete (write-txn.ts, deleteRange).
  const kv: KeyValue = {
    key: record.key, createRevision: 0, modRevision: main, version: 0,
    value: new Uint8Array(0), lease: 0n,
  };
  return { type: 'DELETE', kv };
}

function withPrevKv(store: MvccStore, event: KvEvent): KvEvent {
  const revision = event.kv.modRevision - 1;
  // A create has no previous value; skip the read.
  if (event.type === 'PUT' && event.kv.version === 1) return event;
  let previous: KeyValue | undefined;
  try {
    previous = store.range({ key: event.kv.key, revision }).kvs[0];
  } catch (error) {
    if (!isSynodError(error, 'SYNOD_COMPACTED')) throw error;
    previous = undefined;
  }
  return previous === undefined ? event : { ...event, prevKv: previous };
}
