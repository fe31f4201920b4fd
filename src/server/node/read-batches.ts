/**
 * Bookkeeping of linearizable reads for one `RaftNode` (ReadIndex, thesis §6.4), batched as etcd's
 * linearizableReadLoop does: callers that arrive while no request is being submitted join the one
 * open batch; the driver submits the open batch as one `readIndex` request with one context, and
 * later callers start the next batch. A caller never joins a batch that was already submitted: the
 * leader fixes the read index when it receives the request, so a later caller could miss a write it
 * had already seen acknowledged.
 *
 * A batch moves: open → submitted (keyed by context) → confirmed (read index known) →
 * resolved once the state machine has applied the read index. Pure bookkeeping: no timers, no I/O.
 */

import { assert } from '../../base/index.js';
import type { ReadState } from '../../raft/index.js';
import { deferred, type Deferred } from './deferred.js';

interface ReadBatch {
  readonly waiters: Deferred<number>[];
  /** The tick count at which the batch times out. */
  readonly deadlineTick: number;
  context: Uint8Array | null;
  /** The confirmed read index, once known; -1 before. */
  index: number;
}

/** Pending linearizable reads, bounded by `waitersMax`. */
export class ReadBatches {
  readonly #waitersMax: number;
  #open: ReadBatch | null = null;
  readonly #submitted = new Map<string, ReadBatch>();
  #confirmed: ReadBatch[] = [];
  #waiters = 0;
  #contextSequence = 0;
  readonly #contextPrefix: string;

  /** `contextPrefix` makes contexts unique across runs (the node's incarnation). */
  constructor(options: { readonly waitersMax: number; readonly contextPrefix: string }) {
    assert(Number.isSafeInteger(options.waitersMax) && options.waitersMax > 0, 'waitersMax > 0');
    this.#waitersMax = options.waitersMax;
    this.#contextPrefix = options.contextPrefix;
  }

  /** Callers waiting in any state. */
  get waiters(): number {
    return this.#waiters;
  }

  /** Whether a batch waits to be submitted. */
  get hasOpen(): boolean {
    return this.#open !== null;
  }

  /** Joins the open batch (opening one ending at `deadlineTick`), or null when full. */
  join(deadlineTick: number): Promise<number> | null {
    if (this.#waiters >= this.#waitersMax) return null;
    this.#open ??= { waiters: [], deadlineTick, context: null, index: -1 };
    const waiter = deferred<number>();
    this.#open.waiters.push(waiter);
    this.#waiters += 1;
    return waiter.promise;
  }

  /** Closes the open batch and gives its fresh context to submit; null if none is open. */
  submitOpen(): Uint8Array | null {
    const batch = this.#open;
    if (batch === null) return null;
    this.#open = null;
    this.#contextSequence += 1;
    const context = new TextEncoder().encode(`${this.#contextPrefix}.${this.#contextSequence}`);
    batch.context = context;
    this.#submitted.set(keyOf(context), batch);
    return context;
  }

  /** The submission of `context` failed at once: its callers get `error`. */
  failSubmitted(context: Uint8Array, error: unknown): void {
    const batch = this.#submitted.get(keyOf(context));
    assert(batch !== undefined, 'failSubmitted: unknown context');
    this.#submitted.delete(keyOf(context));
    this.#settle(batch, error);
  }

  /** A read state arrived. Read states of batches given up on (or of another run) are ignored. */
  onReadState(readState: ReadState): void {
    const batch = this.#submitted.get(keyOf(readState.context));
    if (batch === undefined) return;
    this.#submitted.delete(keyOf(readState.context));
    assert(readState.index >= 0, 'read index ≥ 0');
    batch.index = readState.index;
    this.#confirmed.push(batch);
  }

  /** Resolves every confirmed batch whose read index is at or below `appliedIndex`. */
  onApplied(appliedIndex: number): void {
    if (this.#confirmed.length === 0) return;
    const waiting: ReadBatch[] = [];
    for (const batch of this.#confirmed) {
      if (batch.index <= appliedIndex) this.#settle(batch, null);
      else waiting.push(batch);
    }
    this.#confirmed = waiting;
  }

  /** Submitted batches whose read state has not come fail with `error` (e.g. leader changed). */
  failUnconfirmed(error: unknown): void {
    for (const batch of this.#submitted.values()) this.#settle(batch, error);
    this.#submitted.clear();
  }

  /** Every batch past `tick` fails with `error()`. */
  expire(tick: number, error: () => unknown): void {
    if (this.#open !== null && this.#open.deadlineTick <= tick) {
      this.#settle(this.#open, error());
      this.#open = null;
    }
    for (const [key, batch] of this.#submitted) {
      if (batch.deadlineTick > tick) continue;
      this.#submitted.delete(key);
      this.#settle(batch, error());
    }
    const waiting = this.#confirmed.filter((batch) => batch.deadlineTick > tick);
    for (const batch of this.#confirmed) {
      if (batch.deadlineTick <= tick) this.#settle(batch, error());
    }
    this.#confirmed = waiting;
  }

  /** Every waiter fails with `error`. */
  failAll(error: unknown): void {
    if (this.#open !== null) this.#settle(this.#open, error);
    this.#open = null;
    this.failUnconfirmed(error);
    for (const batch of this.#confirmed) this.#settle(batch, error);
    this.#confirmed = [];
    assert(this.#waiters === 0, 'failAll: waiters left');
  }

  /** Resolves (error null) or rejects every caller of `batch`. */
  #settle(batch: ReadBatch, error: unknown): void {
    for (const waiter of batch.waiters) {
      if (error === null) waiter.resolve(batch.index);
      else waiter.reject(error);
    }
    this.#waiters -= batch.waiters.length;
    assert(this.#waiters >= 0, 'read waiters count below zero');
  }
}

function keyOf(context: Uint8Array): string {
  return new TextDecoder().decode(context);
}
