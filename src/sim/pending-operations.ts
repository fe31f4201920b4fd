/**
 * The client operations one node holds until it can answer them: writes and log reads until the
 * node applies their entry, ReadIndex reads until their read state arrives and the state machine
 * has applied up to its index (thesis §6.4). Volatile: a crash loses them all, and their clients
 * never hear back.
 */

import { assert } from '../base/index.js';
import type { KvCommand } from './state-machine.js';

/** A client operation a node holds until it can answer it. */
export interface PendingOperation {
  readonly command: KvCommand;
  /** Gets only: served by ReadIndex (or lease) instead of through the log. */
  readonly readIndex: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The ReadIndex request context of a read: unique while pending, as the core requires. */
export function readContext(operation: PendingOperation): Uint8Array {
  return encoder.encode(`read:${operation.command.opId}`);
}

/** One node's held operations. */
export class PendingOperations {
  /** Operation id → a write (or log get) proposed through this node. */
  readonly #proposed = new Map<number, PendingOperation>();
  /** ReadIndex context → a read waiting for its read state. */
  readonly #reads = new Map<string, PendingOperation>();
  /** Reads whose read state arrived, waiting for the state machine to reach `index`. */
  #confirmed: { readonly index: number; readonly operation: PendingOperation }[] = [];

  /** Holds an operation the node proposed. */
  addProposed(operation: PendingOperation): void {
    assert(!operation.readIndex, 'a ReadIndex read is not proposed');
    this.#proposed.set(operation.command.opId, operation);
  }

  /** Holds a read the node asked a read index for. */
  addRead(operation: PendingOperation): void {
    assert(operation.readIndex && operation.command.call.kind === 'get', 'only gets use ReadIndex');
    this.#reads.set(decoder.decode(readContext(operation)), operation);
  }

  /** The proposed operation `opId`, no longer held; undefined if this node does not hold it. */
  takeProposed(opId: number): PendingOperation | undefined {
    const operation = this.#proposed.get(opId);
    this.#proposed.delete(opId);
    return operation;
  }

  /** A read state arrived; ignored for a context not held (a duplicate, or an earlier life's). */
  confirmRead(context: Uint8Array, index: number): void {
    const key = decoder.decode(context);
    const operation = this.#reads.get(key);
    if (operation === undefined) return;
    this.#reads.delete(key);
    this.#confirmed.push({ index, operation });
  }

  /** Confirmed reads the state machine can now serve (read index ≤ `applied`), no longer held. */
  takeServable(applied: number): PendingOperation[] {
    if (this.#confirmed.length === 0) return [];
    const servable = this.#confirmed.filter((read) => read.index <= applied);
    this.#confirmed = this.#confirmed.filter((read) => read.index > applied);
    return servable.map((read) => read.operation);
  }

  /** Everything held, no longer held (the node crashed). */
  takeAll(): PendingOperation[] {
    const all = [
      ...this.#proposed.values(),
      ...this.#reads.values(),
      ...this.#confirmed.map((read) => read.operation),
    ];
    this.#proposed.clear();
    this.#reads.clear();
    this.#confirmed = [];
    return all;
  }
}
