/**
 * The watch hub: etcd's watchableStore and watch streams (server/mvcc/watchable_store.go,
 * watch_stream.go), pure and synchronous. The state machine calls `notify` after each applied
 * write; the server opens a stream per gRPC Watch call, feeds it create, cancel and progress
 * requests, and pulls responses with `drain`, which is also when behind watchers read history.
 *
 * Synced watchers get each revision's events into their bounded buffer at `notify`. A watcher
 * whose buffer is full at that moment becomes a victim: it leaves the synced group and re-reads the
 * revision from history once its consumer drains, so a slow consumer never blocks `notify` or other
 * watchers, and memory stays bounded by the buffers. A watcher created with a start revision at or
 * below the current one starts unsynced the same way. Catching up stops when the buffer fills, so
 * history is read only as fast as the consumer takes it.
 *
 * Compaction follows etcd: a watcher whose next revision is below the compaction point is canceled
 * with `compactRevision` (after what it buffered). At exactly the compaction point history lacks
 * the tombstones compaction dropped, so a watcher starting there may miss deletes at that revision,
 * as in etcd.
 *
 * `drain` output of one stream, in order: pending create/cancel/progress-notify replies, then
 * events (whole revisions, round-robin over watchers), then a requested progress response once
 * every watcher on the stream is synced with an empty buffer (etcd 3.5's RequestProgress).
 */

import { assert, mark, SynodError } from '../../base/index.js';
import { compareBytes, isUnboundedEnd } from '../bytes.js';
import type { MvccStore } from '../mvcc-store.js';
import type { KvEvent } from '../types.js';
import { readHistory } from './history.js';
import type { WatchHubLimits, WatchHubOptions } from './limits.js';
import { watchHubLimits } from './limits.js';
import { eventResponses, watchResponse } from './responses.js';
import type { WatchCreateRequest, WatchResponse } from './types.js';
import { watchCancelReasons } from './types.js';
import { Watcher } from './watcher.js';

/**
 * The code of "too many streams" and "too many pending replies" until the registry has watch
 * codes (proposed: SYNOD_WATCH_STREAMS_EXHAUSTED, SYNOD_WATCH_STREAM_BUSY): the nearest existing
 * meaning, "too many waiting; retry later".
 */

interface WatchStream {
  readonly watchers: Map<number, Watcher>;
  /** Create, cancel and progress-notify replies not yet drained. Bounded by the limits. */
  readonly control: WatchResponse[];
  progressRequested: boolean;
  /** The next server-assigned watch ID candidate (etcd's nextID, from 0). */
  watchIdNext: number;
}

/** The watch hub over one store. Not reentrant; one caller drives it with the state machine. */
export class WatchHub {
  /** The state machine's store; swapped by `replaceStore` when a snapshot is installed. */
  #store: MvccStore;
  readonly #limits: WatchHubLimits;
  /** The last revision `notify` delivered; history is read up to here. */
  #revision: number;
  readonly #streams = new Map<number, WatchStream>();
  readonly #synced = new Set<Watcher>();
  #streamIdNext = 1;

  /** A hub over `store`, starting at the store's current revision. */
  constructor(store: MvccStore, options: WatchHubOptions = {}) {
    this.#store = store;
    this.#limits = watchHubLimits(options);
    this.#revision = store.currentRevision;
  }

  /** The last revision delivered by `notify`. */
  get revision(): number {
    return this.#revision;
  }

  /** Open streams (etcd_debugging_mvcc_watch_stream_total). */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Watchers on every open stream (etcd_debugging_mvcc_watcher_total); O(streams). */
  get watcherCount(): number {
    let watchers = 0;
    for (const stream of this.#streams.values()) watchers += stream.watchers.size;
    return watchers;
  }

  /** Opens a stream; more than `streamsMax` is an error (SYNOD_WATCH_STREAMS_EXHAUSTED). */
  openStream(): number {
    if (this.#streams.size >= this.#limits.streamsMax) {
      throw new SynodError('SYNOD_WATCH_STREAMS_EXHAUSTED');
    }
    const id = this.#streamIdNext++;
    this.#streams.set(id, { watchers: new Map(), control: [], progressRequested: false,
      watchIdNext: 0 });
    return id;
  }

  /** Closes a stream and drops its watchers and undrained responses. */
  closeStream(streamId: number): void {
    const stream = this.#stream(streamId);
    for (const watcher of stream.watchers.values()) this.#synced.delete(watcher);
    this.#streams.delete(streamId);
  }

  /**
   * etcd's create_request: queues the create reply (and, if the start revision is compacted,
   * the cancel with `compactRevision`). A failed create is replied `created + canceled` with
   * watch ID -1 and a reason. Too many undrained replies is an error: stop reading requests.
   */
  create(streamId: number, request: WatchCreateRequest): void {
    const stream = this.#stream(streamId);
    this.#ensureControlRoom(stream, 2);
    const revision = this.#revision;
    const failed = this.#createFailure(stream, request);
    if (failed !== undefined) {
      stream.control.push(watchResponse({ revision, watchId: -1, created: true, canceled: true,
        cancelReason: failed }));
      return;
    }
    const id = this.#assignWatchId(stream, request.watchId ?? 0);
    stream.control.push(watchResponse({ revision, watchId: id, created: true }));
    const start = Math.max(request.startRevision ?? 0, 0);
    const compactRevision = this.#store.compactRevision;
    if (start > 0 && start < compactRevision) {
      mark('watch: created below compaction');
      stream.control.push(watchResponse({ revision, watchId: id, canceled: true,
        compactRevision }));
      return;
    }
    const synced = start === 0 || start > revision;
    const minRevision = synced ? Math.max(start, revision + 1) : start;
    const watcher = new Watcher({
      id, span: spanOfWatch(request), minRevision,
      noPut: request.filters?.includes('NOPUT') ?? false,
      noDelete: request.filters?.includes('NODELETE') ?? false,
      prevKv: request.prevKv ?? false, fragment: request.fragment ?? false,
      progressNotify: request.progressNotify ?? false,
    }, { nextRevision: synced ? revision + 1 : start, synced,
      bufferBytesMax: this.#limits.watchBufferBytesMax });
    stream.watchers.set(id, watcher);
    if (synced) this.#synced.add(watcher);
  }

  /** etcd's cancel_request: removes the watcher and queues `canceled`; unknown IDs are ignored. */
  cancel(streamId: number, watchId: number): void {
    const stream = this.#stream(streamId);
    const watcher = stream.watchers.get(watchId);
    if (watcher === undefined) return;
    this.#ensureControlRoom(stream, 1);
    this.#remove(stream, watcher);
    stream.control.push(watchResponse({ revision: this.#revision, watchId, canceled: true }));
  }

  /** etcd's progress_request: answered with watch ID -1 by `drain` once the stream is synced. */
  requestProgress(streamId: number): void {
    this.#stream(streamId).progressRequested = true;
  }

  /**
   * Delivers the events of the write that made `revision` (all of them, in order). Events of a
   * revision that changed nothing are empty with `revision` the current one.
   */
  notify(events: readonly KvEvent[], revision: number): void {
    if (events.length === 0) {
      assert(revision === this.#revision, 'notify: an empty revision must be the current one');
      return;
    }
    assert(revision === this.#revision + 1, 'notify: revisions must come in order');
    assert(revision <= this.#store.currentRevision, 'notify: revision ahead of the store');
    for (const event of events) {
      assert(event.kv.modRevision === revision, 'notify: events of another revision');
    }
    this.#revision = revision;
    for (const watcher of this.#synced) {
      assert(watcher.synced && watcher.nextRevision === revision, 'notify: synced watcher behind');
      watcher.nextRevision = revision + 1;
      if (revision < watcher.spec.minRevision) continue;
      const selected = watcher.eventsOf(events);
      if (selected.length === 0) continue;
      if (!watcher.tryBuffer({ revision, events: selected })) {
        mark('watch: victim');
        watcher.synced = false;
        watcher.nextRevision = revision;
        this.#synced.delete(watcher);
      }
    }
  }

  /**
   * Moves the hub onto `store`, which replaced the state machine's store when a Raft snapshot was
   * installed (etcd's watchableStore.Restore). The new store is at or past the hub's revision,
   * since a snapshot only moves a member forward. Every watcher keeps its next revision and
   * re-reads what it missed from the new store's history as an unsynced watcher; one whose next
   * revision is below the new compaction point will be canceled with `compactRevision` after
   * what it buffered (etcd's chooseAll on a restored watcher). A watcher waiting for a start
   * revision still ahead of the new store stays synced: there is nothing for it to read.
   */
  replaceStore(store: MvccStore): void {
    assert(store !== this.#store, 'replaceStore: the same store');
    assert(store.currentRevision >= this.#revision, 'replaceStore: a snapshot moved backwards');
    this.#store = store;
    this.#revision = store.currentRevision;
    const compactRevision = store.compactRevision;
    for (const stream of this.#streams.values()) {
      for (const watcher of stream.watchers.values()) {
        this.#restoreWatcher(watcher, compactRevision);
      }
    }
    // Invariant: the synced group is exactly the synced watchers, all at the new revision.
    for (const watcher of this.#synced) {
      assert(watcher.synced && watcher.nextRevision === this.#revision + 1,
        'replaceStore: synced watcher not at the new revision');
    }
  }

  /**
   * Periodic progress (etcd's progress_notify): for each `progressNotify` watcher that is synced
   * with an empty buffer and delivered nothing since the last call, queues an empty response with
   * its own watch ID and the current revision. The server calls this every progress interval
   * (etcd: 10 min plus jitter); the timing is the server's.
   */
  notifyProgress(): void {
    for (const stream of this.#streams.values()) {
      for (const watcher of stream.watchers.values()) {
        if (!watcher.spec.progressNotify) continue;
        const idle = watcher.synced && watcher.bufferEmpty && !watcher.deliveredSinceProgress;
        watcher.deliveredSinceProgress = false;
        // Best effort: a stream with replies piling up gets no more progress replies.
        if (!idle || stream.control.length >= this.#limits.controlResponsesMax) continue;
        stream.control.push(watchResponse({ revision: this.#revision, watchId: watcher.spec.id }));
      }
    }
  }

  /**
   * The next responses of a stream, in the order described in the module comment, at most
   * `responsesMax` (a fragmented revision is never cut, so that many plus its other fragments).
   */
  drain(streamId: number, options: { responsesMax?: number } = {}): WatchResponse[] {
    const stream = this.#stream(streamId);
    const responsesMax = options.responsesMax ?? Number.POSITIVE_INFINITY;
    assert(responsesMax >= 1, 'drain: responsesMax must be ≥ 1');
    const responses: WatchResponse[] = [];
    while (stream.control.length > 0 && responses.length < responsesMax) {
      responses.push(stream.control.shift()!);
    }
    let progressed = true;
    while (progressed && responses.length < responsesMax) {
      progressed = false;
      for (const watcher of [...stream.watchers.values()]) {
        if (responses.length >= responsesMax) break;
        const next = this.#nextResponses(stream, watcher);
        if (next.length > 0) progressed = true;
        responses.push(...next);
      }
    }
    if (stream.progressRequested && responses.length < responsesMax && this.#isSynced(stream)) {
      stream.progressRequested = false;
      responses.push(watchResponse({ revision: this.#revision, watchId: -1 }));
    }
    return responses;
  }

  /** Bytes a watcher buffers now, for metrics and tests; undefined if no such watcher. */
  bufferedBytes(streamId: number, watchId: number): number | undefined {
    return this.#stream(streamId).watchers.get(watchId)?.bufferBytes;
  }

  /** The responses of one buffered revision, a terminal cancel, or none. Catches up if empty. */
  #nextResponses(stream: WatchStream, watcher: Watcher): WatchResponse[] {
    if (watcher.bufferEmpty && !watcher.synced && watcher.compactRevision === 0) {
      this.#catchUp(watcher);
    }
    const group = watcher.shift();
    if (group !== undefined) {
      watcher.deliveredSinceProgress = true;
      return eventResponses(group, { watchId: watcher.spec.id, fragment: watcher.spec.fragment,
        fragmentBytesMax: this.#limits.fragmentBytesMax });
    }
    if (watcher.compactRevision === 0) return [];
    this.#remove(stream, watcher);
    return [watchResponse({ revision: this.#revision, watchId: watcher.spec.id, canceled: true,
      compactRevision: watcher.compactRevision })];
  }

  /** Fills an unsynced watcher's empty buffer from history; joins the synced group if done. */
  #catchUp(watcher: Watcher): void {
    assert(!watcher.synced && watcher.bufferEmpty, 'catch-up: watcher not an empty victim');
    assert(watcher.nextRevision <= this.#revision, 'catch-up: unsynced watcher is not behind');
    const compactRevision = this.#store.compactRevision;
    if (watcher.nextRevision < compactRevision) {
      mark('watch: history compacted');
      watcher.compactRevision = compactRevision;
      return;
    }
    const history = readHistory(this.#store, {
      fromRevision: watcher.nextRevision, toRevision: this.#revision,
      select: watcher.selects, prevKv: watcher.spec.prevKv,
    });
    for (const group of history) {
      if (!watcher.tryBuffer(group)) {
        mark('watch: catch-up paused on a full buffer');
        watcher.nextRevision = group.revision;
        return;
      }
      watcher.nextRevision = group.revision + 1;
    }
    watcher.nextRevision = this.#revision + 1;
    watcher.synced = true;
    this.#synced.add(watcher);
  }

  /** One watcher's move onto the new store (see `replaceStore`). */
  #restoreWatcher(watcher: Watcher, compactRevision: number): void {
    if (watcher.compactRevision !== 0) return;
    // A synced watcher delivered everything below its next revision; a victim has its own.
    // Neither needs revisions below its start.
    const needed = Math.max(watcher.nextRevision, watcher.spec.minRevision);
    if (needed > this.#revision) {
      assert(watcher.synced, 'replaceStore: an unsynced watcher ahead of the hub');
      watcher.nextRevision = this.#revision + 1;
      return;
    }
    watcher.synced = false;
    watcher.nextRevision = needed;
    this.#synced.delete(watcher);
    if (needed < compactRevision) {
      mark('watch: restored below compaction');
      watcher.compactRevision = compactRevision;
    }
  }

  #isSynced(stream: WatchStream): boolean {
    for (const watcher of stream.watchers.values()) {
      if (!watcher.synced || !watcher.bufferEmpty) return false;
    }
    return true;
  }

  #createFailure(stream: WatchStream, request: WatchCreateRequest): string | undefined {
    const watchId = request.watchId ?? 0;
    assert(Number.isSafeInteger(watchId), 'create: watch ID must be an integer');
    if (watchId !== 0 && stream.watchers.has(watchId)) return watchCancelReasons.duplicateId;
    const span = spanOfWatch(request);
    const bounded = span.rangeEnd.length > 0 && !isUnboundedEnd(span.rangeEnd);
    if (bounded && compareBytes(span.key, span.rangeEnd) >= 0) return watchCancelReasons.emptyRange;
    if (stream.watchers.size >= this.#limits.watchersPerStreamMax) {
      return watchCancelReasons.watchersExhausted;
    }
    return undefined;
  }

  #assignWatchId(stream: WatchStream, requested: number): number {
    if (requested !== 0) return requested;
    while (stream.watchers.has(stream.watchIdNext)) stream.watchIdNext++;
    return stream.watchIdNext++;
  }

  #ensureControlRoom(stream: WatchStream, count: number): void {
    if (stream.control.length + count > this.#limits.controlResponsesMax) {
      throw new SynodError('SYNOD_WATCH_STREAM_BUSY');
    }
  }

  #remove(stream: WatchStream, watcher: Watcher): void {
    const removed = stream.watchers.delete(watcher.spec.id);
    assert(removed, 'remove: watcher not on its stream');
    this.#synced.delete(watcher);
  }

  #stream(streamId: number): WatchStream {
    const stream = this.#streams.get(streamId);
    assert(stream !== undefined, `unknown watch stream ${streamId}`);
    return stream;
  }
}

/** A watch request's span; an empty key is read as `"\0"`, as etcd does on Watch. */
function spanOfWatch(request: WatchCreateRequest): { key: Uint8Array; rangeEnd: Uint8Array } {
  const key = request.key.length === 0 ? new Uint8Array([0]) : request.key;
  return { key, rangeEnd: request.rangeEnd ?? new Uint8Array(0) };
}
