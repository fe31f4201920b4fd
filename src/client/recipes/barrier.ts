/**
 * Barriers: etcd's `recipes.Barrier` and `recipes.DoubleBarrier` (Curator's DistributedBarrier
 * and DistributedDoubleBarrier), and `createUniqueKey`, which the queue recipes share with them.
 * They wait with `waitForEvent` (wait.ts: a watch for one event, abortable at any point).
 *
 * - `Barrier` is one key: `hold` creates it, `release` deletes it, `wait` returns once it is
 *   absent. It is on no lease (as etcd's), because the one who holds it and the one who releases
 *   it are often different processes; a holder that dies leaves the barrier held.
 * - `DoubleBarrier` lines up `count` participants: `enter` returns once `count` of them have
 *   entered, `leave` once all of them have left. Each participant puts a unique key under
 *   `<key>/waiters/` on its session's lease, so a participant that dies drops out by itself and
 *   the others are not blocked for good. The last to enter puts `<key>/ready`; leaving follows
 *   etcd's algorithm: the participant with the oldest key waits for the newest to go, every other
 *   deletes its key and waits for the oldest to go, and the oldest, once alone, deletes `ready`
 *   and its own key. Each waits on one key at a time, never on the whole prefix.
 *
 * etcd's Hold fails with ErrKeyExists when the barrier is held; here `hold` answers false. etcd's
 * ErrTooManyClients (more than `count` participants) is a SynodError SYNOD_INVALID_ARGUMENT: the
 * `count` the participants agreed on does not match how many came.
 */

import { SynodError } from '../../base/index.js';
import type { SynodClient } from '../client.js';
import { invalidArgument } from '../errors.js';
import type { Bytes, KeyValue } from '../kv-types.js';
import type { CallOptions } from '../transport.js';
import { compare, op } from '../txn.js';
import type { Session } from './session.js';
import { waitForEvent, waitScope } from './wait.js';

/** A double barrier for more participants than this is refused. */
export const doubleBarrierParticipantsMax = 10_000;
/** Attempts at a fresh unique key before giving up (a clash needs the same clock and sequence). */
const uniqueKeyAttemptsMax = 8;

let uniqueSequence = 0;

/**
 * A new key under `prefix` (etcd's newUniqueKV: `<prefix><unix time in ns>`, a per-process
 * sequence standing in for the nanoseconds), created only if absent; its create revision orders it.
 */
export async function createUniqueKey(
  client: SynodClient, prefix: string, value: Bytes,
  options: { lease?: bigint; signal?: AbortSignal } = {},
): Promise<{ key: string; createRevision: bigint }> {
  for (let attempt = 0; attempt < uniqueKeyAttemptsMax; attempt++) {
    uniqueSequence = (uniqueSequence + 1) % 1_000_000;
    const key = `${prefix}${BigInt(Date.now()) * 1_000_000n + BigInt(uniqueSequence)}`;
    const result = await client.txn()
      .if(compare.createRevision(key, '==', 0n))
      .then(op.put(key, value, options.lease === undefined ? {} : { lease: options.lease }))
      .commit(options.signal === undefined ? {} : { signal: options.signal });
    if (result.succeeded) return { key, createRevision: result.header.revision };
  }
  const detail = `no unique key under ${prefix} after ${uniqueKeyAttemptsMax} attempts`;
  throw new SynodError('SYNOD_STM_RETRIES_EXHAUSTED', detail);
}

function checkedKey(key: string): string {
  if (key === '') throw invalidArgument('a barrier key must not be empty');
  return key;
}

/** One key that blocks waiters while it exists (etcd recipes.Barrier). */
export class Barrier {
  readonly client: SynodClient;
  readonly key: string;

  constructor(client: SynodClient, key: string) {
    this.client = client;
    this.key = checkedKey(key);
  }

  /** Creates the barrier key; false when the barrier was already held. */
  async hold(options?: CallOptions): Promise<boolean> {
    const result = await this.client.txn()
      .if(compare.createRevision(this.key, '==', 0n))
      .then(op.put(this.key, ''))
      .commit(options);
    return result.succeeded;
  }

  /** Deletes the barrier key, letting every waiter through. */
  async release(options?: CallOptions): Promise<void> {
    await this.client.delete(this.key, options);
  }

  /** Resolves once the barrier is not held (at once when it is not held now). */
  async wait(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal ?? new AbortController().signal;
    while (true) {
      const now = await this.client.range(this.key, { keysOnly: true, signal });
      if (now.kvs.length === 0) return;
      // A release seen is enough, even if someone holds the barrier again right after.
      const from = now.header.revision + 1n;
      const released = await waitForEvent(this.client, this.key, {
        type: 'delete', startRevision: from, signal,
      });
      if (released !== null) return;
    }
  }
}

function tooManyClients(key: string, count: number): SynodError {
  const detail = `double barrier ${key}: too many clients (more than ${count})`;
  return new SynodError('SYNOD_INVALID_ARGUMENT', detail);
}

function oldestAndNewest(kvs: readonly KeyValue[]): { oldest: KeyValue; newest: KeyValue } {
  let oldest = kvs[0]!;
  let newest = kvs[0]!;
  for (const kv of kvs) {
    if (kv.createRevision < oldest.createRevision) oldest = kv;
    if (kv.createRevision > newest.createRevision) newest = kv;
  }
  return { oldest, newest };
}

/** `count` participants enter together and leave together (etcd recipes.DoubleBarrier). */
export class DoubleBarrier implements AsyncDisposable {
  readonly session: Session;
  readonly key: string;
  readonly count: number;
  readonly #waiters: string;
  readonly #ready: string;
  #mine: { readonly key: string; readonly createRevision: bigint } | null = null;

  constructor(session: Session, key: string, count: number) {
    if (!Number.isSafeInteger(count) || count < 1 || count > doubleBarrierParticipantsMax) {
      throw invalidArgument(`a double barrier takes 1..${doubleBarrierParticipantsMax} parties`);
    }
    this.session = session;
    this.key = checkedKey(key);
    this.count = count;
    this.#waiters = `${key}/waiters/`;
    this.#ready = `${key}/ready`;
  }

  /** Whether this participant has entered and not yet left. */
  get entered(): boolean {
    return this.#mine !== null;
  }

  /** Waits until `count` participants have entered; on abort or failure its key is withdrawn. */
  async enter(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.#mine !== null) throw invalidArgument(`double barrier ${this.key}: already entered`);
    this.session.throwIfLost();
    const client = this.session.client;
    const scope = waitScope({ name: this.key, signals: [options.signal, this.session.lost] });
    const { signal } = scope;
    try {
      // Checked before and after our key is in place, as etcd does: a full barrier is refused.
      const before = await client.range(this.#waiters, { prefix: true, countOnly: true, signal });
      if (before.count >= BigInt(this.count)) throw tooManyClients(this.key, this.count);
      const lease = this.session.leaseId;
      const mine = await createUniqueKey(client, this.#waiters, '', { lease, signal });
      this.#mine = mine;
      try {
        const after = await client.range(this.#waiters, { prefix: true, countOnly: true, signal });
        if (after.count > BigInt(this.count)) throw tooManyClients(this.key, this.count);
        if (after.count === BigInt(this.count)) await client.put(this.#ready, '', { signal });
        else await this.#waitForReady(mine.createRevision, signal);
      } catch (error) {
        this.#mine = null;
        await this.#deleteOwn(mine).catch(() => undefined);
        throw error;
      }
    } finally {
      scope.dispose();
    }
  }

  /** Waits until every participant has left; a no-op when this one has not entered. */
  async leave(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const mine = this.#mine;
    if (mine === null) return;
    const client = this.session.client;
    const scope = waitScope({ name: this.key, signals: [options.signal] });
    const { signal } = scope;
    try {
      while (true) {
        const waiters = await client.range(this.#waiters, { prefix: true, signal });
        if (waiters.kvs.length === 0) break;
        const { oldest, newest } = oldestAndNewest(waiters.kvs);
        const isOldest = oldest.key.toString() === mine.key;
        const from = waiters.header.revision + 1n;
        if (isOldest && waiters.kvs.length === 1) {
          // The last one out resets the barrier for the next round.
          await client.txn().then(op.delete(this.#ready), op.delete(mine.key)).commit();
          break;
        }
        // Each wait ends on the delete or on compaction; either way the waiters are read again.
        if (isOldest) {
          await waitForEvent(client, newest.key, { type: 'delete', startRevision: from, signal });
          continue;
        }
        await this.#deleteOwn(mine);
        await waitForEvent(client, oldest.key, { type: 'delete', startRevision: from, signal });
      }
      this.#mine = null;
    } finally {
      scope.dispose();
    }
  }

  /** Leaves the barrier if entered (waiting for the others, as `leave` does). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.leave();
  }

  async #waitForReady(createRevision: bigint, signal: AbortSignal): Promise<void> {
    const client = this.session.client;
    let from = createRevision + 1n;
    while (true) {
      const ready = await waitForEvent(client, this.#ready, {
        type: 'put', startRevision: from, signal,
      });
      if (ready !== null) return;
      // The history was compacted: `ready` written after our key means the barrier opened.
      const now = await client.range(this.#ready, { signal });
      if ((now.kvs[0]?.modRevision ?? 0n) > createRevision) return;
      from = now.header.revision + 1n;
    }
  }

  async #deleteOwn(mine: { readonly key: string; readonly createRevision: bigint }): Promise<void> {
    await this.session.client.txn()
      .if(compare.createRevision(mine.key, '==', mine.createRevision))
      .then(op.delete(mine.key))
      .commit({ idempotent: true });
  }
}
