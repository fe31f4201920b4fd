/**
 * Pending ReadIndex requests on the leader (thesis §6.4). Each request records the commit index when
 * it arrived; it completes once a quorum acknowledges a heartbeat carrying its context, which proves
 * this node was still leader after the request arrived. An acknowledgement for one request also
 * confirms every earlier one, so a burst of reads costs one round (batching).
 */

import { assert } from '../base/index.js';
import { bytesKey } from './messages.js';
import type { Message, NodeId } from './types.js';

/** A read waiting for its quorum. */
export interface PendingRead {
  readonly index: number;
  readonly request: Message;
  readonly acks: Set<NodeId>;
}

/** Leader-side queue of reads awaiting leadership confirmation. */
export class ReadOnly {
  readonly #pending = new Map<string, PendingRead>();
  #queue: string[] = [];

  constructor(readonly pendingMax: number) {}

  get size(): number {
    return this.#queue.length;
  }

  full(): boolean {
    return this.#queue.length >= this.pendingMax;
  }

  /** Queues `request` (whose context must be unique among pending ones) to be answered at `index`. */
  add(index: number, request: Message): boolean {
    const key = bytesKey(request.context);
    if (this.#pending.has(key)) return false;
    assert(!this.full(), 'read-only queue full');
    this.#pending.set(key, { index, request, acks: new Set() });
    this.#queue.push(key);
    return true;
  }

  /** Records `from`'s acknowledgement of `context`; returns the acks so far, or null if unknown. */
  recordAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | null {
    const pending = this.#pending.get(bytesKey(context));
    if (pending === undefined) return null;
    pending.acks.add(from);
    return pending.acks;
  }

  /** Dequeues and returns every request up to and including `context`'s. */
  advance(context: Uint8Array): PendingRead[] {
    const key = bytesKey(context);
    const position = this.#queue.indexOf(key);
    if (position < 0) return [];
    const done = this.#queue.slice(0, position + 1).map((k) => this.#pending.get(k)!);
    for (const k of this.#queue.slice(0, position + 1)) this.#pending.delete(k);
    this.#queue = this.#queue.slice(position + 1);
    return done;
  }

  /** The context of the newest pending request, if any. */
  lastPendingContext(): Uint8Array | null {
    const key = this.#queue[this.#queue.length - 1];
    return key === undefined ? null : this.#pending.get(key)!.request.context;
  }

  /** Drops everything (on a term change; the clients retry). */
  reset(): void {
    this.#pending.clear();
    this.#queue = [];
  }
}
