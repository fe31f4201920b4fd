/**
 * PrefixCache: a local copy of every key under a prefix, kept current by a watch (Curator's
 * TreeCache, etcd's watch-based caches such as the gRPC proxy's).
 *
 * `start` loads the prefix with one Range and watches it from that Range's revision + 1, so no
 * change is missed or applied twice. `revision` is the store revision the cache is consistent
 * with: the Range's at first, then the revision of the last change applied (or of a progress
 * notification). Reading the prefix at that revision gives exactly `entries()`. It does not move
 * for writes outside the prefix, so to wait for a write of your own, wait until `revision`
 * reaches the revision the write returned. After each batch of changes the cache dispatches a
 * `change` event (PrefixCacheChangeEvent) with the events and the new revision.
 *
 * When the watch cannot resume because the revision it needs was compacted (its stream broke and
 * the history moved on meanwhile, or compaction raced the first load), the cache reloads: a new
 * Range, a watch from its revision + 1, and a `reload` event instead of the `change` events it
 * missed: a listener that keeps derived state must rebuild it from `entries()`. Reloads that
 * keep racing compaction give up after `reloadAttemptsMax` in a row.
 *
 * The cache holds at most `keysMax` keys: a prefix that holds more when loaded is refused, and
 * one that grows past it later closes the cache with SYNOD_INVALID_ARGUMENT (the bound the caller
 * chose does not fit the data) in `failure`, as does any other watch failure. A closed cache
 * dispatches `close` once and keeps its last contents; start a new one to go on.
 */

import { SynodError, isSynodError } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import { toBuffer, type Bytes, type KeyValue } from '../kv-types.js';
import type { WatchBatch, WatchEvent, Watcher } from '../watch.js';

/** Keys a cache holds by default. */
export const prefixCacheKeysMaxDefault = 100_000;
/** Reloads in a row, each undone by compaction before its watch started, before giving up. */
const reloadAttemptsMax = 8;

/** What the cache needs of a client: a test can stand a double in for it. */
export type PrefixCacheClient = Pick<SynodClient, 'range' | 'watch'>;

/** Options of `PrefixCache.start`. */
export interface PrefixCacheOptions {
  /** At most this many keys are cached (see the module comment); default 100 000. */
  readonly keysMax?: number;
}

/** Dispatched as `change` after a batch of changes has been applied to the cache. */
export class PrefixCacheChangeEvent extends Event {
  /** The changes, in revision order; each carries the previous key-value when there was one. */
  readonly events: readonly WatchEvent[];
  /** The cache's revision after applying them. */
  readonly revision: bigint;

  constructor(events: readonly WatchEvent[], revision: bigint) {
    super('change');
    this.events = events;
    this.revision = revision;
  }
}

/** Keys of the map: bytes as latin1, one character per byte, so any key maps one to one. */
function mapKey(key: Buffer): string {
  return key.toString('latin1');
}

function tooManyKeys(prefix: Buffer, keysMax: number): SynodError {
  const detail = `prefix cache ${prefix.toString()}: more than ${keysMax} keys`;
  return new SynodError('SYNOD_INVALID_ARGUMENT', detail);
}

/** Every key under a prefix, kept current; close it (or dispose) to stop watching. */
export class PrefixCache extends EventTarget implements AsyncDisposable {
  readonly prefix: Buffer;
  readonly keysMax: number;
  readonly #client: PrefixCacheClient;
  #entries = new Map<string, KeyValue>();
  #revision = 0n;
  /** Ranges loaded so far: the first load, then one per reload. */
  #loads = 0;
  #watcher: Watcher | null = null;
  #following: Promise<void> = Promise.resolve();
  #closed = false;
  #failure: unknown = null;

  private constructor(client: PrefixCacheClient, prefix: Bytes, options: PrefixCacheOptions) {
    super();
    const keysMax = options.keysMax ?? prefixCacheKeysMaxDefault;
    if (!Number.isSafeInteger(keysMax) || keysMax < 1) {
      throw invalidArgument('keysMax must be a positive whole number');
    }
    this.#client = client;
    this.prefix = Buffer.from(toBuffer(prefix));
    if (this.prefix.length === 0) throw invalidArgument('a cache prefix must not be empty');
    this.keysMax = keysMax;
  }

  /** Loads `prefix` and starts following it; resolves once the cache is filled and watching. */
  static async start(
    client: PrefixCacheClient, prefix: Bytes, options: PrefixCacheOptions = {},
  ): Promise<PrefixCache> {
    const cache = new PrefixCache(client, prefix, options);
    await cache.#open();
    cache.#following = cache.#follow();
    return cache;
  }

  /** The store revision the contents are consistent with (see the module comment). */
  get revision(): bigint {
    return this.#revision;
  }

  /** How many keys are cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** How many times the cache reloaded after compaction (including while starting). */
  get reloads(): number {
    return Math.max(0, this.#loads - 1);
  }

  /** Whether the cache has stopped following the store. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why the cache closed by itself; null while open or after `close()`. */
  get failure(): unknown {
    return this.#failure;
  }

  /** The cached key-value at `key`, or null. */
  get(key: Bytes): KeyValue | null {
    return this.#entries.get(mapKey(toBuffer(key))) ?? null;
  }

  /** Every cached key-value, sorted by key as a Range returns them. */
  entries(): KeyValue[] {
    return [...this.#entries.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  }

  /** Stops following the store; resolves once the watch has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#watcher?.close();
    await this.#following;
    this.dispatchEvent(new Event('close'));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Loads the prefix and creates the watch after it, reloading while compaction wins the race. */
  async #open(): Promise<void> {
    for (let attempt = 0; attempt < reloadAttemptsMax; attempt++) {
      await this.#load();
      try {
        const startRevision = this.#revision + 1n;
        this.#watcher = await this.#client.watch(this.prefix, {
          prefix: true, startRevision, prevKv: true,
        });
        return;
      } catch (error) {
        if (!isSynodError(error, 'SYNOD_COMPACTED')) throw error;
      }
    }
    const detail =
      `prefix cache ${this.prefix.toString()}: compacted past ${reloadAttemptsMax} reloads`;
    throw new SynodError('SYNOD_COMPACTED', detail);
  }

  async #load(): Promise<void> {
    const loaded = await this.#client.range(this.prefix, { prefix: true, limit: this.keysMax });
    if (loaded.more) throw tooManyKeys(this.prefix, this.keysMax);
    this.#entries = new Map(loaded.kvs.map((kv) => [mapKey(kv.key), kv]));
    this.#revision = loaded.header.revision;
    this.#loads++;
  }

  /** Applies batches until closed; reloads on compaction, closes on any other failure. */
  async #follow(): Promise<void> {
    while (!this.#closed) {
      const watcher = this.#watcher;
      if (watcher === null) return;
      try {
        for await (const batch of watcher) this.#apply(batch);
        // Only close() ends a watcher quietly.
        return;
      } catch (error) {
        if (this.#closed) return;
        if (!isSynodError(error, 'SYNOD_COMPACTED')) return this.#fail(error);
      }
      try {
        await this.#open();
      } catch (error) {
        return this.#fail(error);
      }
      // close() may have run while reloading: it closed the old watcher, not this new one.
      if (this.#closed) {
        await this.#watcher?.close();
        return;
      }
      this.dispatchEvent(new Event('reload'));
    }
  }

  #apply(batch: WatchBatch): void {
    for (const event of batch.events) {
      const key = mapKey(event.kv.key);
      if (event.type === 'put') this.#entries.set(key, event.kv);
      else this.#entries.delete(key);
    }
    if (this.#entries.size > this.keysMax) throw tooManyKeys(this.prefix, this.keysMax);
    // A batch holds whole revisions, so after its last event the cache is consistent with that
    // event's revision; an empty batch is a progress notification for the batch's revision.
    const revision = batch.events.at(-1)?.kv.modRevision ?? batch.revision;
    if (revision > this.#revision) this.#revision = revision;
    this.dispatchEvent(new PrefixCacheChangeEvent(batch.events, this.#revision));
  }

  #fail(error: unknown): void {
    this.#failure = error;
    this.#closed = true;
    void this.#watcher?.close();
    this.dispatchEvent(new Event('close'));
  }
}
