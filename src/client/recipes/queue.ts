/**
 * Queues in the store: etcd's `recipes.Queue` (FIFO) and `recipes.PriorityQueue`.
 *
 * - `Queue` puts each item at a fresh unique key `<prefix>/<n>` (etcd's newUniqueKV, created only
 *   if absent) and orders items by create revision, which the cluster assigns in commit order.
 * - `PriorityQueue` puts each item at `<prefix>/<priority, %05d>/<sequence, %016d>` (etcd's
 *   newSequentialKV: the sequence follows the last key of that priority, guarded by a compare on
 *   the base key `__<prefix>/<priority>/` so two producers never take the same number), and
 *   orders by key: the lowest priority number first, FIFO within a priority. Like etcd's, the
 *   base key stays behind, one per priority used.
 *
 * Dequeue reads the first item and deletes it in a Txn that holds only if the item's mod
 * revision is unchanged, so of two consumers racing for an item exactly one gets it and the other
 * reads again. On an empty queue it waits by watching the prefix for a put, then reads again.
 * The claim itself is never interrupted by the caller's signal: an abort that landed after the
 * delete was sent could otherwise take an item and drop it. A claim whose answer is lost (the
 * connection or deadline failed after sending) may have taken the item: delivery is at most once.
 */

import { SynodError } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import type { Bytes, KeyValue, RangeOptions } from '../kv-types.js';
import { compare, op } from '../txn.js';
import { createUniqueKey } from './barrier.js';
import { waitForEvent } from './wait.js';

/** Highest priority number accepted (etcd's uint16). */
export const queuePriorityMax = 65_535;
/** Attempts at a sequence number before PriorityQueue.enqueue gives up under contention. */
const sequentialKeyAttemptsMax = 64;

function checkedPrefix(prefix: string): string {
  if (prefix === '') throw invalidArgument('a queue prefix must not be empty');
  return prefix;
}

/** Deletes `kv` if no one changed or took it since it was read; true when this caller took it. */
async function claim(client: SynodClient, kv: KeyValue): Promise<boolean> {
  const result = await client.txn()
    .if(compare.modRevision(kv.key, '==', kv.modRevision))
    .then(op.delete(kv.key))
    .commit();
  return result.succeeded;
}

/**
 * Takes the first item under `prefix` in `order`, waiting for one when the queue is empty.
 * Shared by both queues; see the module comment for the claim.
 */
async function takeFirst(
  client: SynodClient, prefix: string, order: RangeOptions['sort'], signal: AbortSignal,
): Promise<Buffer> {
  while (true) {
    signal.throwIfAborted();
    const first = await client.range(prefix, { prefix: true, sort: order, limit: 1, signal });
    const kv = first.kvs[0];
    if (kv !== undefined) {
      if (await claim(client, kv)) return kv.value;
      continue;
    }
    // Empty: any put under the prefix may be ours to take; a compacted history just reads again.
    const from = first.header.revision + 1n;
    await waitForEvent(client, prefix, { type: 'put', prefix: true, startRevision: from, signal });
  }
}

/** The item if the queue is not empty, without waiting. */
async function tryTakeFirst(
  client: SynodClient, prefix: string, order: RangeOptions['sort'],
): Promise<Buffer | null> {
  while (true) {
    const first = await client.range(prefix, { prefix: true, sort: order, limit: 1 });
    const kv = first.kvs[0];
    if (kv === undefined) return null;
    if (await claim(client, kv)) return kv.value;
  }
}

/** A FIFO queue under `<prefix>/` (etcd recipes.Queue). */
export class Queue {
  readonly client: SynodClient;
  readonly prefix: string;
  readonly #keyPrefix: string;

  constructor(client: SynodClient, prefix: string) {
    this.client = client;
    this.prefix = checkedPrefix(prefix);
    this.#keyPrefix = `${prefix}/`;
  }

  /** Appends `value`; resolves to the item's create revision (its place in the queue). */
  async enqueue(value: Bytes): Promise<bigint> {
    return (await createUniqueKey(this.client, this.#keyPrefix, value)).createRevision;
  }

  /** Takes the oldest item, waiting for one while the queue is empty. */
  dequeue(options: { readonly signal?: AbortSignal } = {}): Promise<Buffer> {
    const signal = options.signal ?? new AbortController().signal;
    return takeFirst(this.client, this.#keyPrefix, { target: 'create', order: 'ascend' }, signal);
  }

  /** Takes the oldest item, or null when the queue is empty. */
  tryDequeue(): Promise<Buffer | null> {
    return tryTakeFirst(this.client, this.#keyPrefix, { target: 'create', order: 'ascend' });
  }

  /** How many items are queued now. */
  async length(): Promise<bigint> {
    return (await this.client.range(this.#keyPrefix, { prefix: true, countOnly: true })).count;
  }
}

function priorityOf(priority: number): string {
  if (!Number.isSafeInteger(priority) || priority < 0 || priority > queuePriorityMax) {
    throw invalidArgument(`priority must be a whole number in 0..${queuePriorityMax}`);
  }
  return String(priority).padStart(5, '0');
}

/** Serves the lowest priority number first, FIFO within one (etcd recipes.PriorityQueue). */
export class PriorityQueue {
  readonly client: SynodClient;
  readonly prefix: string;
  readonly #keyPrefix: string;

  constructor(client: SynodClient, prefix: string) {
    this.client = client;
    this.prefix = checkedPrefix(prefix);
    this.#keyPrefix = `${prefix}/`;
  }

  /** Adds `value` at `priority` (0 is served first); resolves to the item's key. */
  async enqueue(value: Bytes, priority: number): Promise<string> {
    const levelPrefix = `${this.#keyPrefix}${priorityOf(priority)}/`;
    const baseKey = `__${levelPrefix}`;
    for (let attempt = 0; attempt < sequentialKeyAttemptsMax; attempt++) {
      const last = await this.client.range(levelPrefix, {
        prefix: true, sort: { target: 'key', order: 'descend' }, limit: 1,
      });
      const sequence = nextSequence(last.kvs[0], levelPrefix);
      const key = `${levelPrefix}${sequence.toString().padStart(16, '0')}`;
      // The base key changes with every enqueue at this priority: unchanged since our read means
      // no one else took `sequence` (deletes by consumers do not touch it; see etcd's comment).
      const result = await this.client.txn()
        .if(compare.modRevision(baseKey, '<', last.header.revision + 1n))
        .then(op.put(baseKey, ''), op.put(key, value))
        .commit();
      if (result.succeeded) return key;
    }
    const attempts = sequentialKeyAttemptsMax;
    const detail = `priority queue ${this.prefix}: no sequence number after ${attempts} attempts`;
    throw new SynodError('SYNOD_STM_RETRIES_EXHAUSTED', detail);
  }

  /** Takes the first item (lowest priority number, then oldest), waiting while none is queued. */
  dequeue(options: { readonly signal?: AbortSignal } = {}): Promise<Buffer> {
    const signal = options.signal ?? new AbortController().signal;
    return takeFirst(this.client, this.#keyPrefix, { target: 'key', order: 'ascend' }, signal);
  }

  /** Takes the first item, or null when the queue is empty. */
  tryDequeue(): Promise<Buffer | null> {
    return tryTakeFirst(this.client, this.#keyPrefix, { target: 'key', order: 'ascend' });
  }
}

function nextSequence(last: KeyValue | undefined, levelPrefix: string): bigint {
  if (last === undefined) return 0n;
  const suffix = last.key.toString().slice(levelPrefix.length);
  // Only this recipe writes under the prefix; anything else there is a misuse, not a number.
  if (!/^\d{16}$/.test(suffix)) {
    throw invalidArgument(`priority queue: foreign key ${last.key.toString()}`);
  }
  return BigInt(suffix) + 1n;
}
