/**
 * `KeyWaiters`: calls that wait on the key space of one member — a Lock or Campaign waiting for
 * the keys ahead of it to go, an Observe stream following a leader key. etcd's recipes wait with a
 * Watch per call (client/v3/concurrency `waitDelete`); inside the server the applied state is at
 * hand, so each waiter is a `step` re-run after every batch this member applies
 * (`RaftNode.onApplied`), reading `node.stateMachine` directly. A step sees every state this member
 * reaches, in order, though several revisions may arrive in one batch; the recipes only need the
 * latest, as etcd's do after a watch event.
 *
 * Every waiter belongs to a gRPC call and ends with it: the call's `AbortSignal` rejects the wait
 * with SYNOD_CALL_CANCELLED, so a client that gave up holds nothing here. Waiters are bounded per
 * member (`waitersMax`); one more is refused with SYNOD_KEY_WAITERS_EXHAUSTED, not queued.
 */

import { assert, isSynodError, mark, SynodError } from '../../base/index.js';
import type { RaftNode } from '../node/raft-node.js';

/** Default of `waitersMax`: concurrent Lock, Campaign and Observe calls waiting on one member. */
export const keyWaitersMaxDefault = 4096;

/**
 * One re-check of a wait. Returns the wait's value to finish it, or `undefined` to keep waiting;
 * a throw ends the wait with that error. It runs on the event loop between applies and must not
 * block; it may read `node.stateMachine` and write to its call.
 */
export type WaitStep<T> = () => T | undefined;

/** Options of `new KeyWaiters(...)`. */
export interface KeyWaitersOptions {
  readonly node: RaftNode;
  /** At most this many waits at once (default `keyWaitersMaxDefault`). */
  readonly waitersMax?: number;
}

interface Waiter {
  readonly step: WaitStep<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** The waits of one member, re-checked after each applied batch. One per node, shared. */
export class KeyWaiters {
  readonly #node: RaftNode;
  readonly #waitersMax: number;
  readonly #waiters = new Set<Waiter>();
  #unsubscribe: (() => void) | null = null;

  /** Validates `options` (SYNOD_INVALID_CONFIG). Subscribes to the node only while waits exist. */
  constructor(options: KeyWaitersOptions) {
    const waitersMax = options.waitersMax ?? keyWaitersMaxDefault;
    if (!Number.isSafeInteger(waitersMax) || waitersMax <= 0) {
      throw new SynodError('SYNOD_INVALID_CONFIG', `waitersMax ${waitersMax}`);
    }
    this.#node = options.node;
    this.#waitersMax = waitersMax;
  }

  /** Waits in progress. Invariant: `size <= waitersMax`. */
  get size(): number {
    return this.#waiters.size;
  }

  /** Whether a new wait would be refused now. */
  get full(): boolean {
    return this.#waiters.size >= this.#waitersMax;
  }

  /**
   * Runs `step` now and after every applied batch until it returns a value or throws, or until
   * `signal` aborts (SYNOD_CALL_CANCELLED). Refused at once with SYNOD_KEY_WAITERS_EXHAUSTED when
   * `waitersMax` waits are in progress.
   */
  wait<T>(step: WaitStep<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(new SynodError('SYNOD_CALL_CANCELLED'));
    if (this.full) {
      mark('key wait refused: waitersMax');
      return Promise.reject(new SynodError('SYNOD_KEY_WAITERS_EXHAUSTED'));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#remove(waiter)) reject(new SynodError('SYNOD_CALL_CANCELLED'));
      };
      const waiter: Waiter = {
        step,
        resolve: (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value as T);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#add(waiter);
      // The state may already satisfy the wait: applies between the caller's write and this call
      // fired no listener for it.
      this.#run(waiter);
    });
  }

  /**
   * Re-runs every step now, for a change that is not an apply: an Observe stream that drained
   * and may now send the state it skipped while full.
   */
  recheck(): void {
    this.#onApplied();
  }

  #add(waiter: Waiter): void {
    this.#waiters.add(waiter);
    assert(this.#waiters.size <= this.#waitersMax, 'key waiters exceed waitersMax');
    this.#unsubscribe ??= this.#node.onApplied(() => this.#onApplied());
  }

  /** Removes `waiter`; false when it had already finished. */
  #remove(waiter: Waiter): boolean {
    if (!this.#waiters.delete(waiter)) return false;
    if (this.#waiters.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    }
    return true;
  }

  #onApplied(): void {
    // Deleting the current element while iterating a Set is safe; waiters added by a step's
    // continuation arrive in later microtasks, after this loop.
    for (const waiter of this.#waiters) this.#run(waiter);
  }

  /** Runs one step; settles and removes the waiter when it finishes. Never throws. */
  #run(waiter: Waiter): void {
    if (!this.#waiters.has(waiter)) return;
    let value: unknown;
    try {
      value = waiter.step();
    } catch (error) {
      // A SynodError is the wait's outcome. Anything else is a bug: it still ends the wait, and
      // the caller's handler hands an AssertionFailure to its fatal handler.
      if (!isSynodError(error)) mark('key wait step failed with a non-Synod error');
      this.#remove(waiter);
      waiter.reject(error);
      return;
    }
    if (value === undefined) return;
    this.#remove(waiter);
    waiter.resolve(value);
  }
}
