/**
 * Watch with automatic reconnect. All watchers of a client share one gRPC Watch stream, as etcd's
 * Go client multiplexes them. When the stream breaks (the member died, lost its leader — the
 * stream asks `hasleader` — or the connection reset), it is reopened on the next endpoint and
 * every watcher is created again from the revision after the last one it delivered, so a consumer
 * sees each event once and in order across failovers. If that revision has been compacted in the
 * meantime the watcher ends with a `CompactedError` naming the compaction revision, and the
 * consumer decides how to resynchronise (read the range again, watch from its revision).
 *
 * ```ts
 * await using watcher = await client.watch('config/', { prefix: true });
 * for await (const batch of watcher) for (const event of batch.events) apply(event);
 * ```
 *
 * Bounds: a watcher buffers at most `bufferedEventsMax` undelivered events; a consumer that falls
 * further behind gets SYNOD_WATCH_CONSUMER_SLOW instead of unbounded memory. Creates are sent one at
 * a time because the server answers them in order, which is how a reply is matched to its watcher.
 */

import type { ClientDuplexStream } from '@grpc/grpc-js';
import { SynodError, assert } from '../base/index.js';
import { CompactedError, EtcdServerError, fromServiceError, isServiceError } from './errors.js';
import {
  headerOf, keyRangeOf, keyValueOf, type Bytes, type KeyRange, type KeyValue, type WireHeader,
  type WireKeyValue,
} from './kv-types.js';
import type { Endpoint } from './options.js';
import type { Transport } from './transport.js';

/** What to watch and from when. */
export interface WatchOptions extends KeyRange {
  /** First revision to deliver; default: changes after the watch is created. */
  readonly startRevision?: bigint;
  /** Deliver each event's previous key-value too. */
  readonly prevKv?: boolean;
  /** Skip puts or deletes. */
  readonly filters?: { readonly noPut?: boolean; readonly noDelete?: boolean };
  /** Ask the server for periodic progress notifications (empty batches with a revision). */
  readonly progressNotify?: boolean;
  /** At most this many undelivered events are buffered; default 100 000. */
  readonly bufferedEventsMax?: number;
}

/** One change. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  /** The key's previous version when `prevKv` was asked for and it existed. */
  readonly prevKv: KeyValue | null;
}

/** Events delivered together, all at revisions up to `revision`. */
export interface WatchBatch {
  /** The store revision the server reported with the batch. */
  readonly revision: bigint;
  /** Empty for a progress notification. */
  readonly events: readonly WatchEvent[];
}

interface WireWatchResponse {
  readonly header: WireHeader;
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly events: readonly { type: 'PUT' | 'DELETE'; kv: WireKeyValue; prev_kv: WireKeyValue | null }[];
}

type WatchStream = ClientDuplexStream<object, WireWatchResponse>;

/** Delay before reopening a broken stream, doubling to the cap. */
const reopenDelayFirstMs = 50;
const reopenDelayMaxMs = 2000;
const bufferedEventsMaxDefault = 100_000;

/** A running watch; iterate it for batches, close it (or dispose) to stop. */
export class Watcher implements AsyncIterable<WatchBatch>, AsyncDisposable {
  readonly #manager: WatchManager;
  readonly #options: WatchOptions;
  readonly #range: { key: Buffer; range_end?: Buffer };
  readonly #bufferedEventsMax: number;
  readonly #batches: WatchBatch[] = [];
  #bufferedEvents = 0;
  #waiting: ((done: boolean) => void) | null = null;
  #failure: Error | null = null;
  #ended = false;
  /** The next revision to ask for when (re)creating; 0n: "from now". */
  nextRevision: bigint;
  /** The server's id for this watcher on the current stream; null while not created. */
  watchId: string | null = null;
  readonly #created: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void };

  /** @internal Use `client.watch`. */
  constructor(manager: WatchManager, key: Bytes, options: WatchOptions) {
    this.#manager = manager;
    this.#options = options;
    this.#range = keyRangeOf(key, options);
    this.#bufferedEventsMax = options.bufferedEventsMax ?? bufferedEventsMaxDefault;
    this.nextRevision = options.startRevision ?? 0n;
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    promise.catch(() => undefined);
    this.#created = { promise, resolve, reject };
  }

  /** Resolves once the server created the watch (events after it are then delivered). */
  get created(): Promise<void> {
    return this.#created.promise;
  }

  /** Whether the watcher has ended (closed, failed or cancelled by the server). */
  get ended(): boolean {
    return this.#ended;
  }

  /** @internal The create request for the current stream. */
  createRequest(): object {
    const filters: string[] = [];
    if (this.#options.filters?.noPut === true) filters.push('NOPUT');
    if (this.#options.filters?.noDelete === true) filters.push('NODELETE');
    return {
      create_request: {
        ...this.#range,
        start_revision: this.nextRevision.toString(),
        progress_notify: this.#options.progressNotify === true,
        filters,
        prev_kv: this.#options.prevKv === true,
      },
    };
  }

  /** @internal The server created it; `revision` is the store's revision then. */
  onCreated(watchId: string, revision: bigint): void {
    this.watchId = watchId;
    if (this.nextRevision === 0n) this.nextRevision = revision + 1n;
    this.#created.resolve();
  }

  /** @internal A batch (or a progress notification) for this watcher. */
  onResponse(response: WireWatchResponse): void {
    if (this.#ended) return;
    const events = response.events.map((each): WatchEvent => ({
      type: each.type === 'PUT' ? 'put' : 'delete',
      kv: keyValueOf(each.kv),
      prevKv: each.prev_kv === null || each.prev_kv === undefined ? null : keyValueOf(each.prev_kv),
    }));
    const revision = headerOf(response.header).revision;
    const last = events.at(-1);
    if (last !== undefined) this.nextRevision = last.kv.modRevision + 1n;
    else if (revision + 1n > this.nextRevision) this.nextRevision = revision + 1n;
    this.#bufferedEvents += events.length;
    if (this.#bufferedEvents > this.#bufferedEventsMax) {
      this.fail(new SynodError('SYNOD_WATCH_CONSUMER_SLOW', `watcher has more than ${this.#bufferedEventsMax} unread events`));
      return;
    }
    this.#batches.push({ revision, events });
    this.#wake(false);
  }

  /** @internal Ends the watcher with `error` (iteration throws it after the buffered batches). */
  fail(error: Error): void {
    if (this.#ended) return;
    this.#failure = error;
    this.#created.reject(error);
    this.#end();
  }

  /** Stops watching; iteration ends after the batches already buffered. */
  async close(): Promise<void> {
    if (this.#ended) return;
    this.#created.reject(new SynodError('SYNOD_CLIENT_CLOSED', 'the watcher was closed'));
    this.#end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    try {
      while (true) {
        const batch = this.#batches.shift();
        if (batch !== undefined) {
          this.#bufferedEvents -= batch.events.length;
          yield batch;
          continue;
        }
        if (this.#failure !== null) throw this.#failure;
        if (this.#ended) return;
        await new Promise<boolean>((resolve) => (this.#waiting = resolve));
      }
    } finally {
      // A consumer that breaks out of the loop is done with the watcher.
      if (!this.#ended) await this.close();
    }
  }

  #end(): void {
    this.#ended = true;
    this.#manager.remove(this);
    this.#wake(true);
  }

  #wake(done: boolean): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.(done);
  }
}

/** How long the Watch stream stays open with no watcher before it is closed. */
const idleStreamLingerMs = 30_000;

/** The client's shared Watch stream and its watchers. */
export class WatchManager {
  readonly #transport: Transport;
  readonly #watchers = new Set<Watcher>();
  readonly #byId = new Map<string, Watcher>();
  /** Sent creates awaiting their `created` reply, oldest first. */
  readonly #creating: Watcher[] = [];
  /** Watchers waiting for their create to be sent. */
  readonly #toCreate: Watcher[] = [];
  #stream: { stream: WatchStream; endpoint: Endpoint } | null = null;
  #opening = false;
  #reopenAttempt = 0;
  #reopenTimer: NodeJS.Timeout | null = null;
  /** Closes the stream once it has had no watcher for `idleStreamLingerMs`. */
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Starts a watcher; resolves once the server created it. */
  async watch(key: Bytes, options: WatchOptions = {}): Promise<Watcher> {
    if (this.#transport.closed) throw new SynodError('SYNOD_CLIENT_CLOSED');
    const watcher = new Watcher(this, key, options);
    this.#watchers.add(watcher);
    this.#toCreate.push(watcher);
    this.#cancelIdleClose();
    this.#pump();
    await watcher.created;
    return watcher;
  }

  /** @internal A watcher ended: cancel it on the server, and drop the stream when none is left. */
  remove(watcher: Watcher): void {
    if (!this.#watchers.delete(watcher)) return;
    removeFrom(this.#toCreate, watcher);
    if (watcher.watchId !== null) {
      this.#byId.delete(watcher.watchId);
      this.#stream?.stream.write({ cancel_request: { watch_id: watcher.watchId } });
    }
    // One still in #creating is cancelled when its `created` reply arrives.
    if (this.#watchers.size === 0 && this.#creating.length === 0) this.#closeWhenIdle();
  }

  /**
   * Keeps the idle stream a while for the next watcher: every close is an RST_STREAM, and a
   * Node (nghttp2) server answers more than 1000 of them at 33/s with GOAWAY INTERNAL_ERROR.
   */
  #closeWhenIdle(): void {
    if (this.#stream === null || this.#idleTimer !== null) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#watchers.size === 0 && this.#creating.length === 0) this.#closeStream();
    }, idleStreamLingerMs);
    this.#idleTimer.unref();
  }

  #cancelIdleClose(): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** Ends every watcher (the client is closing). */
  close(): void {
    for (const watcher of [...this.#watchers]) watcher.fail(new SynodError('SYNOD_CLIENT_CLOSED'));
    if (this.#reopenTimer !== null) clearTimeout(this.#reopenTimer);
    this.#closeStream();
  }

  /** Opens the stream if needed and sends the next create when none is in flight. */
  #pump(): void {
    if (this.#transport.closed) return;
    if (this.#stream === null) {
      if (!this.#opening && this.#reopenTimer === null) void this.#open();
      return;
    }
    if (this.#creating.length > 0) return;
    const next = this.#toCreate.shift();
    if (next === undefined) return;
    this.#creating.push(next);
    this.#stream.stream.write(next.createRequest());
  }

  async #open(): Promise<void> {
    this.#opening = true;
    try {
      const opened = await this.#transport.bidiStream<object, WireWatchResponse>('Watch', 'Watch');
      this.#stream = opened;
      opened.stream.on('data', (response: WireWatchResponse) => this.#onResponse(response));
      opened.stream.on('error', (error: Error) => this.#onBroken(opened.stream, error));
      opened.stream.on('end', () => this.#onBroken(opened.stream, null));
      // Closed, or every watcher gone, while the stream was opening: nothing will use it.
      if (this.#transport.closed || this.#watchers.size === 0) {
        this.#closeStream();
        return;
      }
    } catch (error) {
      this.#scheduleReopen(error);
      return;
    } finally {
      this.#opening = false;
    }
    this.#pump();
  }

  #onResponse(response: WireWatchResponse): void {
    if (response.created) {
      const watcher = this.#creating.shift();
      assert(watcher !== undefined, 'watch: a created reply matches a sent create');
      this.#reopenAttempt = 0;
      if (!this.#watchers.has(watcher)) {
        this.#stream?.stream.write({ cancel_request: { watch_id: response.watch_id } });
      } else if (response.canceled) {
        // Refused at creation (permission denied, compacted start revision on etcd < 3.5…).
        watcher.fail(this.#cancelError(response));
      } else {
        this.#byId.set(response.watch_id, watcher);
        watcher.onCreated(response.watch_id, headerOf(response.header).revision);
      }
      this.#pump();
      return;
    }
    const watcher = this.#byId.get(response.watch_id);
    if (watcher === undefined) return;
    if (response.canceled) {
      this.#byId.delete(response.watch_id);
      watcher.watchId = null;
      watcher.fail(this.#cancelError(response));
      return;
    }
    watcher.onResponse(response);
  }

  #cancelError(response: WireWatchResponse): Error {
    const compactRevision = BigInt(response.compact_revision);
    if (compactRevision > 0n) return new CompactedError(compactRevision);
    const reason = response.cancel_reason === '' ? 'the server cancelled the watch' : response.cancel_reason;
    const endpoint = this.#stream?.endpoint.text ?? '';
    return new EtcdServerError({ code: 'SYNOD_SERVER_ERROR', grpcCode: 0, message: reason, endpoint });
  }

  /** The stream failed or ended: every live watcher is created again on a new stream. */
  #onBroken(stream: WatchStream, error: Error | null): void {
    if (this.#stream === null || this.#stream.stream !== stream) return;
    const { endpoint } = this.#stream;
    this.#stream = null;
    this.#transport.demote(endpoint);
    if (error !== null && isServiceError(error) && this.#transport.isTokenRefusal(error)) {
      this.#transport.invalidateToken();
    }
    this.#byId.clear();
    this.#creating.length = 0;
    this.#toCreate.length = 0;
    for (const watcher of this.#watchers) {
      watcher.watchId = null;
      this.#toCreate.push(watcher);
    }
    if (this.#watchers.size > 0) this.#scheduleReopen(error === null ? null : fromStreamError(error, endpoint));
  }

  #scheduleReopen(_cause: unknown): void {
    if (this.#transport.closed || this.#watchers.size === 0) return;
    const delayMs = Math.min(reopenDelayMaxMs, reopenDelayFirstMs * 2 ** Math.min(this.#reopenAttempt, 8));
    this.#reopenAttempt++;
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = null;
      this.#pump();
    }, delayMs * (0.5 + Math.random() / 2));
  }

  #closeStream(): void {
    this.#cancelIdleClose();
    const current = this.#stream;
    this.#stream = null;
    this.#byId.clear();
    this.#creating.length = 0;
    if (current !== null) {
      current.stream.end();
      current.stream.cancel();
    }
  }
}

function fromStreamError(error: Error, endpoint: Endpoint): Error {
  return isServiceError(error) ? fromServiceError(error, endpoint.text) : error;
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}
